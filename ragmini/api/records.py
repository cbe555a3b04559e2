"""The public API's records: frozen results whose `to_dict()` is the `--json` body of
the CLI command of the same name, and the HTTP API's body for the same call.

Records wrap the stages' own results (a `retrieval.contract.Hit`, a
`generation.answer.Answer`, an `eval.runs.EvalRun`) without copying them, so a
field added to a stage's `to_dict()` reaches every front end.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Union
import os

from core.errors import RagminiError
from ragmini.api.errors import error_code

if TYPE_CHECKING:  # types only: none of these is imported at run time until used
    import numpy as np

    from eval.answers import AnswerEvalResult
    from eval.harness import EvalResult
    from eval.runs import EvalRun
    from generation.answer import Answer as AnswerRecord
    from generation.answer import SentenceSupport
    from generation.prompt import Source
    from ingest.filters import Where
    from ingest.pipeline import IngestReport
    from ingest.store import ChunkRow
    from retrieval.contract import Hit, MethodReport, MethodStatus
    from retrieval.ingesting import IngestResult as IndexingResult
    from retrieval.status import StoreStatus

PathLike = Union[str, os.PathLike]


def json_text(body: dict) -> str:
    """A body as the CLI's `--json` prints it: indented UTF-8 JSON. Stored sources
    are valid UTF-8 already (`ingest.paths`); anything else that came from a file
    name or an argument in undecodable bytes has each such byte shown as U+FFFD."""
    import json

    from ingest.paths import scrub

    return scrub(json.dumps(body, ensure_ascii=False, indent=2))


@dataclass(frozen=True)
class SearchResult:
    """The ranked chunks for one query: `search --json`.

    Iterate it for the hits (`retrieval.contract.Hit`: rank, score, chunk_id,
    doc_id, source, title, text). `behind` counts store commits the index lags
    (an ingest is running or was interrupted); 0 when current. `generation` is the
    store generation the index answered for (a fusion: the older of its parts).
    """

    query: str
    method: str
    hits: tuple[Hit, ...]
    where: tuple[str, ...] = ()
    behind: int = 0
    generation: int | None = None

    @classmethod
    def of(cls, query: str, method: str, where: Where | None, hits: Sequence[Hit],
           behind: int = 0, generation: int | None = None) -> SearchResult:
        return cls(query, method, tuple(hits), tuple(where.to_list()) if where else (), behind,
                   generation)

    def to_dict(self) -> dict:
        return {"query": self.query, "method": self.method, "where": list(self.where),
                "hits": [h.to_dict() for h in self.hits], "generation": self.generation}

    def __iter__(self) -> Iterator[Hit]:
        return iter(self.hits)

    def __len__(self) -> int:
        return len(self.hits)

    def __getitem__(self, i: int) -> Hit:
        return self.hits[i]


@dataclass(frozen=True)
class CompareResult:
    """Several methods' rankings of one query, and the chunks they agree on
    (`POST /api/compare`, the page's Compare view).

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
                found = self.results[m]
                methods[m] = {"hits": [h.to_dict() for h in found.hits],
                              "generation": found.generation}
            else:
                exc = self.errors[m]
                methods[m] = {"hits": [], "error": {"code": error_code(exc),
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
    fallback_from: str | None = None  # the generator asked for, when another stood in

    @property
    def summary(self) -> str:
        """E.g. "2 of 3 sentences supported by [1], [2]; 1 weak (~)"."""
        from generation.support import summary_line

        weak = sum(s.support.label == "weak" for s in self.sentences)
        return summary_line(self.sentences) + (f"; {weak} weak (~)" if weak else "")

    @property
    def abstain_score(self) -> float | None:
        return self.record.abstain_score

    @property
    def abstain_threshold(self) -> float | None:
        return self.record.abstain_threshold

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

    def to_markdown(self) -> str:
        """The answer as a chat message: its text with [n] citations, then the numbered
        sources (document, location, title); for an abstention, the closest sources."""
        lines = [self.text.strip() or "(no answer)", ""]
        lines.append("Closest sources:" if self.abstained else "Sources:")
        for s in self.sources:
            where = f" {s.chunk.location}" if s.chunk.location else ""
            lines.append(f"[{s.n}] {s.doc_id}{where} - {s.title}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        from generation.ask import AskResult

        return AskResult(self.record, self.method, self.behind).to_dict()

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

    @property
    def skipped(self) -> list[tuple[str, str]]:
        """(path as people read it, reason) of each file not ingested."""
        from ingest.paths import display_source

        return [(display_source(s.path), s.reason) for s in self.report.skipped]

    @property
    def notes(self) -> list[str]:
        return list(self.report.notes)

    def to_dict(self) -> dict:
        return {**self.report.to_dict(), "chunks_embedded": self.embedded,
                "documents": self.documents, "chunks": self.chunks,
                "seconds": round(self.seconds, 3),
                "methods": {r.method: {"model": r.model, "embedded": r.embedded,
                                       "empty": r.empty, "vectors": r.n_vectors,
                                       "seconds": round(r.seconds, 3)} for r in self.methods}}


@dataclass(frozen=True)
class DocumentList:
    """One page of the store's documents, newest first (`GET /api/documents`):
    `total` matching, and per document doc_id, source, title, n_chars, ingested_at,
    chunks and type."""

    total: int
    offset: int
    limit: int
    documents: tuple[dict, ...]
    where: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {"total": self.total, "offset": self.offset, "limit": self.limit,
                "where": list(self.where), "documents": list(self.documents)}

    def __iter__(self) -> Iterator[dict]:
        return iter(self.documents)

    def __len__(self) -> int:
        return len(self.documents)


@dataclass(frozen=True)
class DocumentText:
    """A stored document's text as ragmini read it (cleaned, extracted), rebuilt from
    its chunks: all of it, or the chunks on `pages` of a PDF."""

    doc_id: str
    source: str
    title: str
    text: str
    chunks: int
    pages: tuple[int, int] | None = None  # the PDF pages the document (or the slice) spans
    asked_pages: tuple[int, int] | None = None

    def to_dict(self) -> dict:
        return {"doc_id": self.doc_id, "source": self.source, "title": self.title,
                "pages": list(self.pages) if self.pages else None,
                "asked_pages": list(self.asked_pages) if self.asked_pages else None,
                "chunks": self.chunks, "text": self.text}


@dataclass(frozen=True)
class ChunkContext:
    """A chunk and its neighbours in reading order (`chunk` is one of `around`)."""

    chunk: ChunkRow
    around: tuple[ChunkRow, ...]

    def to_dict(self) -> dict:
        def body(c: ChunkRow) -> dict:
            return {"chunk_id": c.chunk_id, "position": c.position, "text": c.text,
                    **c.location_fields()}

        c = self.chunk
        return {"chunk_id": c.chunk_id, "doc_id": c.doc_id, "source": c.source,
                "title": c.title, "position": c.position, **c.location_fields(),
                "text": c.text, "around": [body(a) for a in self.around]}


@dataclass(frozen=True)
class Methods:
    """What a store can be asked with, and every default (`/api/methods`): the
    methods it has indexed, the fusions available, the defaults of search, compare
    and ask, and what ingest can build."""

    body: dict

    @property
    def indexed(self) -> list[str]:
        return list(self.body["methods"])

    @property
    def defaults(self) -> dict:
        return dict(self.body["defaults"])

    def to_dict(self) -> dict:
        return self.body


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

    def table(self) -> str:
        """The metrics table and paired tests as `ragmini eval` prints them, under a
        line naming the dataset, its chunking and any slice."""
        from eval.harness import format_table

        result = self.result
        chunking = result.chunking or {}
        label = f"{result.dataset} ({result.split})" if result.split else result.dataset
        sliced = f", where {result.where}" if result.where else ""
        return (f"{label}, chunks {chunking.get('size')}/{chunking.get('overlap')}{sliced}:\n"
                + format_table(result))

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

    @property
    def notes(self) -> list[str]:
        return [n for r in self.reports for n in r.notes]

    def table(self) -> str:
        return "\n\n".join(r.table() for r in self.reports)

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

    def table(self) -> str:
        """The per-generator table as `ragmini eval answers` prints it."""
        from eval.answers import format_answer_table

        return f"{self.result.dataset} ({self.result.split}):\n" + format_answer_table(self.result)

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

