"""Generate an answer from retrieved chunks and check the citations it makes."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.errors import RagminiError
from generation.extractive import extract
from generation.models import ExtractiveGenerator, Generator
from generation.prompt import Source, build_prompt
from generation.support import SentenceSupport, score_answer, support_rate

Embed = Callable[[list[str]], np.ndarray]
# transformers, extractive, llama.cpp (generation/llamacpp.py) or an OpenAI-compatible
# server (generation/openai_compat.py); the last two are duck-typed to keep imports light.
AnyGenerator = Generator | ExtractiveGenerator | Any

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
            raise RagminiError("temperature must be 0 (greedy) or more", param="temperature")
        if not 0 < self.top_p <= 1:
            raise RagminiError("top_p must be in (0, 1]", param="top_p")
        if self.top_k < 0:
            raise RagminiError("top_k must be 0 (off) or more", param="top_k")
        if self.max_new_tokens < 1:
            raise RagminiError("max_new_tokens must be at least 1", param="max_new_tokens")
        if self.no_repeat_ngram < 0:
            raise RagminiError("no_repeat_ngram must be 0 (off) or more", param="no_repeat_ngram")


ABSTAIN_TEXT = "The documents do not answer this."


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
    sentences: list[SentenceSupport] = field(default_factory=list)  # empty: not scored
    strict: bool = False
    dropped_sentences: int = 0  # unsupported sentences --strict removed
    abstained: bool = False
    abstain_score: float | None = None  # probability the store holds the answer
    abstain_threshold: float | None = None

    @property
    def support_rate(self) -> float | None:
        return support_rate(self.sentences) if self.sentences else None

    def to_dict(self) -> dict:
        """The `ask --json` body, shared by the CLI, the HTTP API and the Python API."""
        return {"question": self.question, "answer": self.answer, "citations": self.citations,
                "invalid_citations": self.invalid_citations,
                "sources": [s.to_dict() for s in self.sources], "generator": self.generator,
                "prompt_tokens": self.prompt_tokens, "notes": self.notes,
                "sentences": [s.to_dict() for s in self.sentences],
                "support_rate": (None if self.support_rate is None
                                 else round(self.support_rate, 4)),
                "strict": self.strict, "dropped_sentences": self.dropped_sentences,
                "abstained": self.abstained,
                "abstain_score": (None if self.abstain_score is None
                                  else round(self.abstain_score, 4)),
                "abstain_threshold": self.abstain_threshold}


@dataclass(frozen=True)
class Draft:
    """What a generator wrote, before citations and support are checked."""

    text: str
    sources: list[Source]  # the sources it was given (those that fit the window)
    prompt_tokens: int = 0
    dropped: int = 0
    truncated: bool = False


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


def generate(generator: Generator, input_ids: list[int], sampling: Sampling,
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


def write(question: str, sources: list[Source], generator: AnyGenerator,
          sampling: Sampling, embed: Embed | None = None,
          on_text: Callable[[str], None] | None = None) -> Draft:
    """The generator's text for `question` from `sources`, before any checking.

    A language model other than transformers' (LlamaCppGenerator,
    OpenAIGenerator) fits the prompt with `prompt(question, sources, budget)` and
    writes with `write(prompt, sampling, on_text)`.
    """
    if isinstance(generator, ExtractiveGenerator):
        if embed is None:
            raise RagminiError("the extractive generator needs the sentence encoder",
                               param="generator")
        text = extract(question, sources, embed).text
        if on_text and text:
            on_text(text)
        return Draft(text, sources)
    budget = generator.context_window - sampling.max_new_tokens
    if budget < 32:
        raise RagminiError(
            f"max_new_tokens {sampling.max_new_tokens} leaves no room in the "
            f"{generator.context_window}-token window for sources", param="max_new_tokens")
    if isinstance(generator, Generator):  # transformers
        prompt = build_prompt(question, sources, generator.tokenizer, chat=generator.chat,
                              budget=budget)
        text = generate(generator, prompt.input_ids, sampling, on_text)
    else:  # llama.cpp in-process, or an OpenAI-compatible server: same prompt, streamed
        prompt = generator.prompt(question, sources, budget)
        text = generator.write(prompt, sampling, on_text)
    return Draft(text, prompt.sources, prompt.n_tokens, prompt.dropped, prompt.truncated)


def answer(question: str, hits, generator: AnyGenerator,
           sampling: Sampling = Sampling(), *, embed: Embed | None = None, strict: bool = False,
           on_text: Callable[[str], None] | None = None) -> Answer:
    """Answer `question` from `hits` (retrieval.Hit, best first), citing them as [n].

    With `embed` (the sentence encoder's embed), every sentence of the answer is
    scored against the sources it cites (generation/support.py). With `strict`,
    unsupported sentences are dropped, and when no supported one remains the
    extractive answer stands in, saying so.

    Example:
        >>> a = answer("What does BM25 score?", hits, load_generator(), embed=sbert.embed)
        >>> a.citations, a.support_rate
    """
    if not question.strip():
        raise RagminiError("the question is empty", param="question")
    if strict and embed is None:
        raise RagminiError("strict answers need the sentence encoder to check support",
                           param="strict")
    sources = [Source(i, h.chunk) for i, h in enumerate(hits, 1)]
    draft = write(question, sources, generator, sampling, embed, on_text)
    text, notes = draft.text, []
    if draft.dropped:
        notes.append(f"{draft.dropped} lowest-ranked source(s) left out to fit the context window")
    if draft.truncated:
        notes.append("the top source was cut short to fit the context window")
    label = generator.name
    if generator.fallback_from:
        label = f"{generator.name}, standing in for {generator.fallback_from}"
    numbered = [(s.n, s.text) for s in draft.sources]
    sentences = score_answer(text, numbered, embed) if embed is not None and text else []
    dropped = 0
    if strict:
        kept = [s for s in sentences if s.support.label != "unsupported"]
        dropped = len(sentences) - len(kept)
        if not any(s.support.label == "supported" for s in kept):
            text = extract(question, draft.sources, embed).text
            sentences = score_answer(text, numbered, embed) if text else []
            notes.append("no sentence of the generated answer is supported by the sources; "
                         "showing the extractive answer instead")
            label = f"{label}, strict: extractive fallback"
        elif dropped:
            text = " ".join(s.text for s in kept)
            sentences = kept
            notes.append(f"{dropped} unsupported sentence(s) removed (strict)")
    valid, invalid = parse_citations(text, len(draft.sources))
    if invalid:
        notes.append(f"the answer cites source(s) {invalid} that were not given")
    return Answer(question, text, valid, invalid, draft.sources, label, draft.prompt_tokens,
                  draft.dropped, notes, sentences, strict, dropped)
