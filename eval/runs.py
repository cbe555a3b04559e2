"""Evaluation runs as a user asks for them: on a store with its labelled queries,
or on a BEIR dataset (ingested into a cached store of its own, over a sweep of
chunkings). The CLI and the HTTP server call these with the same arguments.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import RagminiError
from eval.harness import EvalResult, evaluate_methods
from eval.history import record_run
from eval.queries import DEFAULT_QUERIES, QuerySet, bundled_file, default_queries, load_queries
from eval.stats import DEFAULT_RESAMPLES
from ingest.chunk import ChunkConfig
from ingest.filters import parse_where
from ingest.store import Store
from retrieval.ingesting import ingest_and_index
from retrieval.methods import (
    DEFAULT_INGEST,
    DEFAULT_METHOD,
    ENCODER,
    default_eval_methods,
    parse_methods,
    unknown_words,
)

STORE_KS = (1, 3, 5, 10)
DATASET_KS = (1, 3, 5, 10, 20, 100)  # cut at the corpus size


@dataclass(frozen=True)
class EvalRun:
    result: EvalResult
    query_set: QuerySet
    unknown_words: Callable[[str], list[str]] | None = None  # for the report's per-query view
    notes: list[str] = field(default_factory=list)



def parse_ints(value: str, name: str) -> list[int]:
    """[150, 200] from "150,200"; a one-line error naming `name` otherwise."""
    try:
        out = [int(x) for x in value.split(",") if x.strip()]
    except ValueError:
        raise RagminiError(f"{name} takes comma-separated whole numbers, not '{value}'",
                           param=name) from None
    if not out:
        raise RagminiError(f"{name} needs at least one number", param=name)
    return out


def parse_cutoffs(value: str) -> tuple[int, ...]:
    cutoffs = tuple(sorted(set(parse_ints(value, "k"))))
    if cutoffs[0] < 1:
        raise RagminiError("k values must be at least 1", param="k")
    return cutoffs


def evaluate_store(store_path: Path, queries_path: Path | None = None,
                   ks: Sequence[int] | None = None, methods: Sequence[str] | None = None,
                   seed: int = 0, resamples: int = DEFAULT_RESAMPLES,
                   where: Sequence[str] | None = None, query_set: str | None = None) -> EvalRun:
    """Every method of the store (or `methods`) on its labelled queries, recorded
    in the store's history. `where`: evaluate on the slice a metadata filter keeps.
    `query_set`: an id of eval.querysets (a BEIR split whose corpus the store
    holds) instead of the query file `queries_path`."""
    with Store.open(store_path) as store:
        if query_set is not None:
            from eval.querysets import find_query_set

            choice = find_query_set(store, query_set)
            queries, dataset, split = choice.load(), choice.dataset, choice.split or ""
        else:
            queries = load_queries(queries_path or default_queries())
            dataset, split = str(queries_path or DEFAULT_QUERIES), ""
        chosen = (parse_methods(methods) if methods
                  else default_eval_methods(store.methods() or [DEFAULT_METHOD]))
        result = evaluate_methods(store, queries, chosen, ks=tuple(ks or STORE_KS), full=True,
                                  seed=seed, resamples=resamples, dataset=dataset, split=split,
                                  where=parse_where(where))
        with store.writer_lock():
            record_run(store, result)
    return EvalRun(result, queries, unknown_words(chosen))


def evaluate_dataset(dataset: Path, split: str = "test", ks: Sequence[int] | None = None,
                     methods: Sequence[str] | None = None, chunk_sizes: Sequence[int] = (200,),
                     overlaps: Sequence[int] = (30,), seed: int = 0,
                     resamples: int = DEFAULT_RESAMPLES, progress: bool = True,
                     where: Sequence[str] | None = None) -> list[EvalRun]:
    """A BEIR dataset, once per chunking: its corpus is ingested and indexed into a
    cached store (no work the second time), then every method is scored."""
    from eval.beir import dataset_store_dir, load_beir

    query_set = load_beir(dataset, split)
    chosen = parse_methods(methods or default_eval_methods(DEFAULT_INGEST))
    oov = unknown_words(chosen)
    runs = []
    for size, overlap in itertools.product(chunk_sizes, overlaps):
        config = ChunkConfig(size=size, overlap=overlap)
        path = dataset_store_dir(dataset, config.size, config.overlap)
        with Store.open(path, create=True) as store:
            done = ingest_and_index(store, [Path(dataset) / "corpus.jsonl"], chosen,
                                    config=config, progress=progress)
            changed = done.report.new + done.report.changed
            notes = [f"{dataset}: {changed} documents ingested into {path}"] if changed else []
            cutoffs = tuple(ks) if ks else tuple(k for k in DATASET_KS
                                                 if k <= max(done.documents, 10))
            result = evaluate_methods(store, query_set, chosen, ks=cutoffs, full=True,
                                      seed=seed, resamples=resamples,
                                      dataset=Path(dataset).name, split=split,
                                      where=parse_where(where))
            with store.writer_lock():
                record_run(store, result)
        runs.append(EvalRun(result, query_set, oov, notes))
    return runs


def tune(fusion: str, *, store_path: Path | None = None, queries_path: Path | None = None,
         dataset: Path | None = None, split: str = "dev", chunk_size: int = 200,
         overlap: int = 30, record: bool = True, progress: bool = True):
    """`eval --tune FUSION`: fit the fusion on a dataset split (in its cached store)
    or on the store's labelled queries, and record the winner in that store."""
    from eval.tuning import tune_fusion
    from retrieval.methods import FUSIONS

    if fusion not in FUSIONS:
        raise RagminiError(f"unknown fusion '{fusion}'; choose from {', '.join(FUSIONS)}",
                           param="tune")
    if dataset is not None:
        from eval.beir import dataset_store_dir, load_beir

        query_set = load_beir(dataset, split)
        config = ChunkConfig(size=chunk_size, overlap=overlap)
        store = Store.open(dataset_store_dir(dataset, config.size, config.overlap), create=True)
        ingest_and_index(store, [Path(dataset) / "corpus.jsonl"], list(FUSIONS[fusion].parts),
                         config=config, progress=progress)
        label = f"{Path(dataset).name}/{split}"
    else:
        query_set = load_queries(queries_path or default_queries())
        store = Store.open(store_path)
        label = str(queries_path or DEFAULT_QUERIES)
    with store:
        return tune_fusion(store, query_set, fusion, dataset=label, record=record)


def write_reports(runs: list[EvalRun], report_dir: Path) -> list[Path]:
    """One report per run: in `report_dir`, or a c<size>o<overlap> folder in it for
    a sweep."""
    from eval.report import write_report

    folders = []
    for run in runs:
        chunking = run.result.chunking or {}
        target = report_dir if len(runs) == 1 else (
            report_dir / f"c{chunking.get('size')}o{chunking.get('overlap')}")
        write_report(run.result, run.query_set, target, run.unknown_words)
        folders.append(target)
    return folders


DEFAULT_ANSWERS = "corpus/answers.jsonl"


def evaluate_answer_run(*, store_path: Path | None = None, dataset: Path | None = None,
                        answers_path: Path | None = None, generators: Sequence[str] = (),
                        split: str = "test", limit: int | None = None, k: int = 3,
                        strict: bool = True, abstain: bool = True, seed: int = 0,
                        resamples: int = DEFAULT_RESAMPLES, progress: bool = True):
    """`eval answers`: generators on a question set, over a BEIR dataset's cached store
    (`dataset`) or over `store_path` with our question file (default
    corpus/answers.jsonl)."""
    from eval.answers import (
        DEFAULT_GENERATORS,
        evaluate_answers,
        load_qa_dataset,
        load_question_file,
    )
    from generation.models import load_generator

    if limit is not None and limit < 1:
        raise RagminiError("limit must be at least 1", param="limit")
    names = list(dict.fromkeys(g.strip() for g in (generators or DEFAULT_GENERATORS) if g.strip()))
    if dataset:
        from eval.beir import dataset_store_dir

        questions = load_qa_dataset(dataset, split)
        config = ChunkConfig()
        store = Store.open(dataset_store_dir(dataset, config.size, config.overlap), create=True)
        # Abstention compares the dense ranking with BM25's.
        ingest_and_index(store, [Path(dataset) / "corpus.jsonl"], [ENCODER, "bm25"],
                         config=config, progress=progress)
        label = Path(dataset).name
    else:
        path = answers_path or bundled_file(DEFAULT_ANSWERS)
        questions = load_question_file(path, split)
        store = Store.open(store_path)
        label = str(answers_path or DEFAULT_ANSWERS)
    with store:
        loaded = {n: load_generator(n) for n in names}
        from retrieval.methods import get_embedder

        encoder = get_embedder(ENCODER, store)
        return evaluate_answers(store, questions[:limit] if limit else questions, loaded,
                                encoder, dataset=label, split=split, k=k, strict=strict,
                                abstain=abstain, seed=seed, resamples=resamples,
                                progress=progress)
