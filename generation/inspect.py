"""What the generator sees and does: tokens, next-token probabilities, samples."""

from __future__ import annotations

import re
from dataclasses import dataclass

from generation.answer import Sampling, generate
from generation.models import Generator


@dataclass(frozen=True)
class TokenView:
    tokens: list[str]  # as the tokenizer spells them (Ġ = leading space in GPT-2 BPE, ## = WordPiece continuation)
    ids: list[int]
    n_words: int

    @property
    def tokens_per_word(self) -> float:
        return len(self.tokens) / self.n_words if self.n_words else 0.0


def token_view(tokenizer, text: str) -> TokenView:
    """The tokens and ids of `text`, without special tokens, and the word count."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return TokenView(tokenizer.convert_ids_to_tokens(ids), list(ids),
                     len(re.findall(r"\S+", text)))


def next_token_probs(generator: Generator, prompt: str, temperature: float = 1.0,
                     top: int = 10) -> list[tuple[str, float]]:
    """The `top` most likely next tokens: softmax(logits / temperature).

    Temperature 0 is greedy decoding; it is shown as temperature 1e-4, which puts
    (almost) all mass on the top token, as greedy choice does.
    """
    import torch

    ids = generator.tokenizer(prompt, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        logits = generator.model(ids).logits[0, -1].float()
    probs = torch.softmax(logits / max(temperature, 1e-4), dim=-1)
    values, indices = torch.topk(probs, k=min(top, probs.numel()))
    tokens = generator.tokenizer.convert_ids_to_tokens(indices.tolist())
    return [(t, float(p)) for t, p in zip(tokens, values)]


def continuations(generator: Generator, prompt: str, n: int, sampling: Sampling) -> list[str]:
    """`n` continuations of `prompt`; continuation i uses seed `sampling.seed + i`
    (seed 0 if none given), so the same seed always gives the same set."""
    ids = generator.tokenizer(prompt)["input_ids"]
    base = sampling.seed if sampling.seed is not None else 0
    out = []
    for i in range(n):
        s = Sampling(sampling.temperature, sampling.top_p, sampling.top_k,
                     sampling.max_new_tokens, base + i, sampling.no_repeat_ngram)
        out.append(generate(generator, ids, s))
    return out
