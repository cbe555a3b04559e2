"""Should ragmini answer at all? A decision from the retrieval evidence alone.

Before any text is generated, the question's dense (MiniLM) ranking is turned
into three features, and a logistic model fitted on the dev splits of labelled
answerable / unanswerable questions gives the probability that the store holds
the answer. Below the threshold, ragmini says the documents do not answer and
lists the closest sources instead.

The top dense score alone is a weak signal: on FAQ questions whose answer was
removed, neighbouring sections on the same topic score nearly as high. The
model reads instead

- ``sentence``: the best cosine between the question and one sentence of the
  top 5 passages (an answer is usually one sentence that matches, not a
  passage on the topic);
- ``coverage``: the share of the question's content words (compared by their
  first 5 letters, a crude stemmer: complete/completion/completing) found in
  the top passage: an answer names what was asked about;
- ``focus``: ``sentence`` minus the top passage's cosine: how much better one
  sentence matches than the whole passage on the topic.

BM25 features (top score per question word, dense/BM25 rank agreement) were
tried and add nothing once these are in (bench/calibrate_abstain.py reports
them among its candidate features), so the lexical ranking is accepted but not
read. Cost per question: one embed call (the question and the top passages'
sentences). `bench/calibrate_abstain.py` fits and reports the model, with
2-fold cross-fitting (fit on dev, test on test, and the reverse) for an honest
estimate; the constants below are the dev-only fit.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import astuple, dataclass

import numpy as np

FEATURES = ("sentence", "coverage", "focus")
SENTENCE_DEPTH = 5  # top passages whose sentences are compared with the question
PREFIX = 5  # letters of a content word compared for `coverage`
# Fitted by bench/calibrate_abstain.py on the dev splits only (bundled corpus + Debian FAQ):
# L2-regularised logistic regression (C = 0.01, chosen by 10x5-fold CV on dev; the
# coefficients hardly move for C in 0.001..3), Platt-rescaled, standardisation folded in;
# the threshold maximises the mean of the per-set balanced accuracies over out-of-fold dev
# probabilities. Held-out test, AUC / balanced accuracy, model vs top-1 dense score alone:
#   FAQ test      0.739 / 0.705   vs 0.674 / 0.537   (10 of 41 unanswerable)
#   bundled test  0.941 / 0.862   vs 0.906 / 0.825   (7 of 36 unanswerable)
# Cross-fitted (fit on dev -> test, fit on test -> dev, mean): FAQ 0.828 / 0.766 vs
# 0.711 / 0.625; bundled 0.908 / 0.811 vs 0.852 / 0.799. bench/abstain_calibration.json
# has the rest.
COEFFICIENTS = (10.0586, 5.6369, 4.8727)
INTERCEPT = -7.1778
THRESHOLD = 0.857

_WORD = re.compile(r"[^\W\d_][\w'-]*|\d+")
_STOPWORDS = frozenset("""a about an and are as at be by can could did do does for from had has
have how i if in into is it its me my of on or our should so than that the their them then
there these they this those to up use used using was we what when where which who whom why
will with would you your yourself""".split())


@dataclass(frozen=True)
class Evidence:
    """What retrieval says about one question, as the abstention model reads it."""

    sentence: float  # best cosine, question to one sentence of the top passages
    coverage: float  # share of the question's content words (5-letter prefixes) in the top passage
    focus: float  # sentence minus the top passage's cosine

    def vector(self) -> list[float]:
        return list(astuple(self))


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


def coverage(question: str, passage: str, prefix: int = PREFIX) -> float:
    """Share of the question's content words that occur in `passage`, words compared
    by their first `prefix` letters; 0 for a question without content words.

    Example:
        >>> coverage("How does completion handle ambiguous words?", "Completing an ambiguous word")
        0.75
    """
    asked = {w[:prefix] for w in content_words(question)}
    if not asked:
        return 0.0
    return len(asked & {w[:prefix] for w in content_words(passage)}) / len(asked)


def evidence(question: str, dense: Sequence, lexical: Sequence | None,
             embed: Callable[[list[str]], np.ndarray], depth: int = SENTENCE_DEPTH) -> Evidence:
    """Features from the dense hits (retrieval.Hit, best first); `embed` is the dense
    method's own encoder (MiniLM), called once, for the sentence feature.

    `lexical` (BM25 hits, [] or None without them) is accepted for the callers'
    sake and not read: see the module docstring.
    """
    from generation.support import split_sentences

    del lexical
    if not dense:
        return Evidence(0.0, 0.0, 0.0)
    top = float(dense[0].score)
    sentences = [s for h in dense[:depth] for s in split_sentences(h.text)
                 if len(s.split()) >= 4]
    best_sentence = 0.0
    if sentences:
        vectors = embed([question] + sentences)
        best_sentence = float((vectors[1:] @ vectors[0]).max())
    return Evidence(best_sentence, coverage(question, dense[0].text), best_sentence - top)


def probability(ev: Evidence, coefficients: Sequence[float] = COEFFICIENTS,
                intercept: float = INTERCEPT) -> float:
    z = intercept + sum(c * x for c, x in zip(coefficients, ev.vector()))
    return 1.0 / (1.0 + math.exp(-z))


def decide(ev: Evidence, threshold: float = THRESHOLD) -> Decision:
    p = probability(ev)
    return Decision(p >= threshold, p, threshold, ev)
