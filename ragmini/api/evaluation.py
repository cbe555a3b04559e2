"""Evaluation from Python: retrieval runs, answer runs, fusion tuning, the run history
and the benchmark datasets (`ragmini eval ...`, `ragmini datasets build`).

Each function takes a `Store` (or a store folder) or a BEIR dataset folder; a
store's own runs go through its methods, so this module depends on the store and
never the other way round.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ragmini.api import defaults as D
from ragmini.api.errors import QueryError, RagminiError, errors, no_string
from ragmini.api.records import PathLike
from ragmini.api.reports import (
    AnswerEvalReport,
    ConversationReport,
    DatasetBuild,
    EvalHistory,
    EvalReport,
    EvalSweep,
)
from ragmini.api.checks import cutoffs_of, ints
from ragmini.api.store import Store, as_store, is_dataset, open

if TYPE_CHECKING:
    from eval.tuning import TuneResult


def evaluate(target: Store | PathLike, *, split: str = "test", queries: PathLike | None = None,
             methods: Sequence[str] | None = None, ks: Sequence[int] | None = None,
             chunk_size: int | Sequence[int] = D.CHUNK_SIZE,
             overlap: int | Sequence[int] = D.OVERLAP,
             seed: int = 0, resamples: int = 10_000, where: Sequence[str] | str | None = None,
             report: PathLike | None = None, progress: bool = False
             ) -> EvalReport | EvalSweep:
    """Recall@k, precision@k, MRR@10, nDCG@10 and MAP per method, document level, with
    paired significance tests between every two methods (`ragmini eval`).

    Args:
        target: a `Store` (or a store folder) scored on labelled `queries` (default
            corpus/queries.jsonl, written for the bundled corpus); or a BEIR dataset
            folder (corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv), whose corpus is
            ingested once into a cached store of its own.
        split: the qrels split of a dataset.
        methods: default every method indexed in the store plus its fusions; for a
            dataset glove, glove-sif, sbert, bm25, tfidf, hybrid, hybrid-rrf.
        ks: cut-offs for recall@k and precision@k; default 1, 3, 5, 10 (and 20, 100
            for a dataset large enough).
        chunk_size, overlap: a dataset's chunking; lists sweep every combination and
            return an EvalSweep.
        seed, resamples: of the bootstrap and the randomization test.
        where: evaluate on a slice: only chunks of documents matching these filters
            are ranked, and judgements outside it are dropped.
        report: also write report.md, metrics.json, TREC runs and recall_at_k.png here.

    Returns an EvalReport (an EvalSweep for several chunkings); every run is also
    recorded in the store's history. Scores are deterministic; `latency_ms` is not.
    """
    from eval import runs as eval_runs

    sizes, overlaps = ints(chunk_size, "chunk_size"), ints(overlap, "overlap")
    if not is_dataset(target):
        if sizes != [D.CHUNK_SIZE] or overlaps != [D.OVERLAP]:
            raise RagminiError("chunk_size and overlap sweeps need a dataset (a store "
                               "keeps the chunking it was ingested with)", param="chunk_size")
        result: EvalReport | EvalSweep = as_store(target).evaluate(
            queries, methods=methods, ks=ks, seed=seed, resamples=resamples, where=where)
    else:
        chosen = no_string(methods, "methods") if methods is not None else None
        with errors():
            runs = eval_runs.evaluate_dataset(Path(target), split, cutoffs_of(ks), chosen,
                                              sizes, overlaps, seed, resamples,
                                              progress=progress,
                                              where=[where] if isinstance(where, str) else where)
        reports = tuple(EvalReport(r) for r in runs)
        result = reports[0] if len(reports) == 1 else EvalSweep(reports)
    if report is not None:
        result.write_report(report)
    return result


def evaluate_answers(target: Store | PathLike, *, answers: PathLike | None = None,
                     generators: Sequence[str] = D.ANSWER_EVAL_GENERATORS,
                     split: str = "test", limit: int | None = None, k: int = D.ASK_K,
                     strict: bool = D.STRICT, abstain: bool = D.ABSTAIN, seed: int = 0,
                     resamples: int = 10_000, report: PathLike | None = None,
                     progress: bool = False) -> AnswerEvalReport:
    """Answer quality per generator: abstention, citations, support and closeness to
    reference answers, with paired tests between generators (`ragmini eval answers`).

    `target` is a `Store` (or store folder) with `answers` (jsonl of id, text,
    relevant, answer; default corpus/answers.jsonl), or a BEIR dataset folder with
    answers.jsonl. `split` is dev, test or all; `limit` takes the first N questions.
    """
    from eval.runs import evaluate_answer_run

    if not is_dataset(target):
        out = as_store(target).evaluate_answers(
            answers, generators=generators, split=split, limit=limit, k=k, strict=strict,
            abstain=abstain, seed=seed, resamples=resamples, progress=progress)
    else:
        names = no_string(generators, "generators")
        with errors():
            out = AnswerEvalReport(evaluate_answer_run(
                dataset=Path(target), generators=names, split=split, limit=limit, k=k,
                strict=strict, abstain=abstain, seed=seed, resamples=resamples,
                progress=progress))
    if report is not None:
        out.write_report(report)
    return out


def evaluate_conversations(dataset: PathLike, *, methods: Sequence[str] = (D.METHOD,),
                           split: str = "test", seed: int = 0, resamples: int = 10_000,
                           progress: bool = False) -> ConversationReport:
    """Follow-up retrieval on a folder with corpus.jsonl (BEIR) and conversations.jsonl
    (`ragmini eval conversations`): the last turn of each conversation retrieved alone,
    made standalone from the earlier turns (the rule `ask` uses), and as the given
    rewrite (the ceiling); recall@5, recall@10 and MRR@10 with paired tests."""
    from eval.conversations import evaluate_conversation_run

    with errors():
        return ConversationReport(tuple(evaluate_conversation_run(
            Path(dataset), no_string(methods, "methods"), split=split, seed=seed,
            resamples=resamples, progress=progress)))


def tune(fusion: str, target: Store | PathLike, *, split: str = "dev",
         queries: PathLike | None = None, chunk_size: int = D.CHUNK_SIZE,
         overlap: int = D.OVERLAP,
         record: bool = True, progress: bool = False) -> TuneResult:
    """Fit a fusion's weights (hybrid, hybrid-wrrf) on labelled queries and, with
    `record`, store them so later searches with that fusion use them
    (`ragmini eval --tune`).

    `target` is a `Store` (or store folder) with `queries` (default
    corpus/queries.jsonl) or a BEIR dataset folder, tuned on `split` (report results
    on a split you did not tune on). Returns `eval.tuning.TuneResult` (`best`,
    `rows`, `to_dict()`).
    """
    from eval import runs as eval_runs

    if not is_dataset(target):
        return as_store(target).tune(fusion, queries, record=record, progress=progress)
    with errors():
        return eval_runs.tune(fusion, dataset=Path(target), split=split,
                              chunk_size=chunk_size, overlap=overlap, record=record,
                              progress=progress)


def history(target: Store | PathLike, limit: int = D.HISTORY_LIMIT, *,
            chunk_size: int = D.CHUNK_SIZE, overlap: int = D.OVERLAP) -> EvalHistory:
    """Past evaluation runs, newest first (`ragmini eval history`): of a `Store` (or
    store folder), or of a BEIR dataset's cached store at that chunking."""
    if is_dataset(target):
        from eval.beir import dataset_store_dir

        return open(dataset_store_dir(Path(target), chunk_size, overlap)).history(limit)
    return as_store(target).history(limit)


def build_dataset(name: str, out: PathLike, *, packages: Sequence[str] | None = None,
                  update: bool = True, work: PathLike | None = None,
                  progress: bool = False) -> DatasetBuild:
    """Build a benchmark dataset in BEIR layout (`ragmini datasets build`): "manpages"
    (Debian man pages, the apropos task; `packages` picks the Debian packages) or
    "faq" (questions with reference answers, for `evaluate_answers`). Downloads
    packages with apt-get, never installs them."""
    with errors():
        if name == "faq":
            from eval.faqs import build as build_faq

            meta = build_faq(Path(out), work=Path(work) if work else None, update=update,
                             progress=progress)
        elif name == "manpages":
            from eval.manpages import PACKAGES, build

            chosen = tuple(no_string(packages, "packages")) if packages else PACKAGES
            meta = build(Path(out), chosen, work=Path(work) if work else None, update=update,
                         progress=progress)
        else:
            raise QueryError(f"unknown dataset '{name}'; choose manpages or faq", param="name")
    return DatasetBuild(name, Path(out), meta)

