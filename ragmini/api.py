"""The Python API: one small object in front of the stages, for notebooks and programs.

    >>> import ragmini
    >>> store = ragmini.open("my-store")
    >>> store.ingest(["corpus/docs"])                       # creates the store
    >>> for hit in store.search("how does BM25 rank documents?", k=3):
    ...     print(hit.rank, round(hit.score, 3), hit.doc_id)
    >>> store.ask("What is product quantization?", generator="extractive").text

Every call does what the CLI command of the same name does, with the same defaults,
and returns a frozen record whose `to_dict()` is that command's `--json` body (the
CLI builds its bodies from the same records). Problems are raised as
`ragmini.RagminiError` or one of its subclasses (`StoreError`, `QueryError`,
`IndexStale`, `ModelUnavailable`), never `SystemExit`; nothing is printed, and
progress bars are off unless `progress=True`.

Importing this module is cheap: the stages (and torch) load on first use. Models
load once per process and are shared by every store; a `Store` keeps one database
connection per thread, so searches may run from several threads at once.
See docs/python-api.md for worked examples.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from core.errors import IndexStale, ModelUnavailable, QueryError, RagminiError, StoreError

if TYPE_CHECKING:  # types only: none of these is imported at run time until used
    import numpy as np

    from eval.answers import AnswerEvalResult
    from eval.harness import EvalResult
    from eval.runs import EvalRun
    from eval.tuning import TuneResult
    from generation.answer import Answer as AnswerRecord
    from generation.answer import SentenceSupport
    from generation.prompt import Source
    from ingest.filters import Where
    from ingest.pipeline import IngestReport
    from retrieval.contract import Hit, MethodReport, MethodStatus
    from retrieval.indexing import IngestResult as IndexingResult
    from retrieval.status import StoreStatus

    from ragmini.langchain import RagminiRetriever

# One list: the package re-exports exactly these, lazily (ragmini/__init__.py).
from ragmini import _API

__all__ = list(_API)

# As the CLI: `--store` defaults to $RAGMINI_STORE, else this folder.
DEFAULT_STORE = ".ragmini"
# As `ragmini main()` sets them before any Hugging Face import (setdefault: the
# caller's own settings win).
for _key, _value in (("TOKENIZERS_PARALLELISM", "false"), ("TRANSFORMERS_VERBOSITY", "error"),
                     ("HF_HUB_DISABLE_PROGRESS_BARS", "1")):
    os.environ.setdefault(_key, _value)

PathLike = Union[str, os.PathLike]


# -- errors ------------------------------------------------------------------

@contextlib.contextmanager
def _errors() -> Iterator[None]:
    """The library's own exceptions only: a database failure the store layer did not
    already name becomes a StoreError (as the CLI turns it into one line)."""
    import sqlite3

    try:
        yield
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"the store's database failed ({exc}); check it with "
                         "store.status(), or move the store aside and ingest again") from exc


def _no_string(value: Any, param: str) -> list:
    """A list from a sequence; a lone string is refused rather than read letter by letter."""
    if isinstance(value, (str, bytes, os.PathLike)):
        raise QueryError(f"{param} takes a list, e.g. [{str(value)!r}]", param=param)
    return list(value)


# -- records -----------------------------------------------------------------
# Frozen, and each `to_dict()` is the CLI's `--json` body for the same call.

@dataclass(frozen=True)
class SearchResult:
    """The ranked chunks for one query: `search --json`.

    Iterate it for the hits (`retrieval.contract.Hit`: rank, score, chunk_id,
    doc_id, source, title, text). `behind` counts store commits the index lags
    (an ingest is running or was interrupted); 0 when current.
    """

    query: str
    method: str
    hits: tuple[Hit, ...]
    where: tuple[str, ...] = ()
    behind: int = 0

    @classmethod
    def of(cls, query: str, method: str, where: Where | None, hits: Sequence[Hit],
           behind: int = 0) -> SearchResult:
        return cls(query, method, tuple(hits), tuple(where.to_list()) if where else (), behind)

    def to_dict(self) -> dict:
        return {"query": self.query, "method": self.method, "where": list(self.where),
                "hits": [h.to_dict() for h in self.hits]}

    def __iter__(self) -> Iterator[Hit]:
        return iter(self.hits)

    def __len__(self) -> int:
        return len(self.hits)

    def __getitem__(self, i: int) -> Hit:
        return self.hits[i]


def _error_code(exc: RagminiError) -> str:
    """The HTTP API's error codes, for bodies that carry a failure inside them."""
    if isinstance(exc, IndexStale):
        return "index_unavailable"
    if isinstance(exc, (StoreError, ModelUnavailable)):
        return "unavailable"
    return "bad_request"


@dataclass(frozen=True)
class CompareResult:
    """Several methods' rankings of one query, and the chunks they agree on (the
    HTTP API's compare body, less the index generations).

    `results` holds each method that answered; `errors` each that could not (no
    index, say), which leaves the others standing.
    """

    query: str
    k: int
    results: dict[str, SearchResult]
    errors: dict[str, RagminiError] = field(default_factory=dict)
    where: tuple[str, ...] = ()

    @property
    def overlap(self) -> list[dict]:
        """Chunks found by more than one method, most methods first: `{"chunk_id",
        "methods", "ranks": {method: rank}}`."""
        ranks: dict[int, dict[str, int]] = {}
        for m, result in self.results.items():
            for h in result.hits:
                ranks.setdefault(h.chunk_id, {})[m] = h.rank
        return sorted(({"chunk_id": cid, "methods": sorted(by), "ranks": by}
                       for cid, by in ranks.items() if len(by) > 1),
                      key=lambda o: (-len(o["methods"]), min(o["ranks"].values())))

    def to_dict(self) -> dict:
        methods: dict[str, dict] = {}
        for m in [*self.results, *self.errors]:
            if m in self.results:
                methods[m] = {"hits": [h.to_dict() for h in self.results[m].hits]}
            else:
                exc = self.errors[m]
                methods[m] = {"hits": [], "error": {"code": _error_code(exc),
                                                    "message": str(exc)}}
        return {"query": self.query, "k": self.k, "where": list(self.where),
                "methods": methods, "overlap": self.overlap}


@dataclass(frozen=True)
class Answer:
    """A cited answer: `ask --json`.

    `text` is the answer; `sources` the numbered chunks it was given; `sentences`
    each sentence with its citations and support label; `abstained` is True when
    the documents did not hold an answer and none was written. `record` is the
    library's `generation.answer.Answer` with every field.
    """

    record: AnswerRecord
    method: str
    behind: int = 0
    searched_for: str = ""  # the standalone query searched (a follow-up made from `history`)
    rewrite: str = "as asked"  # how that query was made

    @property
    def text(self) -> str:
        return self.record.answer

    @property
    def question(self) -> str:
        return self.record.question

    @property
    def sources(self) -> list[Source]:
        return self.record.sources

    @property
    def citations(self) -> list[int]:
        return self.record.citations

    @property
    def sentences(self) -> list[SentenceSupport]:
        return self.record.sentences

    @property
    def support_rate(self) -> float | None:
        return self.record.support_rate

    @property
    def abstained(self) -> bool:
        return self.record.abstained

    @property
    def generator(self) -> str:
        return self.record.generator

    @property
    def notes(self) -> list[str]:
        return self.record.notes

    def to_dict(self) -> dict:
        from generation.ask import AskResult

        return AskResult(self.record, self.method, self.behind, self.searched_for,
                         self.rewrite).to_dict()

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class IngestResult:
    """What one ingest did: `ingest --json`. `report` counts documents (new,
    changed, unchanged, removed) and lists skipped files with the reason;
    `methods` has one `MethodReport` per index brought up to date."""

    report: IngestReport
    methods: tuple[MethodReport, ...]
    documents: int
    chunks: int
    seconds: float

    @classmethod
    def of(cls, done: IndexingResult, seconds: float) -> IngestResult:
        return cls(done.report, tuple(done.methods), done.documents, done.chunks, seconds)

    @property
    def embedded(self) -> int:
        """Chunk vectors computed in this run, over all methods."""
        return sum(r.embedded for r in self.methods)

    def to_dict(self) -> dict:
        return {**self.report.to_dict(), "chunks_embedded": self.embedded,
                "documents": self.documents, "chunks": self.chunks,
                "seconds": round(self.seconds, 3),
                "methods": {r.method: {"model": r.model, "embedded": r.embedded,
                                       "empty": r.empty, "vectors": r.n_vectors,
                                       "seconds": round(r.seconds, 3)} for r in self.methods}}


@dataclass(frozen=True)
class Removal:
    """`remove --json`: the sources removed and the documents left."""

    removed: tuple[str, ...]
    documents: int

    def to_dict(self) -> dict:
        return {"removed": list(self.removed), "documents": self.documents}


@dataclass(frozen=True)
class Reindexed:
    """`reindex --json`: one `MethodReport` per rebuilt index."""

    methods: tuple[MethodReport, ...]

    def to_dict(self) -> dict:
        return {"methods": {r.method: {"vectors": r.n_vectors, "unembedded": r.unembedded,
                                       "seconds": round(r.seconds, 3)} for r in self.methods}}


@dataclass(frozen=True)
class Status:
    """`status --json`: documents, chunks, and each index checked against the store.

    `consistent` is False when an index disagrees with the store (the CLI then
    exits 1); `store.status(repair=True)` rebuilds it from stored vectors.
    """

    report: StoreStatus
    repaired: bool = False

    @property
    def consistent(self) -> bool:
        return self.report.consistent

    @property
    def up_to_date(self) -> bool:
        return self.report.up_to_date

    @property
    def documents(self) -> int:
        return self.report.documents

    @property
    def chunks(self) -> int:
        return self.report.chunks

    @property
    def generation(self) -> int:
        return self.report.generation

    @property
    def methods(self) -> list[MethodStatus]:
        return self.report.methods

    def to_dict(self) -> dict:
        return {**self.report.to_dict(), "repaired": self.repaired}


def _dataframe(records: list[dict]):
    """A pandas DataFrame of `records`; pandas is optional."""
    try:
        import pandas
    except ImportError:
        raise RagminiError("to_dataframe() needs pandas, which ragmini does not require; "
                           "install it (`pip install pandas`) or use to_records()") from None
    return pandas.DataFrame.from_records(records)


@dataclass(frozen=True)
class EvalReport:
    """A retrieval evaluation: `eval --json`.

    `metrics[method]["recall@10"]` and so on; `comparisons` are the paired tests
    (`delta`, `ci95`, `p_holm`, `significant`). `to_records()` gives one flat row
    per method and `to_dataframe()` the same as a pandas DataFrame (if pandas is
    installed); `write_report(folder)` writes report.md, metrics.json, TREC runs
    and the recall@k plot, as `eval --report`.
    """

    run: EvalRun

    @property
    def result(self) -> EvalResult:
        return self.run.result

    @property
    def metrics(self) -> dict[str, dict[str, float]]:
        return {m: dict(r.metrics) for m, r in self.result.methods.items()}

    @property
    def comparisons(self) -> list[dict]:
        return [c.to_dict() for c in self.result.comparisons]

    @property
    def n_queries(self) -> int:
        return self.result.n_queries

    @property
    def notes(self) -> list[str]:
        return list(self.run.notes)

    def to_dict(self) -> dict:
        return self.result.to_dict()

    def to_records(self) -> list[dict]:
        chunking = self.result.chunking or {}
        return [{"method": m, "dataset": self.result.dataset, "split": self.result.split,
                 "chunk_size": chunking.get("size"), "overlap": chunking.get("overlap"),
                 **r.metrics, **{f"{q}_ms": v for q, v in r.latency_ms.items()}}
                for m, r in self.result.methods.items()]

    def to_dataframe(self):
        return _dataframe(self.to_records())

    def write_report(self, folder: PathLike) -> Path:
        from eval.runs import write_reports

        return write_reports([self.run], Path(folder))[0]


@dataclass(frozen=True)
class EvalSweep:
    """Several chunkings of one dataset (`eval --dataset --chunk-size 150,200`):
    one `EvalReport` each; `to_dict()` is the CLI's `{"settings": [...]}`."""

    reports: tuple[EvalReport, ...]

    def to_dict(self) -> dict:
        return {"settings": [r.to_dict() for r in self.reports]}

    def to_records(self) -> list[dict]:
        return [row for r in self.reports for row in r.to_records()]

    def to_dataframe(self):
        return _dataframe(self.to_records())

    def write_report(self, folder: PathLike) -> list[Path]:
        from eval.runs import write_reports

        return write_reports([r.run for r in self.reports], Path(folder))

    def __iter__(self) -> Iterator[EvalReport]:
        return iter(self.reports)

    def __len__(self) -> int:
        return len(self.reports)


@dataclass(frozen=True)
class AnswerEvalReport:
    """Answer quality per generator: `eval answers --json`. `generators[name]` holds
    the metrics; `to_records()` / `to_dataframe()` give one row per generator."""

    result: AnswerEvalResult

    @property
    def generators(self) -> dict[str, dict[str, float]]:
        return self.result.generators

    def to_dict(self) -> dict:
        return self.result.to_dict()

    def to_records(self) -> list[dict]:
        return [{"generator": g, "dataset": self.result.dataset, "split": self.result.split,
                 **metrics} for g, metrics in self.result.generators.items()]

    def to_dataframe(self):
        return _dataframe(self.to_records())

    def write_report(self, folder: PathLike) -> Path:
        from eval.answers import write_answer_report

        return write_answer_report(self.result, Path(folder))


@dataclass(frozen=True)
class EvalHistory:
    """Past evaluation runs recorded in a store, newest first: `eval history --json`."""

    runs: tuple[dict, ...]

    def to_dict(self) -> dict:
        return {"runs": list(self.runs)}

    def to_records(self) -> list[dict]:
        """One row per run and method, its metrics as columns."""
        return [{"id": r["id"], "ran_at": r["ran_at"], "dataset": r["dataset"],
                 "split": r["split"], "store_generation": r["store_generation"],
                 "chunk_size": (r["chunking"] or {}).get("size"),
                 "overlap": (r["chunking"] or {}).get("overlap"),
                 "n_queries": r["n_queries"], "method": m, **metrics}
                for r in self.runs for m, metrics in r["metrics"].items()]

    def to_dataframe(self):
        return _dataframe(self.to_records())

    def __iter__(self) -> Iterator[dict]:
        return iter(self.runs)

    def __len__(self) -> int:
        return len(self.runs)


@dataclass(frozen=True)
class DatasetBuild:
    """A dataset built by `build_dataset`: where, and its metadata (the CLI's
    `datasets build --json` body)."""

    name: str
    path: Path
    metadata: dict

    def to_dict(self) -> dict:
        return dict(self.metadata)


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


# -- models shared by the process ------------------------------------------------

_GENERATORS_LOCK = threading.Lock()
_GENERATORS: dict[tuple, Any] = {}


def _generator(name: str, allow_download: bool = False, fallback: bool = True):
    """A generator by name, loaded once per process (embedders are shared the same
    way by retrieval's own memo)."""
    from generation.models import load_generator

    key = (name, allow_download, fallback)
    with _GENERATORS_LOCK:
        if key not in _GENERATORS:
            _GENERATORS[key] = load_generator(name, allow_download=allow_download,
                                              fallback=fallback)
        return _GENERATORS[key]


# -- the store -----------------------------------------------------------------

class Store:
    """A ragmini store folder (SQLite + FAISS indexes), opened with `ragmini.open`.

    Every method mirrors the CLI command of the same name with the same defaults
    and returns a frozen record whose `to_dict()` is that command's `--json` body.
    Reads use one database connection per thread, so `search`, `compare` and `ask`
    may be called from several threads at once; writes (`ingest`, `remove`,
    `reindex`, `status(repair=True)`) take the store's writer lock, as the CLI does.
    Use it as a context manager, or call `close()`: later calls raise StoreError.
    """

    def __init__(self, path: PathLike, *, progress: bool = False):
        self.path = Path(path)
        self.progress = progress
        self._local = threading.local()
        self._connections: weakref.WeakSet = weakref.WeakSet()
        self._lock = threading.Lock()
        self._closed = False

    def __repr__(self) -> str:
        return f"ragmini.Store({str(self.path)!r})"

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the store: this thread's connection now (others' when their threads
        end); any later call raises StoreError."""
        import sqlite3

        self._closed = True
        with self._lock:
            connections = list(self._connections)
        for db in connections:
            with contextlib.suppress(sqlite3.ProgrammingError):  # opened by another thread
                db.close()
        self._local = threading.local()
        milvus = sys.modules.get("retrieval.milvus")  # loaded only if the store uses it
        if milvus is not None:
            milvus.release(self.path)  # Milvus Lite: let other processes open it

    @property
    def exists(self) -> bool:
        """Whether the folder holds a store yet (`ingest` creates one)."""
        from ingest.store import DB_NAME

        return (self.path / DB_NAME).is_file()

    def _db(self, create: bool = False):
        """This thread's connection, opened on first use and kept (each read sees the
        latest commit: WAL, autocommit reads)."""
        if self._closed:
            raise StoreError(f"the store {self.path} was closed; open it again with "
                             f"ragmini.open({str(self.path)!r})")
        db = getattr(self._local, "db", None)
        if db is None:
            from ingest.store import Store as Database

            if not create and not self.exists:
                raise StoreError(f"no ragmini store at {self.path}; ingest documents first: "
                                 f"ragmini.open({str(self.path)!r}).ingest(['docs/'])")
            with _errors():
                db = Database.open(self.path, create=create)
            self._local.db = db
            with self._lock:
                self._connections.add(db)
        return db

    def _progress(self, progress: bool | None) -> bool:
        return self.progress if progress is None else progress

    # -- reading ------------------------------------------------------------

    def search(self, query: str, method: str = "sbert", k: int = 5,
               where: Sequence[str] | str | None = None) -> SearchResult:
        """The top-`k` chunks for `query` by `method` (`ragmini search`).

        Args:
            query: the text to search for.
            method: glove, glove-sif, sbert, bm25, tfidf, w2v, w2v-sif; a fusion
                (hybrid, hybrid-rrf, hybrid-wrrf) or hybrid:A+B.
            k: how many chunks to return (at least 1; more than the store holds
                returns every chunk).
            where: metadata filters, all of which must hold, e.g.
                ["type=md", "source=notes/**", "modified>=2026-01-01"].

        Returns a SearchResult; iterate it for the hits, best first.

        Example:
            >>> [h.doc_id for h in store.search("bm25 ranking", method="bm25", k=2)]
            ['bm25.md', 'hybrid-search.html']
        """
        from ingest.filters import parse_where
        from retrieval.contract import check_queries
        from retrieval.methods import check_method

        check_queries([query], k)
        check_method(method)
        return self._search(query, method, k, parse_where(where))

    def _search(self, query: str, method: str, k: int, parsed: Where | None) -> SearchResult:
        from retrieval.contract import search_one
        from retrieval.methods import open_searcher, select

        with _errors():
            db = self._db()
            allowed = select(db, parsed)
            searcher = open_searcher(db, method)
            hits = search_one(searcher, query, k, allowed)
        return SearchResult.of(query, method, parsed, hits, searcher.behind)

    def compare(self, query: str, methods: Sequence[str] | None = None, k: int = 10,
                where: Sequence[str] | str | None = None) -> CompareResult:
        """Several methods' top-`k` for one query, and the chunks they agree on (the
        web page's Compare view, `POST /api/compare`).

        `methods` defaults to every method indexed in the store plus the fusions of
        those (as `evaluate`). A method that cannot answer (no index) is reported
        in `errors` and leaves the others standing; an unknown name raises.
        """
        from ingest.filters import parse_where
        from retrieval.contract import check_queries
        from retrieval.methods import check_method, default_eval_methods, select

        check_queries([query], k)
        parsed = parse_where(where)
        with _errors():
            select(self._db(), parsed)  # a filter naming an unknown key fails here, once
        if methods is None:
            with _errors():
                methods = default_eval_methods(self._db().methods())
        chosen = list(dict.fromkeys(_no_string(methods, "methods")))
        if not chosen:
            raise QueryError("no method given", param="methods")
        for m in chosen:
            check_method(m)
        results, errors = {}, {}
        for m in chosen:
            try:
                results[m] = self._search(query, m, k, parsed)
            except RagminiError as exc:  # one method failing (no index) leaves the others
                errors[m] = exc
        return CompareResult(query, k, results, errors,
                             tuple(parsed.to_list()) if parsed else ())

    def ask(self, question: str, *, generator: str = "distilgpt2", method: str = "sbert",
            k: int = 3, strict: bool = True, abstain: bool = True, temperature: float = 0.0,
            top_p: float = 1.0, top_k: int = 0, max_new_tokens: int = 128,
            seed: int | None = None, no_repeat_ngram: int = 3,
            where: Sequence[str] | str | None = None, allow_download: bool = False,
            fallback: bool = True, on_text: Callable[[str], None] | None = None,
            history: Sequence[dict] | None = None) -> Answer:
        """A cited answer to `question` from the top-`k` chunks (`ragmini ask`).

        Args:
            generator: a Hugging Face id, a local model folder, "smollm2" (packaged)
                or "extractive" (no language model: the sources' best sentences,
                cited; fast and deterministic). "distilgpt2" falls back to the
                packaged SmolLM2 offline unless `fallback=False`; the answer's
                `generator` says so. Generators load once per process.
            strict: drop sentences the sources do not support; with none left,
                answer extractively.
            abstain: say "The documents do not answer this." instead of answering
                when the retrieval evidence says so.
            temperature, top_p, top_k, max_new_tokens, seed, no_repeat_ngram:
                sampling; temperature 0 is greedy, and a seed makes sampling
                repeatable.
            where: answer from the documents matching these filters only.
            allow_download: let a missing generator be fetched from the hub once.
            on_text: called with each piece of generated text as it is written.
            history: the conversation so far, oldest first, as
                [{"question": ..., "answer": ...}, ...]; a follow-up ("and how do I
                list it?") is made standalone from it before retrieval, and the
                answer's `searched_for` says what was searched.

        Example:
            >>> store.ask("What is product quantization?", generator="extractive").text
            >>> store.ask("How is it trained?", generator="extractive", history=[
            ...     {"question": "What is product quantization?", "answer": "..."}]).searched_for
        """
        from generation.answer import Sampling
        from generation.ask import ask as ask_store
        from ingest.filters import parse_where
        from retrieval.contract import check_queries
        from retrieval.methods import check_method

        check_queries([question], k)
        check_method(method)
        parsed = parse_where(where)
        from generation.followup import check_history

        sampling = Sampling(temperature, top_p, top_k, max_new_tokens, seed, no_repeat_ngram)
        turns = check_history(history)
        with _errors():
            db = self._db()
            # Generator first: a missing model fails before any retrieval work.
            gen = _generator(generator, allow_download, fallback)
            done = ask_store(db, question, gen, method=method, k=k, sampling=sampling,
                             strict=strict, abstain=abstain, where=parsed, on_text=on_text,
                             history=turns)
        return Answer(done.answer, done.method, done.behind, done.searched_for, done.rewrite)

    def status(self, repair: bool = False) -> Status:
        """Documents, chunks, methods and indexes, and whether every index agrees with
        the store (`ragmini status`). With `repair`, rebuild whatever disagrees or
        lags, from stored vectors (embedding only what is missing)."""
        from retrieval.status import check_store
        from retrieval.status import repair as repair_store

        with _errors():
            db = self._db()
            report = check_store(db)
            repaired = False
            if repair and not (report.consistent and report.up_to_date):
                report, repaired = repair_store(db, progress=self.progress), True
        return Status(report, repaired)

    def history(self, limit: int = 20) -> EvalHistory:
        """Past evaluation runs recorded in the store, newest first (`eval history`)."""
        from eval.history import list_runs

        with _errors():
            return EvalHistory(tuple(list_runs(self._db(), limit)))

    # -- writing ------------------------------------------------------------

    def ingest(self, paths: Sequence[PathLike], *, methods: Sequence[str] | None = None,
               chunk_size: int = 200, overlap: int = 30, index_type: str | None = None,
               prune: bool = False, max_file_mb: float = 20.0, follow_links: bool = False,
               encoder: str | None = None, extract_timeout: float = 60.0,
               vector_store: str | None = None, engine: str = "local",
               ray_address: str | None = None, progress: bool | None = None) -> IngestResult:
        """Add folders or files (.txt .md .html, PDF, DOCX, EPUB, ODT, RSS/Atom feeds,
        BEIR corpus.jsonl), creating the store if needed (`ragmini ingest`).

        Re-running it is cheap: unchanged documents are skipped, changed ones
        re-chunked and re-embedded, and every method's index brought up to date.

        Args:
            paths: a list of files and folders.
            methods: methods to index; default glove, glove-sif, sbert, bm25, tfidf
                (`retrieval.methods.DEFAULT_INGEST`).
            chunk_size, overlap: chunk length and overlap in MiniLM tokens (a store
                keeps the chunking it was first ingested with).
            index_type: FAISS index of the dense methods: flat (exact, default),
                hnsw, ivf-pq or sq8; kept for later runs.
            prune: remove stored documents whose files under `paths` are gone.
            max_file_mb: skip larger files. follow_links: follow symbolic links.
            encoder: how sbert vectors are made: "onnx-int8" (the default for a new
                store), "onnx" or "torch"; naming another than the store's re-embeds.
            extract_timeout: seconds allowed to read one PDF, DOCX, EPUB or ODT file.
            vector_store: "faiss" (default), "milvus" (Milvus Lite in the store folder)
                or a Milvus server URI ("milvus://HOST:PORT", "http(s)://..."); kept.
            engine: "local", or "ray" to chunk and embed as a Ray Data pipeline
                (`ray_address` names a cluster; else a local Ray runs for the call).
            progress: show progress bars (default: the store's setting, off).

        Example:
            >>> store.ingest(["corpus/docs"], methods=["sbert", "bm25"]).report.new
            41
        """
        from ingest.chunk import ChunkConfig
        from retrieval.indexing import ingest_and_index
        from retrieval.methods import DEFAULT_INGEST, parse_methods

        chosen = parse_methods(_no_string(methods, "methods") if methods is not None
                               else DEFAULT_INGEST)
        items = [Path(p) for p in _no_string(paths, "paths")]
        if not items:
            raise QueryError("paths names no file or folder", param="paths")
        config = ChunkConfig(size=chunk_size, overlap=overlap)
        started = time.perf_counter()
        with _errors():
            done = ingest_and_index(self._db(create=True), items, chosen, config=config,
                                    index_type=index_type, progress=self._progress(progress),
                                    max_bytes=int(max_file_mb * 2**20),
                                    follow_links=follow_links, prune=prune,
                                    encoder=encoder, extract_timeout=extract_timeout,
                                    vector_store=vector_store, engine=engine,
                                    ray_address=ray_address)
        return IngestResult.of(done, time.perf_counter() - started)

    def remove(self, paths: Sequence[PathLike]) -> Removal:
        """Remove the documents of files (or everything under folders), which need not
        exist any more (`ragmini remove`). Indexes are rebuilt from stored vectors;
        no model loads."""
        from retrieval.indexing import remove_and_index

        with _errors():
            db = self._db()
            removed = remove_and_index(db, [Path(p) for p in _no_string(paths, "paths")])
            return Removal(tuple(removed), db.count("documents"))

    def reindex(self, methods: Sequence[str] | None = None, index_type: str | None = None,
                vector_store: str | None = None) -> Reindexed:
        """Rebuild indexes from the vectors stored with the chunks, no model time
        (`ragmini reindex`); `index_type` switches the dense methods (flat, hnsw,
        ivf-pq, sq8), `vector_store` moves them (faiss, milvus, a server URI)."""
        from retrieval.indexing import reindex as rebuild

        chosen = _no_string(methods, "methods") if methods else ()
        with _errors():
            db = self._db()
            with db.writer_lock():
                return Reindexed(tuple(rebuild(db, chosen, index_type, vector_store)))

    # -- evaluation -----------------------------------------------------------

    def evaluate(self, queries: PathLike | None = None, *, methods: Sequence[str] | None = None,
                 ks: Sequence[int] | None = None, seed: int = 0, resamples: int = 10_000,
                 where: Sequence[str] | str | None = None) -> EvalReport:
        """Score methods on labelled queries (`ragmini eval`): see `ragmini.evaluate`."""
        return evaluate(self, queries=queries, methods=methods, ks=ks, seed=seed,
                        resamples=resamples, where=where)

    def evaluate_answers(self, answers: PathLike | None = None, *,
                         generators: Sequence[str] = ("extractive", "smollm2"),
                         split: str = "test", limit: int | None = None, k: int = 3,
                         strict: bool = True, abstain: bool = True, seed: int = 0,
                         resamples: int = 10_000) -> AnswerEvalReport:
        """Answer quality per generator (`ragmini eval answers`): see
        `ragmini.evaluate_answers`."""
        return evaluate_answers(self, answers=answers, generators=generators, split=split,
                                limit=limit, k=k, strict=strict, abstain=abstain, seed=seed,
                                resamples=resamples)

    def tune(self, fusion: str, queries: PathLike | None = None, *,
             record: bool = True) -> TuneResult:
        """Fit a fusion's weights on the store's labelled queries and record them
        (`ragmini eval --tune`): see `ragmini.tune`."""
        return tune(fusion, self, queries=queries, record=record)

    # -- exploring --------------------------------------------------------------

    def neighbors(self, word: str, n: int = 5) -> Neighbors:
        """The `n` words nearest to `word` under the word2vec model trained on this
        store's chunks (`explore neighbors --method w2v`; needs the w2v method)."""
        return neighbors(word, n, method="w2v", store=self)

    def corpus_map(self, method: str = "sbert", plot: PathLike | None = None) -> CorpusMap:
        """The store's chunks in 2-D from their stored vectors, coloured by document
        (`explore map`); no model loads. `plot` writes a PNG."""
        from retrieval.geometry import corpus_map

        if method not in ("glove", "sbert"):
            raise QueryError(f"corpus_map takes glove or sbert, not '{method}'",
                             param="method")
        with _errors():
            db = self._db()
            ids, vectors = db.vectors(method)
            if not len(ids):
                raise QueryError(f"the store has no {method} vectors; ingest with "
                                 f"methods=['{method}']", param="method")
            rows = db.chunk_rows(ids.tolist())
        doc_ids = [rows[int(i)].doc_id for i in ids]
        result = corpus_map(vectors, doc_ids)
        if plot:
            from eval.plots import plot_corpus_map

            plot_corpus_map(result.pca, result.tsne, doc_ids, Path(plot), method=method,
                            same_doc_neighbour=result.same_doc_neighbour, chance=result.chance)
        return CorpusMap(method, tuple(doc_ids), result.same_doc_neighbour, result.chance,
                         result.pca, result.tsne, Path(plot) if plot else None)

    # -- LangChain ----------------------------------------------------------------

    def as_langchain_retriever(self, method: str = "sbert", k: int = 5,
                               where: Sequence[str] | str | None = None) -> RagminiRetriever:
        """A LangChain `BaseRetriever` over this store: `invoke(query)` returns
        `Document`s whose `page_content` is the chunk text and whose `metadata`
        holds source, doc_id, title, chunk_id, score, rank, method and the chunk's
        position (and a page span, when chunks carry one). Needs langchain-core.

        Example:
            >>> retriever = store.as_langchain_retriever(method="bm25", k=3)
            >>> [d.metadata["doc_id"] for d in retriever.invoke("bm25")]
            ['bm25.md', 'bm25.md', 'hybrid-search.html']
        """
        from ingest.filters import parse_where
        from ragmini.langchain import RagminiRetriever
        from retrieval.methods import check_method

        check_method(method)
        if k < 1:
            raise QueryError(f"k must be at least 1 (got {k})", param="k")
        parse_where(where)  # a malformed filter fails now, not at the first query
        return RagminiRetriever(store=self, method=method, k=k,
                                where=(where,) if isinstance(where, str) else
                                tuple(where) if where else None)


def open(path: PathLike | None = None, *, progress: bool = False) -> Store:  # noqa: A001
    """Open the ragmini store in folder `path` for searching, asking, ingesting and
    evaluating from Python.

    Args:
        path: the store folder; default `$RAGMINI_STORE`, else `.ragmini` (as the
            CLI's `--store`). The folder need not hold a store yet: `ingest`
            creates one, and reading a store that does not exist raises StoreError.
        progress: show progress bars during ingest and repairs (off by default;
            each call's `progress=` overrides it).

    Returns a `Store`. Opening loads no model and imports no deep-learning
    library; an existing store is checked (its schema version, a damaged file)
    here, so a bad path fails now with StoreError.

    Example:
        >>> import ragmini
        >>> store = ragmini.open("my-store")
        >>> store.ingest(["corpus/docs"])
        >>> store.search("how does BM25 rank documents?", k=3)[0].doc_id
        'bm25.md'
    """
    chosen = Path(path if path is not None else os.environ.get("RAGMINI_STORE", DEFAULT_STORE))
    if chosen.exists() and not chosen.is_dir():
        raise StoreError(f"{chosen} exists and is not a folder; choose another store path")
    store = Store(chosen, progress=progress)
    if store.exists:
        store._db()  # fail now on another schema version or a damaged database
    return store


def _as_store(target: Store | PathLike) -> Store:
    return target if isinstance(target, Store) else open(target)


def _is_dataset(target: Store | PathLike) -> bool:
    return not isinstance(target, Store) and (Path(target) / "corpus.jsonl").is_file()


def _ints(value: int | Sequence[int], name: str) -> list[int]:
    values = [value] if isinstance(value, int) else list(value)
    if not values or not all(isinstance(v, int) for v in values):
        raise QueryError(f"{name} takes a whole number or a list of them", param=name)
    return values


def evaluate(target: Store | PathLike, *, split: str = "test", queries: PathLike | None = None,
             methods: Sequence[str] | None = None, ks: Sequence[int] | None = None,
             chunk_size: int | Sequence[int] = 200, overlap: int | Sequence[int] = 30,
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

    wheres = [where] if isinstance(where, str) else where
    chosen = _no_string(methods, "methods") if methods is not None else None
    cutoffs = tuple(sorted(set(_ints(list(ks), "k")))) if ks is not None else None
    if cutoffs is not None and cutoffs[0] < 1:
        raise QueryError("k values must be at least 1", param="k")
    sizes, overlaps = _ints(chunk_size, "chunk_size"), _ints(overlap, "overlap")
    with _errors():
        if _is_dataset(target):
            runs = eval_runs.evaluate_dataset(Path(target), split, cutoffs, chosen, sizes,
                                              overlaps, seed, resamples, progress=progress,
                                              where=wheres)
        else:
            if sizes != [200] or overlaps != [30]:
                raise RagminiError("chunk_size and overlap sweeps need a dataset (a store "
                                   "keeps the chunking it was ingested with)", param="chunk_size")
            store = _as_store(target)
            if not store.exists:
                store._db()  # the one "no store here" message
            runs = [eval_runs.evaluate_store(store.path, Path(queries) if queries else None,
                                             cutoffs, chosen, seed, resamples, where=wheres)]
    reports = tuple(EvalReport(r) for r in runs)
    result: EvalReport | EvalSweep = reports[0] if len(reports) == 1 else EvalSweep(reports)
    if report is not None:
        result.write_report(report)
    return result


def evaluate_answers(target: Store | PathLike, *, answers: PathLike | None = None,
                     generators: Sequence[str] = ("extractive", "smollm2"),
                     split: str = "test", limit: int | None = None, k: int = 3,
                     strict: bool = True, abstain: bool = True, seed: int = 0,
                     resamples: int = 10_000, report: PathLike | None = None,
                     progress: bool = False) -> AnswerEvalReport:
    """Answer quality per generator: abstention, citations, support and closeness to
    reference answers, with paired tests between generators (`ragmini eval answers`).

    `target` is a `Store` (or store folder) with `answers` (jsonl of id, text,
    relevant, answer; default corpus/answers.jsonl), or a BEIR dataset folder with
    answers.jsonl. `split` is dev, test or all; `limit` takes the first N questions.
    """
    from eval.runs import evaluate_answer_run

    names = _no_string(generators, "generators")
    with _errors():
        if _is_dataset(target):
            result = evaluate_answer_run(dataset=Path(target), generators=names, split=split,
                                         limit=limit, k=k, strict=strict, abstain=abstain,
                                         seed=seed, resamples=resamples, progress=progress)
        else:
            store = _as_store(target)
            if not store.exists:
                store._db()
            result = evaluate_answer_run(store_path=store.path,
                                         answers_path=Path(answers) if answers else None,
                                         generators=names, split=split, limit=limit, k=k,
                                         strict=strict, abstain=abstain, seed=seed,
                                         resamples=resamples, progress=progress)
    out = AnswerEvalReport(result)
    if report is not None:
        out.write_report(report)
    return out


def tune(fusion: str, target: Store | PathLike, *, split: str = "dev",
         queries: PathLike | None = None, chunk_size: int = 200, overlap: int = 30,
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

    with _errors():
        if _is_dataset(target):
            return eval_runs.tune(fusion, dataset=Path(target), split=split,
                                  chunk_size=chunk_size, overlap=overlap, record=record,
                                  progress=progress)
        store = _as_store(target)
        if not store.exists:
            store._db()
        return eval_runs.tune(fusion, store_path=store.path,
                              queries_path=Path(queries) if queries else None, record=record,
                              progress=progress)


def history(target: Store | PathLike, limit: int = 20, *, chunk_size: int = 200,
            overlap: int = 30) -> EvalHistory:
    """Past evaluation runs, newest first (`ragmini eval history`): of a `Store` (or
    store folder), or of a BEIR dataset's cached store at that chunking."""
    if _is_dataset(target):
        from eval.beir import dataset_store_dir

        return open(dataset_store_dir(Path(target), chunk_size, overlap)).history(limit)
    return _as_store(target).history(limit)


def build_dataset(name: str, out: PathLike, *, packages: Sequence[str] | None = None,
                  update: bool = True, work: PathLike | None = None,
                  progress: bool = False) -> DatasetBuild:
    """Build a benchmark dataset in BEIR layout (`ragmini datasets build`): "manpages"
    (Debian man pages, the apropos task; `packages` picks the Debian packages) or
    "faq" (questions with reference answers, for `evaluate_answers`). Downloads
    packages with apt-get, never installs them."""
    with _errors():
        if name == "faq":
            from eval.faqs import build as build_faq

            meta = build_faq(Path(out), work=Path(work) if work else None, update=update,
                             progress=progress)
        elif name == "manpages":
            from eval.manpages import PACKAGES, build

            chosen = tuple(_no_string(packages, "packages")) if packages else PACKAGES
            meta = build(Path(out), chosen, work=Path(work) if work else None, update=update,
                         progress=progress)
        else:
            raise QueryError(f"unknown dataset '{name}'; choose manpages or faq", param="name")
    return DatasetBuild(name, Path(out), meta)


# -- the embeddings lab ----------------------------------------------------------

def _glove():
    from retrieval.methods import MODELS

    from retrieval.glove import GloveEmbedder

    return MODELS.get("glove", GloveEmbedder.packaged)


def neighbors(word: str, n: int = 5, *, method: str = "glove",
              store: Store | PathLike | None = None) -> Neighbors:
    """The `n` words nearest to `word` by cosine similarity (`explore neighbors`).

    `method` "glove" reads the packaged GloVe 6B; "w2v" the word2vec model trained
    on a store's chunks (pass `store`; it is never trained here).

    Example:
        >>> [w for w, _ in ragmini.neighbors("king", 3).neighbors]
        ['prince', 'queen', 'ii']
    """
    from retrieval.geometry import neighbors as nearest

    if method == "w2v":
        from retrieval.w2v import w2v_for_store

        with _errors():
            embedder = w2v_for_store(_as_store(store if store is not None else
                                               os.environ.get("RAGMINI_STORE", DEFAULT_STORE)
                                               )._db(), train=False)
        vocabulary = "store's w2v"
    elif method == "glove":
        embedder, vocabulary = _glove(), "GloVe"
    else:
        raise QueryError(f"neighbors takes glove or w2v, not '{method}'", param="method")
    result = nearest(embedder.keyed_vectors, word, n, vocabulary=vocabulary)
    return Neighbors(word, method, embedder.model, tuple(result))


def analogy(a: str, b: str, c: str, n: int = 5) -> Analogy:
    """The words nearest to a - b + c under GloVe, the inputs excluded
    (`explore analogy`).

    Example:
        >>> ragmini.analogy("king", "man", "woman", n=1).results[0][0]
        'queen'
    """
    from retrieval.geometry import analogy as solve

    return Analogy(a, b, c, tuple(solve(_glove().keyed_vectors, a, b, c, n)))


def similarity(sentences: Sequence[str], *, method: str = "sbert", metric: str = "cosine",
               plot: PathLike | None = None) -> Similarity:
    """Pairwise similarity of `sentences` and a 2-D layout of them (MDS on cosine
    distances), with clusters (`explore similarity`).

    `method` is "glove" (averaged word vectors: blind to word order) or "sbert";
    `metric` is cosine, euclidean or dot. `plot` writes a PNG (heatmap + layout).

    Example:
        >>> same = ragmini.similarity(["dog bites man", "man bites dog"], method="glove")
        >>> round(float(same.matrix[0, 1]), 3)
        1.0
    """
    from retrieval.geometry import METRICS, mds_layout, pairwise
    from retrieval.methods import get_embedder

    items = _no_string(sentences, "sentences")
    if len(items) < 2:
        raise QueryError("give at least two sentences to compare", param="sentences")
    if any(not s.strip() for s in items):
        raise QueryError("a sentence is empty", param="sentences")
    if method not in ("glove", "sbert"):
        raise QueryError(f"similarity takes glove or sbert, not '{method}'", param="method")
    if metric not in METRICS:
        raise QueryError(f"unknown metric '{metric}'; choose from {', '.join(METRICS)}",
                         param="metric")
    embedder = get_embedder(method, None)
    keeps_lengths = metric == "dot" and hasattr(embedder, "mean_vectors")
    vectors = embedder.mean_vectors(items) if keeps_lengths else embedder.embed(items)
    empty = [s for s, v in zip(items, vectors) if not v.any()]
    if empty:
        raise QueryError(f"no word of '{empty[0]}' is in the {method} vocabulary")
    matrix = pairwise(vectors, metric)
    layout = mds_layout(1.0 - pairwise(vectors, "cosine"))
    note = (f"{embedder.model} normalises its outputs, so dot equals cosine here"
            if metric == "dot" and not keeps_lengths else "")
    if plot:
        from eval.plots import plot_similarity

        plot_similarity(items, matrix, layout.coords, layout.clusters, Path(plot),
                        method=method, metric=metric)
    return Similarity(method, metric, tuple(items), matrix, layout.coords, layout.clusters,
                      note, Path(plot) if plot else None)


def tokens(text: str, tokenizer: str = "generator") -> Tokens:
    """How `text` is cut into tokens (`explore tokens`): "generator" (the ask model's
    byte-level BPE; Ġ marks a leading space), "sbert" (MiniLM WordPiece; ## continues
    a word), or a model folder or id."""
    from generation.inspect import token_view

    if not text.strip():
        raise QueryError("the text is empty", param="text")
    if tokenizer == "sbert":
        from ingest.chunk import load_tokenizer

        tok, name = load_tokenizer(), "all-MiniLM-L6-v2 (WordPiece)"
    else:
        gen = _generator("distilgpt2" if tokenizer == "generator" else tokenizer,
                         fallback=tokenizer == "generator")
        tok, name = gen.tokenizer, gen.name
    view = token_view(tok, text)
    return Tokens(name, tuple(view.tokens), tuple(view.ids), view.n_words)


def generate(prompt: str, n: int = 3, *, temperature: float = 0.8, top_p: float = 1.0,
             top_k: int = 0, seed: int = 0, max_new_tokens: int = 40,
             show_probs: bool = False, generator: str = "distilgpt2") -> Generation:
    """`n` sampled continuations of `prompt` side by side (`explore generate`);
    continuation i uses seed `seed + i`, so the same seed gives the same set. With
    `show_probs`, also the 10 likeliest first tokens at this temperature."""
    from generation.answer import Sampling
    from generation.inspect import continuations, next_token_probs

    if not prompt.strip():
        raise QueryError("the prompt is empty", param="prompt")
    if n < 1:
        raise QueryError("n must be at least 1", param="n")
    sampling = Sampling(temperature, top_p, top_k, max_new_tokens, seed, no_repeat_ngram=0)
    gen = _generator(generator)
    texts = continuations(gen, prompt, n, sampling)
    probs = next_token_probs(gen, prompt, temperature) if show_probs else []
    return Generation(prompt, gen.name, temperature, top_p, top_k, seed, tuple(texts),
                      tuple(probs))
