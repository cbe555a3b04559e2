"""Decoding settings and the transformers decoding loop.

Below generation/answer.py and generation/models.py, which both use them: the
model classes decode (a follow-up rewrite), the answer step decodes (an answer).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.errors import RagminiError


@dataclass(frozen=True)
class Sampling:
    """Decoding settings. temperature 0 means greedy (deterministic).

    no_repeat_ngram: forbid repeating any n-gram of this size (0 = off). Small
    models decoding greedily loop on one phrase; 3 stops that.
    """

    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    max_new_tokens: int = 128
    seed: int | None = None
    no_repeat_ngram: int = 3

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise RagminiError("temperature must be 0 (greedy) or more", param="temperature")
        if not 0 < self.top_p <= 1:
            raise RagminiError("top_p must be in (0, 1]", param="top_p")
        if self.top_k < 0:
            raise RagminiError("top_k must be 0 (off) or more", param="top_k")
        if self.max_new_tokens < 1:
            raise RagminiError("max_new_tokens must be at least 1", param="max_new_tokens")
        if self.no_repeat_ngram < 0:
            raise RagminiError("no_repeat_ngram must be 0 (off) or more", param="no_repeat_ngram")


def generate(generator: Any, input_ids: list[int], sampling: Sampling,
             on_text: Callable[[str], None] | None = None) -> str:
    """Decode a continuation of `input_ids`; the same seed gives the same text.

    `on_text`, if given, receives the text as it is decoded, piece by piece.
    """
    import torch
    from transformers import GenerationConfig, set_seed

    config = GenerationConfig(
        max_new_tokens=sampling.max_new_tokens,
        do_sample=sampling.temperature > 0,
        pad_token_id=generator.tokenizer.pad_token_id,
        eos_token_id=generator.tokenizer.eos_token_id,
        no_repeat_ngram_size=sampling.no_repeat_ngram,
    )
    if config.do_sample:
        config.temperature = sampling.temperature
        config.top_p = sampling.top_p
        config.top_k = sampling.top_k or None
    if sampling.seed is not None:
        set_seed(sampling.seed)
    inputs = torch.tensor([input_ids], dtype=torch.long)
    with torch.inference_mode():
        out = generator.model.generate(
            inputs, attention_mask=torch.ones_like(inputs), generation_config=config,
            streamer=_streamer(generator.tokenizer, on_text) if on_text else None,
        )
    return generator.tokenizer.decode(out[0, len(input_ids):], skip_special_tokens=True).strip()


def _streamer(tokenizer, on_text: Callable[[str], None]):
    from transformers import TextStreamer

    class Callback(TextStreamer):
        def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
            if text:
                on_text(text)

    return Callback(tokenizer, skip_prompt=True, skip_special_tokens=True)
