"""The extractive generator: no language model, only the sources' own sentences.

It picks the sentences of the retrieved chunks most similar to the question,
with maximal marginal relevance (Carbonell and Goldstein, 1998) so that a second
sentence saying the same as the first is passed over, and cites each one. The
answer is grounded by construction; it is the baseline an LM answer must beat
on closeness to the reference without falling far on support.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from generation.prompt import Source
from generation.support import split_sentences

Embed = Callable[[list[str]], np.ndarray]

MAX_SENTENCES = 3
MMR_LAMBDA = 0.7  # relevance against redundancy
MIN_WORDS = 4  # shorter pieces (headings, list stubs) answer nothing
_MARKDOWN = re.compile(r"^\s*(?:#{1,6}\s+|[-*+]\s+|\d{1,3}[.)]\s+)")


@dataclass(frozen=True)
class Extract:
    text: str  # sentences, each followed by its citation
    picked: list[tuple[int, str]]  # (source number, sentence), in answer order


def candidate_sentences(sources: list[Source]) -> list[tuple[int, str]]:
    """(source number, sentence) for every sentence of the sources long enough to say
    something, without Markdown list or heading marks, first occurrence only."""
    seen: set[str] = set()
    out = []
    for s in sources:
        for sentence in split_sentences(s.text):
            clean = _MARKDOWN.sub("", sentence).strip()
            if len(clean.split()) < MIN_WORDS or clean.lower() in seen:
                continue
            seen.add(clean.lower())
            out.append((s.n, clean))
    return out


def mmr(query: np.ndarray, candidates: np.ndarray, n: int, lam: float = MMR_LAMBDA) -> list[int]:
    """Indices of `n` rows of `candidates` (unit vectors) chosen by maximal marginal
    relevance to `query`: lam * sim(query) - (1 - lam) * max sim(already chosen)."""
    relevance = candidates @ query
    chosen: list[int] = []
    left = list(range(len(candidates)))
    while left and len(chosen) < n:
        if chosen:
            redundancy = (candidates[left] @ candidates[chosen].T).max(axis=1)
        else:
            redundancy = np.zeros(len(left))
        scores = lam * relevance[left] - (1 - lam) * redundancy
        best = left[int(np.argmax(scores))]
        chosen.append(best)
        left.remove(best)
    return chosen


def extract(question: str, sources: list[Source], embed: Embed,
            max_sentences: int = MAX_SENTENCES) -> Extract:
    """The answer made of the `max_sentences` best source sentences, each cited.

    Sentences keep the order MMR picked them in (most relevant first), so the
    answer opens with its strongest sentence.
    """
    candidates = candidate_sentences(sources)
    if not candidates:
        return Extract("", [])
    vectors = embed([question] + [text for _, text in candidates])
    picked = [candidates[i] for i in mmr(vectors[0], vectors[1:], max_sentences)]
    text = " ".join(f"{_end(sentence)} [{n}]" for n, sentence in picked)
    return Extract(text, picked)


def _end(sentence: str) -> str:
    # "[n]" goes before the final stop would read oddly after it; keep the stop and cite after.
    return sentence if sentence[-1] in ".!?:" else sentence + "."
