"""Should ragmini answer at all? A decision from the retrieval evidence and the answer.

Before any text is generated, the question's dense (MiniLM) ranking, its BM25
ranking and the extractive answer of its top sources are turned into signals,
and a logistic model fitted on the dev splits of labelled answerable /
unanswerable questions gives the probability that the store holds the answer.
Below the threshold, ragmini says the documents do not answer and lists the
closest sources instead.

The top dense score alone is a weak signal: on FAQ questions whose answer was
removed, neighbouring sections on the same topic score nearly as high. The
signals (`SIGNALS`, all computed by `evidence`; the model reads the subset the
calibration chose):

- ``top``: the top dense cosine (the naive baseline, reported beside the model);
- ``sentence``: the best cosine between the question and one sentence of the
  top 5 passages (an answer is usually one sentence that matches);
- ``coverage``: the share of the question's content words (first 5 letters, a
  crude stemmer) found in the top passage: an answer names what was asked about;
- ``focus``: ``sentence`` minus ``top``;
- ``bm25_per_word``: the top BM25 score per content word of the question: how
  much of the question the best lexical match holds, whatever the embedder says;
- ``agreement``: 1 when the dense and BM25 rankings put the same document first;
- ``answer_relevance``: the best cosine between the question and a sentence of
  the extractive answer (generation/extractive.py: prose only, on the answer's
  document), the answer-side view of ``sentence``;
- ``answer_coverage``: the share of the question's content words the extractive
  answer holds;
- ``question_support``: the support score (generation/support.py) of the question
  read as a claim against the answer's sentences: does the answer say what was
  asked about, specific names and numbers included;
- ``document``: the answer document's score (chunk cosine plus question coverage).

`bench/calibrate_abstain.py` computes every signal for the bundled and the FAQ
question sets, picks the feature set and the threshold on dev only (threshold:
the best mean balanced accuracy with at most 15% of answerable dev questions
abstained in either set), fits the model, and writes it to abstain_model.json
beside this module (loaded here; re-calibrating is a command, not an edit) and
its report, test figures and the top-1 baseline included, to
bench/abstain_calibration.json.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.errors import RagminiError

MODEL_FILE = Path(__file__).with_name("abstain_model.json")
SIGNALS = ("top", "sentence", "coverage", "focus", "bm25_per_word", "agreement",
           "answer_relevance", "answer_coverage", "question_support", "document")
LEXICAL = ("bm25_per_word", "agreement")  # the signals that read the BM25 ranking
ANSWER_SIDE = ("answer_relevance", "answer_coverage", "question_support", "document")
SENTENCE_DEPTH = 5  # top passages whose sentences are compared with the question
ANSWER_SOURCES = 3  # top passages the extractive answer is drawn from, as `ask -k 3`
PREFIX = 5  # letters of a content word compared for `coverage`

_WORD = re.compile(r"[^\W\d_][\w'-]*|\d+")
_STOPWORDS = frozenset("""a about an and are as at be by can could did do does for from had has
have how i if in into is it its me my of on or our should so than that the their them then
there these they this those to up use used using was we what when where which who whom why
will with would you your yourself""".split())


@dataclass(frozen=True)
class Evidence:
    """What retrieval and the extractive answer say about one question: every signal."""

    values: dict[str, float] = field(default_factory=dict)

    def __getattr__(self, name: str) -> float:
        values = self.__dict__.get("values", {})
        if name in values:
            return values[name]
        raise AttributeError(name)

    def vector(self, features: Sequence[str]) -> list[float]:
        return [self.values.get(f, 0.0) for f in features]


@dataclass(frozen=True)
class Model:
    """The fitted decision: logistic coefficients over `features`, and the threshold."""

    features: tuple[str, ...]
    coefficients: tuple[float, ...]
    intercept: float
    threshold: float

    @property
    def reads_lexical(self) -> bool:
        return any(f in LEXICAL for f in self.features)


@dataclass(frozen=True)
class Decision:
    answer: bool
    score: float  # probability that the store holds the answer
    threshold: float
    evidence: Evidence


@functools.lru_cache(maxsize=4)
def load_model(path: Path = MODEL_FILE) -> Model:
    """The model bench/calibrate_abstain.py wrote (cached per process)."""
    try:
        body = json.loads(Path(path).read_text(encoding="utf-8"))
        model = Model(tuple(body["features"]), tuple(float(c) for c in body["coefficients"]),
                      float(body["intercept"]), float(body["threshold"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RagminiError(f"the abstention model {path} cannot be read ({exc}); "
                           "re-create it with `python -m bench.calibrate_abstain`") from None
    unknown = [f for f in model.features if f not in SIGNALS]
    if unknown or len(model.coefficients) != len(model.features):
        raise RagminiError(f"the abstention model {path} names unknown signals {unknown} or "
                           "has a coefficient count that does not match its features")
    return model


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
             embed: Callable[[list[str]], np.ndarray], depth: int = SENTENCE_DEPTH,
             answer_sources: int = ANSWER_SOURCES,
             signals: Sequence[str] = SIGNALS) -> Evidence:
    """The signals of `SIGNALS` from the dense hits and the BM25 hits (retrieval.Hit,
    best first; `lexical` None or [] without a BM25 index: its signals are 0);
    `embed` is the dense method's own encoder (MiniLM). The answer-side signals
    (an extractive answer: two more embed calls) are computed only when `signals`
    names one of them; ask passes the model's features."""
    from generation.extractive import extract
    from generation.prompt import Source
    from generation.support import (
        logistic_score,
        source_units,
        split_sentences,
        unit_features,
    )

    if not dense:
        return Evidence(dict.fromkeys(SIGNALS, 0.0))
    top = float(dense[0].score)
    sentences = [s for h in dense[:depth] for s in split_sentences(h.text)
                 if len(s.split()) >= 4]
    best_sentence = 0.0
    if sentences:
        vectors = embed([question] + sentences)
        best_sentence = float((vectors[1:] @ vectors[0]).max())
    asked = content_words(question)
    values = {"top": top, "sentence": best_sentence,
              "coverage": coverage(question, dense[0].text), "focus": best_sentence - top,
              "bm25_per_word": 0.0, "agreement": 0.0}
    if lexical:
        values["bm25_per_word"] = float(lexical[0].score) / max(1, len(asked))
        values["agreement"] = float(lexical[0].doc_id == dense[0].doc_id)
    values.update(dict.fromkeys(ANSWER_SIDE, 0.0))
    if not any(s in ANSWER_SIDE for s in signals):
        return Evidence({k: float(v) for k, v in values.items()})
    sources = [Source(i, h.chunk) for i, h in enumerate(dense[:answer_sources], 1)]
    made = extract(question, sources, embed)
    values["document"] = made.document_score
    if made.picked:
        text = " ".join(s for _, s in made.picked)
        values["answer_coverage"] = coverage(question, text)
        units = source_units([(1, text)])
        if units:
            vectors = embed([question] + [u.text for u in units])
            values["answer_relevance"] = float((vectors[1:] @ vectors[0]).max())
            values["question_support"] = float(logistic_score(
                unit_features(question, vectors[0], units, vectors[1:])).max())
    return Evidence({k: float(v) for k, v in values.items()})


def probability(ev: Evidence, model: Model | None = None) -> float:
    model = model or load_model()
    z = model.intercept + sum(c * x for c, x in zip(model.coefficients,
                                                     ev.vector(model.features)))
    return 1.0 / (1.0 + math.exp(-z))


def decide(ev: Evidence, threshold: float | None = None, model: Model | None = None) -> Decision:
    model = model or load_model()
    threshold = model.threshold if threshold is None else threshold
    p = probability(ev, model)
    return Decision(p >= threshold, p, threshold, ev)
