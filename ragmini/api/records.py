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

    from generation.answer import Answer as AnswerRecord
    from generation.answer import SentenceSupport
    from generation.prompt import Source
    from ingest.filters import Where
    from ingest.pipeline import IngestReport
    from ingest.reading import DocumentFile as ReadingFile
    from retrieval.ingesting import UploadsResult
    from ingest.reading import DocumentText as ReadingText
    from ingest.store import ChunkRow
    from retrieval.contract import Hit, MethodReport, MethodStatus
    from retrieval.ingesting import IngestResult as IndexingResult
    from retrieval.status import StoreStatus

PathLike = Union[str, os.PathLike]


def json_text(body: dict, indent: int | None = 2) -> str:
    """A body as the CLI's `--json` prints it: indented UTF-8 JSON (one line with
    `indent=None`, as `ragmini watch --json` prints each event). Stored sources
    are valid UTF-8 already (`ingest.paths`); anything else that came from a file
    name or an argument in undecodable bytes has each such byte shown as U+FFFD."""
    import json

    from ingest.paths import scrub

    return scrub(json.dumps(body, ensure_ascii=False, indent=indent))


@dataclass(frozen=True)
class SearchResult:
    """The ranked chunks for one query: `search --json`.

    Iterate it for the hits (`retrieval.contract.Hit`: rank, score, chunk_id,
    doc_id, source, title, text). `behind` counts store commits the index lags
    (an ingest is running or was interrupted); 0 when current. `generation` is the
    store generation the index answered for (a fusion: the older of its parts).
    `reason` says why there are no hits (no word of the query is known to the method,
    the filter keeps nothing that matches); None when there are.
    """

    query: str
    method: str
    hits: tuple[Hit, ...]
    where: tuple[str, ...] = ()
    behind: int = 0
    generation: int | None = None
    reason: str | None = None

    @classmethod
    def of(cls, query: str, method: str, where: Where | None, hits: Sequence[Hit],
           behind: int = 0, generation: int | None = None,
           reason: str | None = None) -> SearchResult:
        return cls(query, method, tuple(hits), tuple(where.to_list()) if where else (), behind,
                   generation, reason)

    def to_dict(self) -> dict:
        return {"query": self.query, "method": self.method, "where": list(self.where),
                "hits": [h.to_dict() for h in self.hits], "generation": self.generation,
                "reason": self.reason}

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
    searched_for: str = ""  # the standalone query searched (a follow-up made from `history`)
    rewrite: str = "as asked"  # how that query was made
    stand_in: str | None = None  # the generator that wrote instead of `fallback_from`

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
    """A stored document's text as ragmini read it, rebuilt from its chunks, and where
    each chunk lies in it (`text[start - offset:end - offset]`)."""

    record: ReadingText

    @property
    def text(self) -> str:
        return self.record.text

    @property
    def source(self) -> str:
        return self.record.source

    @property
    def title(self) -> str:
        return self.record.title

    @property
    def chunks(self) -> tuple[ChunkRow, ...]:
        return self.record.chunks

    @property
    def pages(self) -> tuple[int, int] | None:
        return self.record.pages

    def to_dict(self) -> dict:
        return self.record.to_dict()


@dataclass(frozen=True, eq=False)
class DocumentFile:
    """A stored document's original file, open for reading: `media_type`, `name`,
    `size`, `blocks()` to stream it, `close()` (or use it as a context manager)."""

    handle: ReadingFile

    def __getattr__(self, name: str):
        return getattr(self.handle, name)

    def __enter__(self) -> DocumentFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.handle.close()


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
class Uploads:
    """What became of each uploaded file (`POST /api/documents`): `files` with status
    ingested, replaced, unchanged, skipped or rejected, the doc_id each got, and the
    store's documents and chunks after."""

    result: UploadsResult

    @property
    def files(self) -> tuple:
        return self.result.files

    def to_dict(self) -> dict:
        return self.result.to_dict()


@dataclass(frozen=True)
class QuerySets:
    """The labelled query sets an eval of this store can use, by id (the bundled set,
    and each split of every BEIR folder whose corpus the store holds)."""

    default: str
    choices: tuple

    def to_dict(self) -> dict:
        return {"default": self.default, "query_sets": [q.to_dict() for q in self.choices]}


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
