"""The HTTP API's request and response models, and what its errors mean.

Request models bound what a request may carry (the 422 check); response models are
for the OpenAPI schema only: the routes return the public API's `to_dict()` bodies
as they are, and tests/test_api_fuzz.py checks every body the server sends against
these. Bodies may gain fields (a hit's metadata, say); the error body may not.
Defaults are the public API's own (ragmini.api.defaults).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Path as PathParam
from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field

from ragmini.api import defaults as D

MAX_QUERY_CHARS = 2000
MAX_K = 100
MAX_OFFSET = 2**31 - 1  # SQLite takes 64-bit integers; no store has this many documents


def _method_pattern() -> str:
    """The method names search, compare and ask take, as a regex for the schema: an
    indexed method, a fusion, or a fusion of two indexed methods (`hybrid:bm25+glove`).
    Documented, not enforced by the 422 check: an unknown name is a 400 naming the
    valid ones."""
    described = D.describe(())
    indexed = "|".join(m for m in described["all_methods"]
                       if m not in {f["name"] for f in described["fusions"]})
    fusions = "|".join(f["name"] for f in described["fusions"])
    return f"^(?:{indexed})$|^(?:{fusions})(?::(?:{indexed})\\+(?:{indexed}))?$"



# The page: its own scripts, styles and images only; never framed by another site.
PAGE_CSP = ("default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
            "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
# A stored HTML or XML file shown inline: no script, nothing loaded from anywhere.
FILE_CSP = "sandbox; default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"


# -- request bodies ----------------------------------------------------------

Text = Annotated[str, Field(min_length=1, max_length=MAX_QUERY_CHARS)]
# An eval job's id: 12 hex digits (uuid4), never "history", a route of its own. Any
# other id is a 404 like an unknown one, so the pattern is documented, not enforced.
JobId = Annotated[str, PathParam(json_schema_extra={"pattern": "^[0-9a-f]{12}$"})]
# Which document, when several share an id: its source as hits and listings give it.
SourceParam = Annotated[str | None, Query(max_length=4096, description=(
    "the document's source (as hits and GET /api/documents give it), to choose among "
    "documents that share the id"))]
MethodName = Annotated[str, Field(max_length=100,
                                  json_schema_extra=lambda s: s.update(pattern=_method_pattern()))]


# Metadata filters, as `--where` takes them: "type=md", "modified>=2026-01-01".
WhereList = Annotated[list[Annotated[str, Field(min_length=1, max_length=500)]],
                      Field(max_length=16, description="metadata conditions, all must hold: "
                            "KEY=VALUE (glob for source), KEY!=VALUE, KEY<VALUE, KEY>=VALUE "
                            "(numbers, dates), KEY~TEXT")]


class CompareBody(BaseModel):
    # Strict: the types the schema says (no "3" for 3, no false for 0).
    model_config = ConfigDict(strict=True)

    q: Text
    methods: list[MethodName] | None = Field(None, min_length=1, max_length=8, description=(
        "default: the dense default, bm25 and the default hybrid, those the store has"))
    k: int = Field(D.COMPARE_K, ge=1, le=MAX_K)
    where: WhereList = Field(default_factory=list)


class TurnIn(BaseModel):
    """One earlier turn of a conversation: a follow-up is made standalone from them."""

    model_config = ConfigDict(strict=True)

    question: Text
    answer: str = Field("", max_length=20_000)


class AskBody(BaseModel):
    model_config = ConfigDict(strict=True)

    question: Text
    # One of GET /api/methods' generators (checked per request: the list is the
    # server's configuration, and any other name would load another model copy).
    generator: str | None = Field(D.GENERATOR, max_length=200, description=(
        "one of GET /api/methods' generators; null: the server's default"))
    method: MethodName = D.METHOD
    k: int = Field(D.ASK_K, ge=1, le=20)
    temperature: float = Field(D.SAMPLING.temperature, ge=0.0, le=5.0)
    top_p: float = Field(D.SAMPLING.top_p, gt=0.0, le=1.0)
    top_k: int = Field(D.SAMPLING.top_k, ge=0, le=1000)
    max_new_tokens: int = Field(D.SAMPLING.max_new_tokens, ge=1, le=512)
    seed: int | None = Field(D.SAMPLING.seed, ge=0, le=2**31 - 1)
    no_repeat_ngram: int = Field(D.SAMPLING.no_repeat_ngram, ge=0, le=10)
    strict: bool = D.STRICT
    abstain: bool = D.ABSTAIN
    where: WhereList = Field(default_factory=list)
    history: list[TurnIn] = Field(default_factory=list, max_length=50, description=(
        "the conversation so far, oldest first: a follow-up is made standalone from it "
        "before retrieval (the body's `searched_for` says what was searched)"))


class EvalBody(BaseModel):
    model_config = ConfigDict(strict=True)

    methods: list[MethodName] | None = Field(None, min_length=1, max_length=8)
    ks: list[Annotated[int, Field(ge=1, le=1000)]] | None = Field(None, min_length=1,
                                                                    max_length=8)
    resamples: int = Field(2000, ge=100, le=10_000)
    where: WhereList = Field(default_factory=list)
    query_set: str | None = Field(None, max_length=2000, description=(
        "the labelled queries to score: an id from GET /api/eval/query-sets (default: "
        "the bundled corpus/queries.jsonl)"))


# -- response bodies -----------------------------------------------------------
# For the OpenAPI schema only: the routes return the CLI's `--json` dicts as they
# are, and tests/test_api_fuzz.py checks every body the server sends against these.
# Bodies may gain fields (a hit's metadata, say); the error body may not.

class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str
    message: str


class ErrorBody(BaseModel):
    """Every error: `{"error": {"code", "message"}}`."""

    model_config = ConfigDict(extra="forbid")
    error: ErrorDetail


class LocatedOut(BaseModel):
    """Where in its document a chunk is: the fields every hit and source carries."""

    pages: list[int] | None = Field(None, description="first and last PDF page the chunk "
                                                    "spans (1-based); null for other formats")
    section: str | None = Field(None, description="the heading the chunk falls under "
                                                  "(DOCX, EPUB, ODT); null otherwise")
    location: str = Field("", description='"p. 7-8", the section, or "" (for citations)')


class HitOut(LocatedOut):
    rank: int
    score: float
    chunk_id: int
    doc_id: str
    source: str
    title: str
    text: str


class SearchOut(BaseModel):
    query: str
    method: str
    where: list[str] = Field(description="the metadata conditions applied")
    hits: list[HitOut]
    generation: int = Field(description="the store generation the method's index answered "
                                        "for (for a fusion, the older of its two indexes)")
    reason: str | None = Field(None, description="why there are no hits (no word of the query "
                                                 "is known to the method, say); null with hits")


class MethodHitsOut(BaseModel):
    hits: list[HitOut]
    generation: int | None = Field(None, description="as in search; absent on an error")
    error: ErrorDetail | None = Field(None, description="this method failed (no index, say); "
                                                        "the others still answered")


class OverlapOut(BaseModel):
    chunk_id: int
    methods: list[str]
    ranks: dict[str, int]


class CompareOut(BaseModel):
    query: str
    k: int
    methods: dict[str, MethodHitsOut]
    overlap: list[OverlapOut]


class SupportOut(BaseModel):
    label: Literal["supported", "weak", "unsupported"]
    score: float
    source_id: int | None
    source_sentence: str


class SentenceOut(BaseModel):
    text: str
    citations: list[int]
    support: SupportOut


class SourceOut(LocatedOut):
    n: int
    doc_id: str
    source: str
    chunk_id: int
    title: str
    text: str


class AskOut(BaseModel):
    question: str
    answer: str
    citations: list[int]
    invalid_citations: list[int]
    sources: list[SourceOut]
    generator: str
    method: str
    prompt_tokens: int
    notes: list[str]
    sentences: list[SentenceOut]
    support_rate: float | None
    strict: bool
    dropped_sentences: int
    abstained: bool
    abstain_score: float | None
    abstain_threshold: float | None
    searched_for: str = Field(description="the query actually searched (a follow-up made "
                                          "standalone from the history)")
    rewrite: str = Field(description="how that query was made")


class MethodStatusOut(BaseModel):
    method: str
    model: str
    vectors: int
    empty: int
    unembedded: int
    index_file_bytes: int
    index_generation: int | None
    behind: int
    problems: list[str]


class StatusOut(BaseModel):
    root: str
    schema_version: int
    generation: int
    documents: int
    chunks: int
    chunking: dict[str, Any] | None
    methods: list[MethodStatusOut]
    consistent: bool
    up_to_date: bool
    repaired: bool


class DocumentOut(BaseModel):
    doc_id: str
    source: str
    title: str
    n_chars: int
    ingested_at: str
    chunks: int
    type: str | None = Field(None, description="the document's type (md, pdf, html, ...)")


class DocumentsOut(BaseModel):
    total: int = Field(description="documents matching `where` in all")
    offset: int
    limit: int
    where: list[str] = Field(description="the metadata conditions applied")
    documents: list[DocumentOut]


class UploadFileOut(BaseModel):
    file: str | None = Field(description="the name the file was sent with")
    status: Literal["ingested", "replaced", "unchanged", "skipped", "rejected"] = Field(
        description="ingested: a new document; replaced: the earlier upload of this name "
                    "is now this file (same doc_id); unchanged: the same bytes again; "
                    "skipped: ingest could not read it (nothing kept); rejected: not a type "
                    "ingest reads")
    doc_id: str | None = Field(None, description="the document's id (`uploads/NAME`), what "
                                                 "DELETE /api/documents/{doc_id} takes")
    stored_as: str | None = Field(None, description="its file in the store's uploads/ folder")
    reason: str | None = None


class UploadOut(BaseModel):
    files: list[UploadFileOut]
    documents: int
    chunks: int


class DeleteOut(BaseModel):
    removed: list[str] = Field(description="the source removed (always one)")
    documents: int


class ChunkSpanOut(BaseModel):
    chunk_id: int
    position: int
    start: int = Field(description="where the chunk starts in `text` (characters)")
    end: int
    pages: list[int] | None
    section: str | None
    location: str


class DocumentTextOut(BaseModel):
    doc_id: str
    source: str
    title: str
    pages: list[int] | None = Field(description="the PDF pages the document spans")
    asked_pages: list[int] | None = Field(description="the page range asked for, if any")
    offset: int = Field(description="where `text` starts in the document (0 unless a page "
                                    "range cut it): a chunk is text[start - offset:end - "
                                    "offset]")
    text: str = Field(description="the document's text as ingest stored it, rebuilt from "
                                  "its chunks")
    chunks: list[ChunkSpanOut]


class AroundOut(LocatedOut):
    chunk_id: int
    position: int
    text: str


class ChunkOut(LocatedOut):
    chunk_id: int
    doc_id: str
    source: str
    title: str
    position: int
    text: str
    around: list[AroundOut] = Field(description="the chunk and its neighbours in reading "
                                                "order")


class FusionOut(BaseModel):
    name: str
    parts: list[str] = Field(description="the two methods it fuses by default")
    available: bool = Field(description="both parts are indexed in this store")


class GeneratorOut(BaseModel):
    name: str
    note: str


class MethodDefaultsOut(BaseModel):
    method: str
    k: int
    compare: list[str]
    generator: str


class MethodsOut(BaseModel):
    methods: list[str] = Field(description="the methods indexed in this store, in the "
                                           "registry's order")
    fusions: list[FusionOut]
    defaults: MethodDefaultsOut
    generators: list[GeneratorOut]


class QuerySetOut(BaseModel):
    id: str
    label: str
    kind: Literal["bundled", "beir"]
    path: str
    dataset: str = Field(description="how eval history names it")
    split: str | None


class QuerySetsOut(BaseModel):
    default: str
    query_sets: list[QuerySetOut]


class EvalStartedOut(BaseModel):
    id: str
    state: Literal["queued", "running", "done", "failed"]


class EvalJobOut(EvalStartedOut):
    result: dict[str, Any] | None
    error: ErrorDetail | None
    plot: str | None


class EvalHistoryOut(BaseModel):
    runs: list[dict[str, Any]]


class HealthOut(BaseModel):
    status: Literal["ok"]


ERRORS = {
    400: "the request cannot be answered as asked: an empty query, an unknown method, "
         "no word the method knows; or a body that cannot be parsed at all",
    401: "the server runs with a token and the request did not carry it",
    403: "a browser sent this request from a page of another site (its Origin or "
         "Sec-Fetch-Site says so): only the server's own page may send it",
    404: "no such document, chunk, document file, eval job or plot",
    409: "the method has no index, or its index disagrees with the store; or an eval "
         "is already running; or several documents share the id and no source was given",
    413: "the body is over the server's limit",
    422: "a parameter or body field is missing, malformed or out of range (the message "
         "names it)",
    503: "the store or a model cannot be opened",
}


def responses(ok: type[BaseModel] | None, *errors: int, token: bool = False,
               write: bool = False, ok_status: int = 200, **ok_extra) -> dict:
    """`responses=` for a route: its success body and its error codes, in the one
    error shape (`write`: not a GET, so a browser on another site gets 403)."""
    out: dict = {}
    if ok is not None:
        out[ok_status] = {"model": ok, **ok_extra}
    for status in (*errors, *((401,) if token else ()), *((403,) if write else ())):
        out[status] = {"model": ErrorBody, "description": ERRORS[status]}
    return out


