"""The embeddings lab's records (`ragmini explore ...`): neighbours, analogies,
similarity, tokens, sampled continuations and corpus maps; each `to_dict()` is the
command's `--json` body."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class Neighbors:
    """`explore neighbors --json`: the words nearest to `word`, best first."""

    word: str
    method: str
    model: str
    neighbors: tuple[tuple[str, float], ...]

    def to_dict(self) -> dict:
        return {"word": self.word, "method": self.method, "model": self.model,
                "neighbors": [{"word": w, "score": s} for w, s in self.neighbors]}


@dataclass(frozen=True)
class Analogy:
    """`explore analogy --json`: words nearest to a - b + c, inputs excluded."""

    a: str
    b: str
    c: str
    results: tuple[tuple[str, float], ...]

    def to_dict(self) -> dict:
        return {"a": self.a, "b": self.b, "c": self.c,
                "results": [{"word": w, "score": s} for w, s in self.results]}


@dataclass(frozen=True, eq=False)
class Similarity:
    """`explore similarity --json`: the (n, n) `matrix` of `metric` between the
    sentences, a 2-D MDS layout of their cosine distances (`mds`, shape (n, 2)) and a
    cluster label per sentence."""

    method: str
    metric: str
    sentences: tuple[str, ...]
    matrix: np.ndarray
    mds: np.ndarray
    clusters: np.ndarray
    note: str = ""
    plot: Path | None = None

    def to_dict(self) -> dict:
        import numpy as np

        return {"method": self.method, "metric": self.metric, "sentences": list(self.sentences),
                "matrix": np.round(self.matrix, 6).tolist(),
                "mds": np.round(self.mds, 6).tolist(),
                "clusters": np.asarray(self.clusters).tolist(), "note": self.note,
                "plot": str(self.plot) if self.plot else None}


@dataclass(frozen=True)
class Tokens:
    """`explore tokens --json`: how a tokenizer cuts a text."""

    tokenizer: str
    tokens: tuple[str, ...]
    ids: tuple[int, ...]
    n_words: int

    def to_dict(self) -> dict:
        return {"tokenizer": self.tokenizer, "tokens": list(self.tokens), "ids": list(self.ids),
                "n_tokens": len(self.ids), "n_words": self.n_words}


@dataclass(frozen=True)
class Generation:
    """`explore generate --json`: sampled continuations of a prompt (continuation i
    used seed `seed + i`) and, if asked, the likeliest next tokens."""

    prompt: str
    generator: str
    temperature: float
    top_p: float
    top_k: int
    seed: int
    continuations: tuple[str, ...]
    next_token_probs: tuple[tuple[str, float], ...] = ()
    fallback_from: str | None = None  # the generator asked for, when another stood in

    def to_dict(self) -> dict:
        return {"prompt": self.prompt, "generator": self.generator,
                "temperature": self.temperature, "top_p": self.top_p, "top_k": self.top_k,
                "seed": self.seed, "continuations": list(self.continuations),
                "next_token_probs": [{"token": t, "p": p} for t, p in self.next_token_probs]}


@dataclass(frozen=True, eq=False)
class CorpusMap:
    """`explore map --json`: the store's chunks in 2-D (`pca`, and `tsne` when there
    are 10 or more), and how often a chunk's nearest other chunk shares its document
    (`same_doc_neighbour`) against chance."""

    method: str
    doc_ids: tuple[str, ...]
    same_doc_neighbour: float
    chance: float
    pca: np.ndarray
    tsne: np.ndarray | None = None
    plot: Path | None = None

    def to_dict(self) -> dict:
        return {"method": self.method, "chunks": len(self.doc_ids),
                "documents": len(set(self.doc_ids)),
                "same_doc_neighbour": self.same_doc_neighbour, "chance": self.chance,
                "plot": str(self.plot) if self.plot else None}

