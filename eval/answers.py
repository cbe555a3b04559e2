"""Answer-level evaluation: do generators answer, abstain and cite as they should?

A question set has a reference answer per question, or none when the corpus
does not answer it (abstaining is then right). Two layouts:

- a BEIR folder plus ``answers.jsonl`` (``{"_id", "answer": text | null}``), and
  ``questions/<split>.txt`` listing a split's question ids when present (the
  FAQ set from ``ragmini datasets build faq``); its corpus gets a cached store;
- a jsonl file of ``{"id", "text", "relevant": [doc ids], "answer"}`` lines over
  a store's corpus (``corpus/answers.jsonl`` for the bundled documents), split
  dev/test by a stable hash of the id.

Every generator answers every question through `generation.ask.ask`, so
abstention, support scoring and --strict are the ones users get. Metrics per
generator, per question where defined, then the same paired tests as retrieval.
"""

from __future__ import annotations

import hashlib
import json
import re
import string
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.errors import RagminiError
from core.timing import percentile
from eval.stats import DEFAULT_RESAMPLES, Comparison, compare

METRICS = ("abstain_precision", "abstain_recall", "abstain_balanced_accuracy",
           "citation_validity", "citation_hit", "support_rate", "answer_similarity", "token_f1",
           "other_document_share", "latency_ms_p50")
# Per-question metrics compared between generators (abstention is decided before
# generation, so it is the same for every generator and not compared).
PAIRED = ("citation_validity", "citation_hit", "support_rate", "answer_similarity", "token_f1",
          "other_document_share")
DEFAULT_GENERATORS = ("extractive", "smollm2")


@dataclass(frozen=True)
class Question:
    qid: str
    text: str
    reference: str | None  # None: the corpus does not answer it
    relevant: frozenset[str]  # doc ids that answer it


@dataclass(frozen=True)
class QuestionResult:
    qid: str
    answer: str
    abstained: bool
    citations: list[int]
    invalid_citations: list[int]
    cited_docs: list[str]
    support_rate: float | None
    unsupported: list[dict]  # {"text", "score", "source_sentence"} of unsupported sentences
    similarity: float | None
    token_f1: float | None
    latency_ms: float
    # Share of the answer's sentences that cite only documents other than the
    # relevant ones (an answerable question answered; None otherwise).
    other_document_share: float | None = None


@dataclass(frozen=True)
class AnswerEvalResult:
    dataset: str
    split: str
    questions: list[Question]
    generators: dict[str, dict[str, float]]
    per_question: dict[str, list[QuestionResult]]
    comparisons: list[Comparison] = field(default_factory=list)
    settings: dict = field(default_factory=dict)

    @property
    def n_unanswerable(self) -> int:
        return sum(q.reference is None for q in self.questions)

    def to_dict(self) -> dict:
        return {"dataset": self.dataset, "split": self.split,
                "n_questions": len(self.questions), "n_unanswerable": self.n_unanswerable,
                "settings": self.settings, "generators": self.generators,
                "comparisons": [c.to_dict() for c in self.comparisons]}


def split_of(qid: str) -> str:
    """dev or test, stably, for question files without a split of their own."""
    return "test" if int(hashlib.sha1(qid.encode()).hexdigest(), 16) % 2 else "dev"


def _jsonl(path: Path) -> list[tuple[int, dict]]:
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise RagminiError(f"cannot read {path}: {exc.strerror}") from exc
    rows = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RagminiError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise RagminiError(f"{path}:{lineno}: not a JSON object")
        rows.append((lineno, row))
    if not rows:
        raise RagminiError(f"{path} holds no questions")
    return rows


def _reference(path: Path, lineno: int, row: dict) -> str | None:
    answer = row.get("answer", "missing")
    if answer == "missing" or not (answer is None or (isinstance(answer, str) and answer.strip())):
        raise RagminiError(f"{path}:{lineno}: \"answer\" must be the reference text or null")
    return answer


def load_question_file(path: Path, split: str = "test") -> list[Question]:
    """Questions of `split` ("dev", "test" or "all") from our jsonl format."""
    out, seen = [], set()
    for lineno, row in _jsonl(path):
        qid, text = str(row.get("id", "")), row.get("text")
        if not qid or not isinstance(text, str) or not text.strip():
            raise RagminiError(f"{path}:{lineno}: a question needs an \"id\" and a \"text\"")
        if qid in seen:
            raise RagminiError(f"{path}:{lineno}: duplicate question id {qid}")
        seen.add(qid)
        reference = _reference(path, lineno, row)
        relevant = frozenset(str(d) for d in row.get("relevant") or [])
        if reference is None and relevant:
            raise RagminiError(f"{path}:{lineno}: question {qid} has a null answer but names "
                               "relevant documents; an unanswerable question has none")
        if split in ("all", split_of(qid)):
            out.append(Question(qid, text, reference, relevant))
    return out


def load_qa_dataset(directory: Path, split: str = "test") -> list[Question]:
    """Questions of a BEIR folder with answers.jsonl (file order; `split` "all" or one
    listed in questions/<split>.txt, else every question)."""
    directory = Path(directory)
    queries = {str(r.get("_id")): r.get("text") for _, r in _jsonl(directory / "queries.jsonl")}
    qrels: dict[str, set[str]] = {}
    for name in ("dev", "test", "train"):
        path = directory / "qrels" / f"{name}.tsv"
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines()[1:]:
                parts = line.split("\t")
                if len(parts) >= 3 and parts[2].strip() not in ("", "0"):
                    qrels.setdefault(parts[0], set()).add(parts[1])
    listed = directory / "questions" / f"{split}.txt"
    wanted = set(listed.read_text().split()) if split != "all" and listed.is_file() else None
    path = directory / "answers.jsonl"
    out = []
    for lineno, row in _jsonl(path):
        qid = str(row.get("_id", row.get("id", "")))
        if qid not in queries:
            raise RagminiError(f"{path}:{lineno}: question id {qid!r} is not in queries.jsonl")
        reference = _reference(path, lineno, row)
        if reference is None and qrels.get(qid):
            raise RagminiError(f"{path}:{lineno}: question {qid} has a null answer but qrels "
                               "judge documents for it; an unanswerable question has no qrels")
        if wanted is None or qid in wanted:
            out.append(Question(qid, queries[qid], reference, frozenset(qrels.get(qid, ()))))
    return out


_ARTICLES = re.compile(r"\b(a|an|the)\b")
_CITATION = re.compile(r"\[\d+(?:\s*[,;]\s*\d+)*\]")


def _normal_tokens(text: str) -> list[str]:
    """SQuAD's answer normalisation: lower case, no punctuation or articles."""
    text = _CITATION.sub(" ", text.lower())
    text = "".join(ch for ch in text if ch not in string.punctuation)
    return _ARTICLES.sub(" ", text).split()


def token_f1(answer: str, reference: str) -> float:
    """Token-overlap F1 between an answer and the reference (SQuAD)."""
    a, r = _normal_tokens(answer), _normal_tokens(reference)
    common = sum((Counter(a) & Counter(r)).values())
    if not a or not r or not common:
        return 0.0
    precision, recall = common / len(a), common / len(r)
    return 2 * precision * recall / (precision + recall)


def _mean(values: list[float | None]) -> float:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else 0.0


def summarise(questions: Sequence[Question], results: Sequence[QuestionResult]) -> dict[str, float]:
    """The generator-level metrics (see the module docstring)."""
    unanswerable = np.array([q.reference is None for q in questions])
    abstained = np.array([r.abstained for r in results])
    answered = [r for r in results if not r.abstained]
    answerable_answered = [(q, r) for q, r in zip(questions, results)
                           if q.reference is not None and not r.abstained]
    tnr = float(abstained[unanswerable].mean()) if unanswerable.any() else 0.0
    tpr = float((~abstained[~unanswerable]).mean()) if (~unanswerable).any() else 0.0
    return {
        "abstain_precision": float(unanswerable[abstained].mean()) if abstained.any() else 0.0,
        "abstain_recall": tnr,
        "abstain_balanced_accuracy": (tnr + tpr) / 2,
        "citation_validity": _mean([_valid(r) for r in answered]),
        "citation_hit": _mean([_hit(q, r) for q, r in answerable_answered]),
        "support_rate": _mean([r.support_rate or 0.0 for r in answered]),
        "answer_similarity": _mean([r.similarity for _, r in answerable_answered]),
        "token_f1": _mean([r.token_f1 for _, r in answerable_answered]),
        "other_document_share": _mean([r.other_document_share for _, r in answerable_answered]),
        "latency_ms_p50": percentile([r.latency_ms for r in results], 50),
        "answered": float(len(answered)),
    }


def _valid(r: QuestionResult) -> float:
    # Valid: it cites at least one source and only sources it was given.
    return float(bool(r.citations) and not r.invalid_citations)


def _hit(q: Question, r: QuestionResult) -> float:
    return float(bool(q.relevant & set(r.cited_docs)))


def per_question_metrics(questions: Sequence[Question], results: Sequence[QuestionResult]
                         ) -> dict[str, dict[str, float]]:
    """{qid: {metric: value}} for the paired tests, only where a metric is defined."""
    out: dict[str, dict[str, float]] = {}
    for q, r in zip(questions, results):
        row: dict[str, float] = {}
        if not r.abstained:
            row["citation_validity"] = _valid(r)
            row["support_rate"] = r.support_rate or 0.0
            if q.reference is not None:
                row["citation_hit"] = _hit(q, r)
                row["answer_similarity"] = r.similarity or 0.0
                row["token_f1"] = r.token_f1 or 0.0
                if r.other_document_share is not None:
                    row["other_document_share"] = r.other_document_share
        out[q.qid] = row
    return out


def answer_questions(store, questions: Sequence[Question], generator, encoder, *,
                     k: int = 3, strict: bool = False, abstain: bool = True, sampling=None,
                     progress: bool = False, label: str = "") -> list[QuestionResult]:
    """Ask every question with `generator`; score each answer against its reference."""
    from tqdm import tqdm

    from generation.answer import Sampling
    from generation.ask import ask

    results = []
    for q in tqdm(questions, desc=f"answering ({label})", disable=not progress or None,
                  leave=False):
        started = time.perf_counter()
        done = ask(store, q.text, generator, k=k, sampling=sampling or Sampling(), strict=strict,
                   abstain=abstain, embedders={encoder.name: encoder})
        latency = (time.perf_counter() - started) * 1000
        a = done.answer
        similarity = f1 = None
        if q.reference is not None and not a.abstained:
            text = _CITATION.sub(" ", a.answer).strip()
            if text:
                vectors = encoder.embed([text, q.reference])
                similarity = float(vectors[0] @ vectors[1])
            else:
                similarity = 0.0
            f1 = token_f1(a.answer, q.reference)
        by_n = {s.n: s.doc_id for s in a.sources}
        other = None
        if q.reference is not None and not a.abstained and a.sentences:
            other = float(np.mean([bool(s.citations) and all(by_n.get(n) not in q.relevant
                                                             for n in s.citations)
                                   for s in a.sentences]))
        results.append(QuestionResult(
            q.qid, a.answer, a.abstained, a.citations, a.invalid_citations,
            [by_n[n] for n in a.citations if n in by_n], a.support_rate,
            [{"text": s.text, "score": s.support.score,
              "source_sentence": s.support.source_sentence}
             for s in a.sentences if s.support.label == "unsupported"],
            similarity, f1, latency, other))
    return results


def evaluate_answers(store, questions: Sequence[Question], generators: dict, encoder, *,
                     dataset: str = "", split: str = "", k: int = 3, strict: bool = False,
                     abstain: bool = True, seed: int = 0, resamples: int = DEFAULT_RESAMPLES,
                     progress: bool = False) -> AnswerEvalResult:
    """Every generator on every question, with paired tests between generators."""
    if not questions:
        raise RagminiError("no question to evaluate (check the split and --limit)")
    per_question, metrics = {}, {}
    for name, generator in generators.items():
        results = answer_questions(store, questions, generator, encoder, k=k, strict=strict,
                                   abstain=abstain, progress=progress, label=name)
        per_question[name] = results
        metrics[name] = {m: round(v, 4) for m, v in summarise(questions, results).items()}
    comparisons = []
    if len(generators) > 1:
        comparisons = compare({n: per_question_metrics(questions, r)
                               for n, r in per_question.items()}, PAIRED, resamples, seed)
    return AnswerEvalResult(dataset, split, list(questions), metrics, per_question, comparisons,
                            {"k": k, "strict": strict, "abstain": abstain})


def format_answer_table(result: AnswerEvalResult) -> str:
    cols = [("abstain_balanced_accuracy", "abst.bal"), ("abstain_precision", "abst.P"),
            ("abstain_recall", "abst.R"), ("citation_validity", "cite.ok"),
            ("citation_hit", "cite.hit"), ("support_rate", "support"),
            ("answer_similarity", "sim"), ("token_f1", "tok.F1"),
            ("other_document_share", "other.doc"), ("latency_ms_p50", "p50 ms")]
    width = max(12, *(len(g) + 1 for g in result.generators))
    lines = [f"{'generator':<{width}}" + "".join(f"{c:>10}" for _, c in cols)]
    lines.append("-" * len(lines[0]))
    for name, m in result.generators.items():
        lines.append(f"{name:<{width}}" + "".join(
            f"{m[key]:>10.0f}" if key == "latency_ms_p50" else f"{m[key]:>10.3f}"
            for key, _ in cols))
    lines.append(f"({len(result.questions)} questions, {result.n_unanswerable} unanswerable; "
                 f"strict={result.settings.get('strict')}, "
                 f"abstain={result.settings.get('abstain')})")
    if result.comparisons:
        lines.append("")
        lines.append("paired tests (significant: Holm-adjusted p < 0.05 and 95% bootstrap CI "
                     "excluding 0):")
        lines.extend(c.line() for c in result.comparisons)
    return "\n".join(lines)


def write_answer_report(result: AnswerEvalResult, directory: Path, worst: int = 5) -> Path:
    """report.md (table, significance, worst unsupported sentences) and metrics.json."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "metrics.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    by_id = {q.qid: q for q in result.questions}
    lines = [f"# Answer evaluation: {result.dataset} ({result.split})", "", "```",
             format_answer_table(result), "```", ""]
    for name, results in result.per_question.items():
        flagged = sorted(((u["score"], r.qid, u) for r in results for u in r.unsupported),
                         key=lambda item: (item[0], item[1]))
        if not flagged:
            continue
        lines += [f"## {name}: the least supported sentences", "",
                  "| question | sentence | score | nearest source sentence |", "|---|---|---|---|"]
        for score, qid, u in flagged[:worst]:
            cells = [by_id[qid].text, u["text"], f"{score:.2f}", u["source_sentence"][:200]]
            lines.append("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ")
                                          for c in cells) + " |")
        lines.append("")
    path = directory / "report.md"
    path.write_text("\n".join(lines))
    return path
