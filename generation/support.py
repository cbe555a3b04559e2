"""Sentence-level support marking: which answer sentences do the sources back?

An answer is split into sentences; each sentence (citations stripped) is
compared with every sentence of the sources it cites, or of every source when
it cites none or only numbers that name no source, and the best-matching
source sentence is kept with a score in [0, 1] and a label:

    supported    score >= supported_at   a source sentence says this
    weak         weak_at <= score < ...  related text, but not clearly the claim
    unsupported  score < weak_at         nothing in the searched sources says this

The score is a logistic model over three cheap features of a (claim, source
sentence) pair: MiniLM cosine, lexical coverage (share of the claim's content
words found in the source sentence), and the share of the claim's specific
tokens (numbers, names, acronyms) found nowhere in that source. It was chosen
over cosine or lexical overlap alone (and over adding a negation feature or
windows of two source sentences, which did not help) by
bench/calibrate_support.py on the hand-built pairs of
eval/data/support_pairs.jsonl, which also fits the coefficients and the
thresholds into generation/support_model.json (read here at import); the
figures are in bench/support_calibration.json. No NLI model
ships offline, so this is similarity, not entailment: it catches off-topic and
invented sentences well and wrong numbers or names fairly well, but a fluent
sentence that reuses a source's words to say something else can still pass,
and a paraphrase in quite different words can come out weak.

Example:
    >>> from retrieval.sbert import SbertEmbedder
    >>> marks = score_answer("Temperature divides every logit by T [1].",
    ...                      [(1, "Temperature divides every logit by a number T.")],
    ...                      SbertEmbedder.packaged().embed)
    >>> marks[0].support.label, marks[0].support.source_id
    ('supported', 1)
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.errors import RagminiError

Embed = Callable[[list[str]], np.ndarray]

LABELS = ("supported", "weak", "unsupported")

# --- score ------------------------------------------------------------------
# Features of a (claim, source sentence) pair, in this order (see unit_features):
#   cosine            MiniLM cosine of the two sentences
#   lexical           share of the claim's content-word stems found in the source sentence
#   specific_missing  share of the claim's specific tokens (numbers, number words, names,
#                     acronyms, identifiers like Q4_1) found nowhere in the whole source
FEATURES = ("cosine", "lexical", "specific_missing")

# The fitted model is data, not code: generation/support_model.json, written by
# `python -m bench.calibrate_support` (a re-calibration is that command, not an edit here):
#   coefficients, intercept  a logistic regression over FEATURES (scikit-learn
#     LogisticRegression, C=1.0, class_weight="balanced") fitted on the calibration part
#     of eval/data/support_pairs.jsonl; at runtime the score needs nothing but numpy
#   thresholds  (weak_at, supported_at) on that score, chosen on the calibration part:
#     supported_at the lowest score where "supported" is right >= 90% of the time,
#     weak_at the score maximising Youden's J
# The held-back figures (ROC AUC against cosine or lexical overlap alone, the confusion
# at these thresholds) are in bench/support_calibration.json.
MODEL_FILE = Path(__file__).with_name("support_model.json")


def load_model(path: Path = MODEL_FILE) -> dict:
    """The fitted support model: {"features", "coefficients", "intercept", "thresholds":
    {"weak_at", "supported_at"}, ...}, checked against the features this module computes."""
    fix = ("reinstall ragmini, or write it again with `python -m bench.calibrate_support`")
    try:
        model = json.loads(path.read_text(encoding="utf-8"))
        coefficients = [float(c) for c in model["coefficients"]]
        intercept = float(model["intercept"])
        weak_at = float(model["thresholds"]["weak_at"])
        supported_at = float(model["thresholds"]["supported_at"])
        features = tuple(model["features"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RagminiError(f"the support model {path} is missing or damaged ({exc}); {fix}") from None
    if features != FEATURES or len(coefficients) != len(FEATURES):
        raise RagminiError(f"the support model {path} scores {list(features)} with "
                           f"{len(coefficients)} coefficients; this ragmini computes "
                           f"{list(FEATURES)}: {fix}")
    if not all(map(math.isfinite, [*coefficients, intercept])) \
            or not 0.0 <= weak_at <= supported_at <= 1.0:
        raise RagminiError(f"the support model {path} holds numbers no calibration gives "
                           f"(coefficients {coefficients}, intercept {intercept}, thresholds "
                           f"{weak_at}, {supported_at}); {fix}")
    return {**model, "coefficients": coefficients, "intercept": intercept,
            "thresholds": {"weak_at": weak_at, "supported_at": supported_at}}


_MODEL = load_model()
COEFFICIENTS: tuple[float, ...] = tuple(_MODEL["coefficients"])
INTERCEPT: float = _MODEL["intercept"]
DEFAULT_THRESHOLDS: tuple[float, float] = (_MODEL["thresholds"]["weak_at"],
                                           _MODEL["thresholds"]["supported_at"])

MIN_WORDS = 3  # answer sentences with fewer words are not claims; they are skipped

# --- sentence splitting -----------------------------------------------------
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$")
_BULLET = re.compile(r"^\s*(?:[-*+\u2022\u2023\u25aa]|\d{1,3}[.)])\s+")
_ENUMERATOR = re.compile(r"^(?:\d{1,3}[.)]|[-*+\u2022])\s+")
_CITE = r"\[\d+(?:\s*[,;]\s*\d+)*\]"
_CITATION = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")
# A sentence end: terminator, closing quotes or brackets, then citations that
# belong to the sentence ("... saturates.[1] Next" or "... saturates. [1] Next").
_END = re.compile(
    r"(?:[.!?]+|\u2026)[\"'\u201d\u2019)]*"
    r"(?P<cites>(?:\s*" + _CITE + r")*)"
    r"(?=\s|$)"
)
# Abbreviations after which a full stop never ends a sentence.
_ABBREVIATIONS = frozenset({
    "e.g", "i.e", "cf", "vs", "viz", "al", "approx", "resp", "dr", "mr", "mrs", "ms",
    "prof", "st", "jr", "sr", "inc", "ltd", "co", "corp", "dept", "univ", "eqs",
})
# ... and those that do not end one when a number follows ("No. 5", "Fig. 3").
_NUMBERED_ABBREVIATIONS = frozenset({"no", "nos", "fig", "figs", "eq", "vol", "pp", "p", "sec", "ch", "ref"})


def split_sentences(text: str) -> list[str]:
    """Sentences of answer or source text, in order, whitespace collapsed.

    Headings are units of their own (without the #), list items start a new
    sentence (without the bullet or number), wrapped lines are joined, and a
    full stop ends a sentence only where the next word starts a new one: not in
    decimals (0.75), not after e.g., i.e., et al., Dr., nor before a
    lower-case word. Citations right after the full stop stay with the
    sentence before ("... saturates. [1] Next one.").

    Example:
        >>> split_sentences("BM25 uses b, e.g. 0.75. It saturates. [1]\\n- A list item")
        ['BM25 uses b, e.g. 0.75.', 'It saturates. [1]', 'A list item']
    """
    return [unit for unit, _heading in _units(text)]


def sentence_units(text: str) -> list[tuple[str, bool]]:
    """(sentence, is_heading) pairs of `text`, in order: `split_sentences` with
    each heading marked, for callers that must not take a title for a sentence."""
    return _units(text)


def _units(text: str) -> list[tuple[str, bool]]:
    """(sentence, is_heading) pairs of `text`."""
    out: list[tuple[str, bool]] = []
    for block, heading in _blocks(text):
        if heading:
            out.append((block, True))
        else:
            out.extend((s, False) for s in _split_block(block))
    return out


def _blocks(text: str) -> list[tuple[str, bool]]:
    """Paragraphs, headings and list items, each joined onto one line."""
    blocks: list[tuple[str, bool]] = []
    current: list[str] = []

    def flush() -> None:
        if current:
            joined = " ".join(current).strip()
            if re.search(r"\w", joined):
                blocks.append((joined, False))
            current.clear()

    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        stripped = line.strip()
        if not stripped:
            flush()
            continue
        heading = _HEADING.match(line)
        if heading:
            flush()
            if re.search(r"\w", heading.group(1)):
                blocks.append((heading.group(1).strip(), True))
            continue
        bullet = _BULLET.match(line)
        if bullet:
            flush()
            current.append(line[bullet.end():].strip())
            continue
        current.append(stripped)
    flush()
    return blocks


def _split_block(block: str) -> list[str]:
    block = re.sub(r"\s+", " ", block).strip()
    pieces: list[str] = []
    start = 0
    for match in _END.finditer(block):
        end = match.end()
        rest = block[end:].lstrip()
        if not rest:
            continue
        if match.group("cites") and rest[0].islower() and not any(c.isupper() for c in rest.split()[0]):
            # "[1] says X. [2] says Y." -- the citation opens the next sentence.
            end = match.start("cites")
            rest = block[end:].lstrip()
        if not _is_boundary(block[match.start()], block[start:match.start()], rest):
            continue
        piece = block[start:end].strip()
        if piece:
            pieces.append(piece)
        start = end
    tail = block[start:].strip()
    if tail:
        pieces.append(tail)
    # Enumerators inside a paragraph ("Steps: 1. Load it. 2. Run it.").
    return [_ENUMERATOR.sub("", p, count=1) if _ENUMERATOR.match(p) and len(p.split()) > 1 else p
            for p in pieces]


def _is_boundary(terminator: str, before: str, rest: str) -> bool:
    first = rest[0]
    next_word = rest.split()[0]
    if first.islower() and not any(c.isupper() for c in next_word):
        return False  # "e.g. the", "approx. five"; but "nDCG" or "efSearch" may start one
    if terminator != ".":
        return True
    words = before.split()
    if not words:
        return False
    token = words[-1].lstrip("([\"'\u201c\u2018").lower()
    if token in _ABBREVIATIONS:
        return False
    if token in _NUMBERED_ABBREVIATIONS and first.isdigit():
        return False
    if len(token) == 1 and token.isalpha() and words[-1][-1].isupper():
        return False  # an initial: "J. Smith"
    if token.isdigit() and len(token) <= 3 and (len(words) == 1 or words[-2].endswith(":")):
        return False  # a list enumerator: "2. Then ...", "Steps: 1. Load ..."
    return True


# --- tokens -------------------------------------------------------------------
_STOPWORDS = frozenset("""
a about above after again against all also am an and any are as at be because been before
being below between both but by can could did do does doing down during each either few for
from further had has have having he her here hers him his how however i if in into is it its
itself just many may me might more most much must my of off on once only or other our ours out
over own same she should so some such than that the their theirs them then there these they
this those through thus to too under until up upon very was we were what when where whether
which while who whom why will with would you your yours one ones called usually often
""".split())
_NEGATIONS = frozenset({
    "not", "no", "never", "cannot", "can't", "cant", "don't", "doesn't", "isn't", "aren't",
    "wasn't", "weren't", "won't", "didn't", "hasn't", "haven't", "shouldn't", "couldn't",
    "without", "none", "nothing", "neither", "nor", "n't",
})
_NUMBER_WORDS = frozenset("""
zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen
sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety
hundred thousand million billion trillion half double twice
""".split()) - {"one"}
_TOKEN = re.compile(r"\d+(?:[.,]\d+)*|[^\W\d_][\w@+#'\u2019]*")
_STEMMER = None


def _stem(words: list[str]) -> list[str]:
    global _STEMMER
    if _STEMMER is None:
        import Stemmer  # PyStemmer: the Snowball stemmer bm25s already uses

        _STEMMER = Stemmer.Stemmer("english")
    return _STEMMER.stemWords(words)


def _tokens(text: str) -> list[str]:
    out = []
    for token in _TOKEN.findall(text):
        token = token.replace("\u2019", "'").strip("'")
        if token.lower().endswith("'s"):
            token = token[:-2]
        if token:
            out.append(token)
    return out


def _normal_number(token: str) -> str:
    return token.replace(",", "") if re.fullmatch(r"\d{1,3}(?:,\d{3})+", token) else token


@dataclass(frozen=True)
class _Text:
    """What the features need to know about one piece of text."""

    stems: frozenset[str]
    specifics: frozenset[str]
    negated: bool  # has a negation word; measured as a feature by the bench, not used


def _analyse(text: str) -> _Text:
    raw = _tokens(text)
    lowered = [t.lower() for t in raw]
    content = [t for t in lowered if t not in _STOPWORDS and not t[0].isdigit() and len(t) > 1]
    numbers = [_normal_number(t) for t in lowered if t[0].isdigit()]
    stems = set(_stem(content)) | set(numbers)
    specifics: set[str] = set(numbers)
    for i, (token, low) in enumerate(zip(raw, lowered)):
        if low in _NUMBER_WORDS:
            specifics.add(low)
        elif any(c.isdigit() for c in token) and not token[0].isdigit():
            specifics.add(low)  # Q4_1, MRR@10, ColBERTv2
        elif i > 0 and token[0].isupper() and low not in _STOPWORDS:
            specifics.add(low)  # names and acronyms, not the sentence's first word
        elif i == 0 and len(token) > 1 and token.isupper():
            specifics.add(low)
    return _Text(frozenset(stems), frozenset(specifics),
                 any(t in _NEGATIONS or t.endswith("n't") for t in lowered))


def _source_words(text: str) -> frozenset[str]:
    """Every token of a source, lower-cased, numbers normalised, plus stems."""
    lowered = [t.lower() for t in _tokens(text)]
    return frozenset({_normal_number(t) for t in lowered}) | frozenset(_stem(lowered))


def strip_citations(text: str) -> str:
    """`text` without [n] markers, spaces before punctuation tidied."""
    text = _CITATION.sub("", text)
    text = re.sub(r"\s+([.,;:!?])", r"\1", text)
    return re.sub(r"\s+", " ", text).strip()


def _cited(text: str, valid: Iterable[int]) -> list[int]:
    known = set(valid)
    found: list[int] = []
    for group in _CITATION.findall(text):
        for number in re.split(r"\s*[,;]\s*", group):
            n = int(number)
            if n in known and n not in found:
                found.append(n)
    return found


# --- results ----------------------------------------------------------------
@dataclass(frozen=True)
class Support:
    label: str  # "supported" | "weak" | "unsupported"
    score: float
    source_id: int | None  # the number n of the source it matched best
    source_sentence: str


@dataclass(frozen=True)
class SentenceSupport:
    text: str  # the answer sentence as written, citations included
    citations: list[int]  # valid source numbers it cites, first use order
    support: Support

    def to_dict(self) -> dict:
        return {
            "text": self.text,
            "citations": list(self.citations),
            "support": {
                "label": self.support.label,
                "score": self.support.score,
                "source_id": self.support.source_id,
                "source_sentence": self.support.source_sentence,
            },
        }


# --- scoring ----------------------------------------------------------------
@dataclass(frozen=True)
class Unit:
    """A source sentence, or two adjacent ones (window=True), that can back a claim."""

    source_id: int
    text: str
    window: bool
    info: _Text = field(repr=False)
    source_words: frozenset[str] = field(repr=False)


def source_units(sources: Sequence[tuple[int, str]], windows: bool = False) -> list[Unit]:
    """The units of every source, in source order: its sentences (headings and
    sentences under MIN_WORDS words left out), then, with `windows`, each pair
    of adjacent sentences. Scoring uses sentences only: windows of two were
    measured and did not help (bench/support_calibration.json)."""
    units: list[Unit] = []
    for n, text in sources:
        words = _source_words(text)
        sentences = [s for s, heading in _units(text) if not heading and len(_tokens(s)) >= MIN_WORDS]
        units.extend(Unit(n, s, False, _analyse(s), words) for s in sentences)
        if windows:
            for a, b in zip(sentences, sentences[1:]):
                joined = f"{a} {b}"
                units.append(Unit(n, joined, True, _analyse(joined), words))
    return units


def unit_features(claim: str, claim_vector: np.ndarray, units: Sequence[Unit],
                  unit_vectors: np.ndarray) -> np.ndarray:
    """(len(units), len(FEATURES)) features of one claim (citations stripped) against each unit."""
    info = _analyse(claim)
    out = np.zeros((len(units), len(FEATURES)), dtype=np.float64)
    if not units:
        return out
    out[:, 0] = unit_vectors @ claim_vector
    stems, specifics = info.stems, info.specifics
    for i, unit in enumerate(units):
        out[i, 1] = len(stems & unit.info.stems) / len(stems) if stems else 0.0
        out[i, 2] = len(specifics - unit.source_words) / len(specifics) if specifics else 0.0
    return out


def logistic_score(features: np.ndarray, coefficients: Sequence[float] = COEFFICIENTS,
                   intercept: float = INTERCEPT) -> np.ndarray:
    """The support score in [0, 1] of each row of `features`."""
    z = features @ np.asarray(coefficients, dtype=np.float64) + intercept
    return 1.0 / (1.0 + np.exp(-z))


def label_for(score: float, thresholds: tuple[float, float] = DEFAULT_THRESHOLDS) -> str:
    weak_at, supported_at = thresholds
    if score >= supported_at:
        return "supported"
    if score >= weak_at:
        return "weak"
    return "unsupported"


def _check_thresholds(thresholds: tuple[float, float]) -> tuple[float, float]:
    try:
        weak_at, supported_at = (float(t) for t in thresholds)
    except (TypeError, ValueError):
        raise RagminiError(f"support thresholds must be two numbers (weak_at, supported_at), got {thresholds!r}")
    if not (math.isfinite(weak_at) and math.isfinite(supported_at)) or not 0 <= weak_at <= supported_at <= 1:
        raise RagminiError(
            f"support thresholds must satisfy 0 <= weak_at <= supported_at <= 1, got {thresholds!r}")
    return weak_at, supported_at


def score_answer(answer: str, sources: list[tuple[int, str]], embed: Embed,
                 thresholds: tuple[float, float] = DEFAULT_THRESHOLDS) -> list[SentenceSupport]:
    """Mark each sentence of `answer` supported, weak or unsupported by `sources`.

    sources: (n, text) pairs, n being the number the answer cites as [n].
    embed: any callable list[str] -> (len, d) array of unit-norm vectors (e.g.
        SbertEmbedder.embed); it is called once, for every text together.
    A sentence is compared with the sources it cites, or with all of them when
    it cites none (or only numbers that name no source). Headings and
    sentences of fewer than MIN_WORDS words are not claims and are left out.
    """
    thresholds = _check_thresholds(thresholds)
    numbers = [n for n, _ in sources]
    if len(set(numbers)) != len(numbers):
        raise RagminiError(f"source numbers must be distinct, got {numbers}")
    claims: list[tuple[str, str, list[int]]] = []  # (as written, stripped, cited)
    for sentence, heading in _units(answer):
        stripped = strip_citations(sentence)
        if heading or len(_tokens(stripped)) < MIN_WORDS:
            continue
        claims.append((sentence, stripped, _cited(sentence, numbers)))
    if not claims:
        return []
    units = source_units(sources)
    texts = list(dict.fromkeys([c[1] for c in claims] + [u.text for u in units]))
    vectors = np.asarray(embed(texts), dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != len(texts):
        raise ValueError(f"embed returned shape {vectors.shape} for {len(texts)} texts")
    row = {t: i for i, t in enumerate(texts)}
    unit_vectors = vectors[[row[u.text] for u in units]] if units else np.zeros((0, vectors.shape[1]))
    marked: list[SentenceSupport] = []
    for written, stripped, cited in claims:
        allowed = set(cited) if cited else set(numbers)
        idx = [i for i, u in enumerate(units) if u.source_id in allowed]
        if not idx:
            support = Support("unsupported", 0.0, None, "")
        else:
            chosen = [units[i] for i in idx]
            scores = logistic_score(unit_features(stripped, vectors[row[stripped]], chosen, unit_vectors[idx]))
            best = int(np.argmax(scores))
            score = float(scores[best])
            support = Support(label_for(score, thresholds), round(score, 4), chosen[best].source_id,
                              chosen[best].text)
        marked.append(SentenceSupport(written, cited, support))
    return marked


def support_rate(sentences: Sequence[SentenceSupport]) -> float:
    """Share of sentences labelled supported (weak counts 0); 0.0 when there are none."""
    if not sentences:
        return 0.0
    return sum(s.support.label == "supported" for s in sentences) / len(sentences)


def summary_line(sentences: Sequence[SentenceSupport]) -> str:
    """E.g. "2 of 3 sentences supported by [1], [2]"."""
    if not sentences:
        return "no sentences to check"
    supported = [s for s in sentences if s.support.label == "supported"]
    noun = "sentence" if len(sentences) == 1 else "sentences"
    line = f"{len(supported)} of {len(sentences)} {noun} supported"
    ids = sorted({s.support.source_id for s in supported if s.support.source_id is not None})
    if ids:
        line += " by " + ", ".join(f"[{n}]" for n in ids)
    return line
