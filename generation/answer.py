"""Generate an answer from retrieved chunks and check the citations it makes."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from generation.models import Generator
from generation.prompt import Source, build_prompt
from ragmini.errors import RagminiError

_CITATION = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")


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
            raise RagminiError("--temperature must be 0 (greedy) or more")
        if not 0 < self.top_p <= 1:
            raise RagminiError("--top-p must be in (0, 1]")
        if self.top_k < 0:
            raise RagminiError("--top-k must be 0 (off) or more")
        if self.max_new_tokens < 1:
            raise RagminiError("--max-new-tokens must be at least 1")
        if self.no_repeat_ngram < 0:
            raise RagminiError("--no-repeat-ngram must be 0 (off) or more")


@dataclass(frozen=True)
class Answer:
    question: str
    answer: str
    citations: list[int]  # valid source numbers the answer cites, in order of first use
    invalid_citations: list[int]  # numbers cited that name no given source
    sources: list[Source]
    generator: str
    prompt_tokens: int
    dropped_sources: int
    notes: list[str] = field(default_factory=list)


def parse_citations(text: str, n_sources: int) -> tuple[list[int], list[int]]:
    """([valid], [invalid]) source numbers cited as [n] or [n, m], first use order."""
    valid: list[int] = []
    invalid: list[int] = []
    for group in _CITATION.findall(text):
        for number in re.split(r"\s*[,;]\s*", group):
            n = int(number)
            bucket = valid if 1 <= n <= n_sources else invalid
            if n not in bucket:
                bucket.append(n)
    return valid, invalid


def generate(generator: Generator, input_ids: list[int], sampling: Sampling) -> str:
    """Decode a continuation of `input_ids`; the same seed gives the same text."""
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
            inputs, attention_mask=torch.ones_like(inputs), generation_config=config
        )
    return generator.tokenizer.decode(out[0, len(input_ids):], skip_special_tokens=True).strip()


def answer(question: str, hits, generator: Generator, sampling: Sampling = Sampling()) -> Answer:
    """Answer `question` from `hits` (retrieval.Hit, best first), citing them as [n].

    Example:
        >>> a = answer("What does BM25 score?", retriever.search(q, k=3), load_generator())
        >>> a.citations, [s.doc_id for s in a.sources]
    """
    if not question.strip():
        raise RagminiError("the question is empty")
    sources = [Source(i, h.chunk_id, h.doc_id, h.source, h.title, h.text)
               for i, h in enumerate(hits, 1)]
    budget = generator.context_window - sampling.max_new_tokens
    if budget < 32:
        raise RagminiError(
            f"--max-new-tokens {sampling.max_new_tokens} leaves no room in the "
            f"{generator.context_window}-token window for sources"
        )
    prompt = build_prompt(question, sources, generator.tokenizer, chat=generator.chat,
                          budget=budget)
    text = generate(generator, prompt.input_ids, sampling)
    valid, invalid = parse_citations(text, len(prompt.sources))
    notes = []
    if prompt.dropped:
        notes.append(f"{prompt.dropped} lowest-ranked source(s) left out to fit the context window")
    if prompt.truncated:
        notes.append("the top source was cut short to fit the context window")
    if invalid:
        notes.append(f"the answer cites source(s) {invalid} that were not given")
    label = generator.name
    if generator.fallback_from:
        label = f"{generator.name}, standing in for {generator.fallback_from}"
    return Answer(question, text, valid, invalid, prompt.sources, label,
                  len(prompt.input_ids), prompt.dropped, notes)
