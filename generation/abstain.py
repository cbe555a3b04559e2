"""Should ragmini answer at all? A decision from the retrieval evidence alone.

Before any text is generated, the question's dense (MiniLM) and lexical (BM25)
rankings are turned into a few features, and a logistic model fitted on dev
splits of labelled answerable / unanswerable questions gives the probability
that the store holds the answer. Below the threshold, ragmini says the
documents do not answer and lists the closest sources instead.

The top dense score alone is a weak signal (on FAQ questions whose answer was
removed, neighbouring sections on the same topic score nearly as high), so the
model also looks at the best single sentence of the top passages (an answer is
usually one sentence that matches, not a passage on the topic), how strongly BM25
matches per question word, and whether BM25 ranks the same document near the
top. `bench/calibrate_abstain.py` fits and reports it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

FEATURES = ("top", "sentence", "lexical", "agreement")
# Fitted by bench/calibrate_abstain.py on the dev splits (see its JSON output for the
# figures); standardisation is folded into the coefficients.
COEFFICIENTS = (12.0, 10.0, 1.0, 3.0)
INTERCEPT = -9.0
THRESHOLD = 0.5

_WORD = re.compile(r"[^\W\d_][\w'-]*|\d+")
_STOPWORDS = frozenset("""a about an and are as at be by can could did do does for from had has
have how i if in into is it its me my of on or our should so than that the their them then
there these they this those to up use used using was we what when where which who whom why
will with would you your yourself""".split())


@dataclass(frozen=True)
class Evidence:
    """What retrieval says about one question, as the abstention model reads it."""

    top: float  # best dense cosine, question to passage
    sentence: float  # best cosine, question to one sentence of the top passages
    lexical: float  # best BM25 score per content word of the question
    agreement: float  # 1 / rank of the dense top document in the BM25 ranking (0 if absent)

    def vector(self) -> list[float]:
        return [self.top, self.sentence, self.lexical, self.agreement]


@dataclass(frozen=True)
class Decision:
    answer: bool
    score: float  # probability that the store holds the answer
    threshold: float
    evidence: Evidence


def content_words(text: str) -> set[str]:
    """Lower-cased words without stopwords, crudely stemmed (plural s, -ing, -ed)."""
    out = set()
    for w in _WORD.findall(text.lower()):
        if w in _STOPWORDS or len(w) < 2:
            continue
        for suffix in ("ing", "ed", "es", "s"):
            if len(w) > len(suffix) + 3 and w.endswith(suffix):
                w = w[: -len(suffix)]
                break
        out.add(w)
    return out


def evidence(question: str, dense: Sequence, lexical: Sequence | None,
             embed: Callable[[list[str]], np.ndarray], depth: int = 3) -> Evidence:
    """Features from dense and lexical hits (retrieval.Hit, best first); `embed` is
    the dense method's own encoder (MiniLM), for the sentence feature.

    Without a lexical ranking, its two features are 0: the model leans on the rest.
    """
    from generation.support import split_sentences

    if not dense:
        return Evidence(0.0, 0.0, 0.0, 0.0)
    sentences = [s for h in dense[:depth] for s in split_sentences(h.text)
                 if len(s.split()) >= 4]
    best_sentence = 0.0
    if sentences:
        vectors = embed([question] + sentences)
        best_sentence = float((vectors[1:] @ vectors[0]).max())
    lexical_score = agreement = 0.0
    if lexical:
        lexical_score = lexical[0].score / max(1, len(content_words(question)))
        docs = list(dict.fromkeys(h.doc_id for h in lexical))
        if dense[0].doc_id in docs:
            agreement = 1.0 / (docs.index(dense[0].doc_id) + 1)
    return Evidence(float(dense[0].score), best_sentence, lexical_score, agreement)


def probability(ev: Evidence, coefficients: Sequence[float] = COEFFICIENTS,
                intercept: float = INTERCEPT) -> float:
    z = intercept + sum(c * x for c, x in zip(coefficients, ev.vector()))
    return 1.0 / (1.0 + math.exp(-z))


def decide(ev: Evidence, threshold: float = THRESHOLD) -> Decision:
    p = probability(ev)
    return Decision(p >= threshold, p, threshold, ev)
