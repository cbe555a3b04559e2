"""`ragmini serve`: the HTTP API and the web page, over one store.

The JSON bodies are the CLI's `--json` bodies, built by the same calls
(`Hit.to_dict`, `AskResult.to_dict`, `StoreStatus.to_dict`, `EvalResult.to_dict`).
Models and index files are loaded once per process and shared across requests
(core.cache); every request opens the store afresh, so an ingest by the CLI is
seen on the next request, and a search sees one whole generation. Writes
(upload, delete, eval recording) take the store's writer lock, as the CLI does.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import FastAPI, File, Path as PathParam, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.errors import IndexStale, ModelUnavailable, QueryError, RagminiError, StoreError
from retrieval.methods import (
    DEFAULT_INGEST,
    DEFAULT_METHOD,
    FUSIONS,
    INDEXED,
    default_eval_methods,
)

STATIC = Path(__file__).with_name("static")
MAX_QUERY_CHARS = 2000
MAX_K = 100
MAX_OFFSET = 2**31 - 1  # SQLite takes 64-bit integers; no store has this many documents
UPLOAD_DIR = "uploads"
# What ask may name over HTTP: the page's choices. Any other name would load another
# model copy per name (an HF id, a server-side folder, or a SmolLM2 fallback each time).
GENERATORS = ("distilgpt2", "smollm2", "extractive")


def _method_pattern() -> str:
    """The method names search, compare and ask take, as a regex for the schema: an
    indexed method, a fusion, or a fusion of two indexed methods (`hybrid:bm25+glove`).
    Documented, not enforced by the 422 check: an unknown name is a 400 naming the
    valid ones."""
    indexed = "|".join(INDEXED)
    return f"^(?:{indexed})$|^(?:{'|'.join(FUSIONS)})(?::(?:{indexed})\\+(?:{indexed}))?$"


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def _status_of(exc: RagminiError) -> tuple[int, str]:
    if isinstance(exc, QueryError):
        return 400, "bad_request"
    if isinstance(exc, IndexStale):
        return 409, "index_unavailable"
    if isinstance(exc, (StoreError, ModelUnavailable)):
        return 503, "unavailable"
    return 400, "bad_request"


# -- request bodies ----------------------------------------------------------

Text = Annotated[str, Field(min_length=1, max_length=MAX_QUERY_CHARS)]
# An eval job's id: 12 hex digits (uuid4), never "history", a route of its own. Any
# other id is a 404 like an unknown one, so the pattern is documented, not enforced.
JobId = Annotated[str, PathParam(json_schema_extra={"pattern": "^[0-9a-f]{12}$"})]
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
    methods: list[MethodName] = Field(default_factory=lambda: default_eval_methods(
        DEFAULT_INGEST), min_length=1,
                                      max_length=8)
    k: int = Field(10, ge=1, le=MAX_K)
    where: WhereList = Field(default_factory=list)


class TurnIn(BaseModel):
    """One earlier turn of a conversation (generation/followup.py)."""

    model_config = ConfigDict(strict=True)

    question: Text
    answer: str = Field("", max_length=20_000)


class AskBody(BaseModel):
    model_config = ConfigDict(strict=True)

    question: Text
    generator: Literal[GENERATORS] = "distilgpt2"
    method: MethodName = DEFAULT_METHOD
    k: int = Field(3, ge=1, le=20)
    temperature: float = Field(0.0, ge=0.0, le=5.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int = Field(0, ge=0, le=1000)
    max_new_tokens: int = Field(128, ge=1, le=512)
    seed: int | None = Field(None, ge=0, le=2**31 - 1)
    no_repeat_ngram: int = Field(3, ge=0, le=10)
    strict: bool = True
    abstain: bool = True
    where: WhereList = Field(default_factory=list)
    history: list[TurnIn] = Field(default_factory=list, max_length=50)


class EvalBody(BaseModel):
    model_config = ConfigDict(strict=True)

    methods: list[MethodName] | None = Field(None, min_length=1, max_length=8)
    ks: list[Annotated[int, Field(ge=1, le=1000)]] | None = Field(None, min_length=1,
                                                                    max_length=8)
    resamples: int = Field(2000, ge=100, le=10_000)
    where: WhereList = Field(default_factory=list)


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
    searched_for: str
    rewrite: str


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


class DocumentsOut(BaseModel):
    total: int
    offset: int
    limit: int
    documents: list[DocumentOut]


class UploadFileOut(BaseModel):
    file: str | None
    status: Literal["ingested", "skipped", "rejected"]
    stored_as: str | None = None
    reason: str | None = None


class UploadOut(BaseModel):
    files: list[UploadFileOut]
    documents: int
    chunks: int


class DeleteOut(BaseModel):
    removed: list[str]
    documents: int


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


_ERRORS = {
    400: "the request cannot be answered as asked: an empty query, an unknown method, "
         "no word the method knows; or a body that cannot be parsed at all",
    401: "the server runs with a token and the request did not carry it",
    404: "no such document, eval job or plot",
    409: "the method has no index, or its index disagrees with the store; or an eval "
         "is already running",
    413: "the body is over the server's limit",
    422: "a parameter or body field is missing, malformed or out of range (the message "
         "names it)",
    503: "the store or a model cannot be opened",
}


def _responses(ok: type[BaseModel] | None, *errors: int, token: bool = False,
               ok_status: int = 200, **ok_extra) -> dict:
    """`responses=` for a route: its success body and its error codes, in the one
    error shape."""
    out: dict = {}
    if ok is not None:
        out[ok_status] = {"model": ok, **ok_extra}
    for status in (*errors, *((401,) if token else ())):
        out[status] = {"model": ErrorBody, "description": _ERRORS[status]}
    return out


# -- the engine: warm models and background jobs --------------------------------

@dataclass
class EvalJob:
    id: str
    state: str = "queued"  # queued, running, done, failed
    started: float = field(default_factory=time.time)
    result: dict | None = None
    error: dict | None = None
    plot: Path | None = None


@dataclass
class Settings:
    store: Path
    token: str | None = None
    max_upload_bytes: int = 20 * 2**20
    cors_origin: str | None = None


class Engine:
    """What stays warm between requests: generators and eval jobs (embedders and
    index files are shared process-wide by retrieval's own caches)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._generators: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._local = threading.local()
        self.jobs: dict[str, EvalJob] = {}
        self.jobs_lock = threading.Lock()
        self._jobs_dir: Path | None = None

    @property
    def jobs_dir(self) -> Path:
        """Eval reports, in a temporary folder made on the first eval."""
        with self.jobs_lock:
            if self._jobs_dir is None:
                self._jobs_dir = Path(tempfile.mkdtemp(prefix="ragmini-serve-"))
            return self._jobs_dir

    @contextlib.contextmanager
    def open_store(self):
        """This thread's connection to the store, opened on first use and kept: each
        read sees the latest commit (WAL, autocommit reads), and opening costs
        half a millisecond a request otherwise."""
        from ingest.store import Store

        store = getattr(self._local, "store", None)
        if store is None:
            store = self._local.store = Store.open(self.settings.store)
        yield store

    def generator(self, name: str):
        from generation.models import load_generator

        with self._lock:
            if name not in self._generators:
                self._generators[name] = load_generator(name)
            return self._generators[name]

    def preload(self) -> None:
        from retrieval.methods import get_embedder

        with self.open_store() as store:
            for method in store.methods():
                try:
                    get_embedder(method, store)
                except QueryError:
                    pass  # bm25 and the like have no model
        self.generator("distilgpt2")

    def close(self) -> None:
        if self._jobs_dir is not None:
            shutil.rmtree(self._jobs_dir, ignore_errors=True)


# -- the app -------------------------------------------------------------------

class Guard:
    """Body size cap and the bearer token, before any route runs. Plain ASGI: a
    BaseHTTPMiddleware costs about a millisecond a request."""

    def __init__(self, app, settings: Settings):
        self.app, self.settings = app, settings
        self.expected = f"Bearer {settings.token}".encode() if settings.token else None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        headers = dict(scope["headers"])
        # JSON bodies are small; an upload may carry up to 8 files at the limit.
        cap = (self.settings.max_upload_bytes * 8 + 2**20 if path == "/api/documents"
               else 2**20)
        length = headers.get(b"content-length", b"")
        too_large = f"the request body is over {cap / 2**20:g} MB"
        if length.isdigit() and int(length) > cap:
            return await _error(413, "too_large", too_large)(scope, receive, send)
        if self.expected and path.startswith("/api/") and not hmac.compare_digest(
                headers.get(b"authorization", b""), self.expected):
            response = _error(401, "unauthorized", "this server needs `Authorization: "
                                                   "Bearer <token>`")
            response.headers["WWW-Authenticate"] = "Bearer"
            return await response(scope, receive, send)
        if not length.isdigit():  # a chunked body: count it as it arrives
            receive = _capped(receive, cap, too_large)
        return await self.app(scope, receive, send)


def _capped(receive, cap: int, message: str):
    """`receive` that stops a body without a Content-Length at `cap` bytes (the
    route's body reading turns the HTTPException into the usual 413)."""
    seen = 0

    async def wrapped():
        nonlocal seen
        event = await receive()
        if event["type"] == "http.request":
            seen += len(event.get("body", b""))
            if seen > cap:
                raise StarletteHTTPException(413, message)
        return event

    return wrapped


def create_app(settings: Settings, preload: bool = False) -> FastAPI:
    engine = Engine(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        # Here, not only after uvicorn.run returns: on SIGTERM uvicorn shuts down
        # gracefully, then re-raises the signal, and the process ends without it.
        yield
        engine.close()

    app = FastAPI(title="ragmini", version=_version(), docs_url=None, redoc_url=None,
                  lifespan=lifespan,
                  description="Local semantic search and RAG over one store. Every error is "
                              '`{"error": {"code", "message"}}`.')
    app.state.engine = engine
    if preload:
        engine.preload()
    if settings.cors_origin:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=[settings.cors_origin],
                           allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Authorization", "Content-Type"])

    app.add_middleware(Guard, settings=settings)

    @app.exception_handler(RagminiError)
    async def ragmini_error(request: Request, exc: RagminiError):
        status, code = _status_of(exc)
        return _error(status, code, str(exc))

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        return _error(exc.status, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "request"
        return _error(422, "validation_error", f"{where}: {first.get('msg', 'invalid')}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        code = {400: "bad_request", 404: "not_found", 405: "method_not_allowed",
                413: "too_large"}.get(
            exc.status_code, "http_error")
        response = _error(exc.status_code, code, str(exc.detail))
        response.headers.update(exc.headers or {})
        if exc.status_code == 405:  # Allow: every method of the path, not one route's
            response.headers["Allow"] = ", ".join(_allowed_methods(request))
        return response

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception):
        return _error(500, "internal", "internal error; the server log has the details")

    _routes(app, engine)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _allowed_methods(request: Request) -> list[str]:
    from starlette.routing import Match

    methods: set[str] = set()
    for route in request.app.router.routes:
        if getattr(route, "methods", None) and route.matches(request.scope)[0] != Match.NONE:
            methods |= route.methods
    return sorted(methods)


def _version() -> str:
    from ragmini import __version__

    return __version__


def _check_query(text: str, k: int) -> None:
    """The one query check (whitespace-only text); length and k are bounded by the
    request models and Query parameters, which FastAPI checks first."""
    from retrieval.contract import check_queries

    check_queries([text], k)


def _search(engine: Engine, q: str, method: str, k: int, where: list[str] | None = None
            ) -> dict:
    from ingest.filters import parse_where
    from retrieval.contract import search_one
    from retrieval.methods import check_method, open_searcher, select

    check_method(method)
    parsed = parse_where(where or [])
    with engine.open_store() as store:
        allowed = select(store, parsed)
        searcher = open_searcher(store, method)
        generation = _index_generation(searcher, store)
        hits = search_one(searcher, q, k, allowed)
        return {"query": q, "method": method, "where": parsed.to_list() if parsed else [],
                "hits": [h.to_dict() for h in hits], "generation": generation}


def _index_generation(searcher, store) -> int:
    """The store generation a searcher's index was built from: what its hits are.
    Read from the index's own params, not as `store.generation - behind` after the
    search (the store may have moved on in between, and that would name a newer
    generation than the one that answered). A fusion: the older of its parts."""
    parts = getattr(searcher, "parts", None)
    if parts:
        return min(_index_generation(p, store) for p in parts)
    built = getattr(getattr(searcher, "params", None), "store_generation", None)
    return built if isinstance(built, int) else store.generation - searcher.behind


def _routes(app: FastAPI, engine: Engine) -> None:  # noqa: C901 (one route each)
    token = engine.settings.token is not None

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        from fastapi.openapi.docs import get_swagger_ui_html

        return get_swagger_ui_html(openapi_url="/openapi.json", title="ragmini API",
                                   swagger_js_url="/swagger/swagger-ui-bundle.js",
                                   swagger_css_url="/swagger/swagger-ui.css",
                                   swagger_favicon_url="/static/favicon.svg")

    @app.get("/swagger/{name}", include_in_schema=False)
    def swagger_asset(name: str) -> FileResponse:
        import swagger_ui_bundle

        if name not in {"swagger-ui-bundle.js", "swagger-ui.css"}:
            raise ApiError(404, "not_found", "no such file")
        return FileResponse(Path(swagger_ui_bundle.swagger_ui_path) / name)

    @app.get("/healthz", tags=["meta"], response_model=None, responses=_responses(HealthOut))
    def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/api/status", tags=["store"], response_model=None,
             responses=_responses(StatusOut, 503, token=token))
    def status() -> dict:
        from retrieval.status import check_store

        with engine.open_store() as store:
            return {**check_store(store).to_dict(), "repaired": False}

    @app.get("/api/search", tags=["search"], response_model=None,
             responses=_responses(SearchOut, 400, 409, 422, 503, token=token))
    def search(q: Annotated[str, Query(min_length=1, max_length=MAX_QUERY_CHARS)],
               method: Annotated[str, Query(max_length=100, json_schema_extra={
                   "pattern": _method_pattern()})] = DEFAULT_METHOD,
               k: Annotated[int, Query(ge=1, le=MAX_K)] = 10,
               where: Annotated[list[Annotated[str, Field(min_length=1, max_length=500)]],
                                Query(max_length=16, description=(
                                    "metadata condition, repeatable, all must hold: "
                                    "KEY=VALUE (glob for source), KEY!=VALUE, KEY<VALUE, "
                                    "KEY>=VALUE (numbers, dates), KEY~TEXT"))] = []) -> dict:
        """The `search --json` body: the top-k chunks of one method, of the documents
        matching every `where` condition."""
        _check_query(q, k)
        return _search(engine, q, method, k, where)

    @app.post("/api/compare", tags=["search"], response_model=None,
              responses=_responses(CompareOut, 400, 413, 422, token=token))
    def compare(body: CompareBody) -> dict:
        """Each method's ranking for one query, and the chunks several methods agree on."""
        from retrieval.methods import check_method

        _check_query(body.q, body.k)
        methods = list(dict.fromkeys(body.methods))
        for m in methods:
            check_method(m)
        results: dict[str, dict] = {}
        for m in methods:
            try:
                found = _search(engine, body.q, m, body.k, body.where)
                results[m] = {"hits": found["hits"], "generation": found["generation"]}
            except RagminiError as exc:  # one method failing (no index) leaves the others
                results[m] = {"hits": [], "error": {"code": _status_of(exc)[1],
                                                     "message": str(exc)}}
        ranks: dict[int, dict[str, int]] = {}
        for m, r in results.items():
            for h in r["hits"]:
                ranks.setdefault(h["chunk_id"], {})[m] = h["rank"]
        overlap = sorted(({"chunk_id": cid, "methods": sorted(by), "ranks": by}
                          for cid, by in ranks.items() if len(by) > 1),
                         key=lambda o: (-len(o["methods"]), min(o["ranks"].values())))
        return {"query": body.q, "k": body.k, "methods": results, "overlap": overlap}

    @app.post("/api/ask", tags=["answer"], response_model=None, responses=_responses(
        AskOut, 400, 409, 413, 422, 503, token=token,
        content={"text/event-stream": {"schema": {"type": "string"}}},
        description="the `ask --json` body; or, asked for `text/event-stream`, `token` "
                    "events and one `done` (the body) or `error` event"))
    async def ask(body: AskBody, request: Request):
        """The `ask --json` body; with `Accept: text/event-stream`, the answer's text as
        `token` events, then one `done` event with the whole body (or `error`)."""
        from generation.answer import Sampling

        _check_query(body.question, body.k)
        sampling = Sampling(body.temperature, body.top_p, body.top_k, body.max_new_tokens,
                            body.seed, body.no_repeat_ngram)

        def run(on_text=None) -> dict:
            from generation.ask import ask as ask_store

            generator = engine.generator(body.generator)
            with engine.open_store() as store:
                return ask_store(store, body.question, generator, method=body.method, k=body.k,
                                 sampling=sampling, strict=body.strict, abstain=body.abstain,
                                 on_text=on_text, where=body.where or None,
                                 history=[t.model_dump() for t in body.history]).to_dict()

        if "text/event-stream" not in request.headers.get("accept", ""):
            return await asyncio.to_thread(run)
        return StreamingResponse(_stream(run), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

    @app.get("/api/documents", tags=["documents"], response_model=None,
             responses=_responses(DocumentsOut, 422, 503, token=token))
    def documents(offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
                  limit: Annotated[int, Query(ge=1, le=500)] = 50) -> dict:
        with engine.open_store() as store:
            total, page = store.document_page(offset, limit)
        return {"total": total, "offset": offset, "limit": limit, "documents": page}

    @app.post("/api/documents", tags=["documents"], response_model=None,
              responses=_responses(UploadOut, 400, 409, 413, 422, 503, token=token))
    def upload(files: Annotated[list[UploadFile], File(description="one or more files")]
               ) -> dict:
        """Store, ingest and index uploaded files; a result per file."""
        return _upload(engine, files)

    @app.delete("/api/documents/{doc_id}", tags=["documents"], response_model=None,
                responses=_responses(DeleteOut, 404, 409, 422, 503, token=token))
    def delete(doc_id: Annotated[str, PathParam(max_length=1000)]) -> dict:
        from retrieval.indexing import remove_and_index

        with engine.open_store() as store:
            sources = store.sources_of(doc_id)
            if not sources:
                raise ApiError(404, "not_found", f"no document with id {doc_id!r}")
            removed = remove_and_index(store, sources=sources)
            return {"removed": removed, "documents": store.count("documents")}

    @app.post("/api/eval", tags=["eval"], status_code=202, response_model=None,
              responses=_responses(EvalStartedOut, 400, 409, 413, 422, token=token,
                                   ok_status=202))
    def start_eval(body: EvalBody | None = None) -> dict:
        """Evaluate the store's methods on its labelled queries in the background (one
        eval at a time: it uses every core)."""
        from retrieval.methods import parse_methods

        if body and body.methods:
            parse_methods(body.methods)  # a bad name is a 400 now, not a failed job later
        with engine.jobs_lock:
            busy = [j.id for j in engine.jobs.values() if j.state in ("queued", "running")]
            if busy:
                raise ApiError(409, "busy", f"eval job {busy[0]} is still running; poll "
                                            f"/api/eval/{busy[0]} and start another when it ends")
            job = EvalJob(uuid.uuid4().hex[:12])
            engine.jobs[job.id] = job
        threading.Thread(target=_run_eval, args=(engine, job, body or EvalBody()),
                         daemon=True).start()
        return {"id": job.id, "state": job.state}

    @app.get("/api/eval/history", tags=["eval"], response_model=None,
             responses=_responses(EvalHistoryOut, 422, 503, token=token))
    def eval_history(limit: Annotated[int, Query(ge=1, le=200)] = 20) -> dict:
        from eval.history import list_runs

        with engine.open_store() as store:
            return {"runs": list_runs(store, limit)}

    @app.get("/api/eval/{job_id}", tags=["eval"], response_model=None,
             responses=_responses(EvalJobOut, 404, 422, token=token))
    def eval_job(job_id: JobId) -> dict:
        job = engine.jobs.get(job_id)
        if job is None:
            raise ApiError(404, "not_found", f"no eval job {job_id!r}")
        return {"id": job.id, "state": job.state, "result": job.result, "error": job.error,
                "plot": f"/api/eval/{job.id}/plot.png" if job.plot else None}

    @app.get("/api/eval/{job_id}/plot.png", tags=["eval"], response_class=FileResponse,
             responses=_responses(None, 404, 422, token=token) | {200: {
                 "content": {"image/png": {"schema": {"type": "string",
                                                      "format": "binary"}}},
                 "description": "the recall@k plot"}})
    def eval_plot(job_id: JobId):
        job = engine.jobs.get(job_id)
        if job is None or job.plot is None:
            raise ApiError(404, "not_found", f"no plot for eval job {job_id!r}")
        return FileResponse(job.plot, media_type="image/png")


async def _stream(run):
    """Server-sent events from a blocking `run(on_text)` in a worker thread."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()

    def on_text(text: str) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, ("token", {"text": text}))

    def work() -> None:
        try:
            body = run(on_text)
            loop.call_soon_threadsafe(queue.put_nowait, ("done", body))
        except RagminiError as exc:
            loop.call_soon_threadsafe(queue.put_nowait, (
                "error", {"error": {"code": _status_of(exc)[1], "message": str(exc)}}))
        except Exception:  # noqa: BLE001 (a stream cannot change its status any more)
            loop.call_soon_threadsafe(queue.put_nowait, (
                "error", {"error": {"code": "internal", "message": "internal error"}}))

    threading.Thread(target=work, daemon=True).start()
    while True:
        event, data = await queue.get()
        yield f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
        if event in ("done", "error"):
            return


_UNSAFE = re.compile(r"[^\w.\- ]+")


def safe_name(name: str) -> str:
    """A plain base name: no folders, no NUL, no leading dots, at most 120 characters."""
    base = (name or "").replace("\\", "/").replace("\x00", "").split("/")[-1]
    base = _UNSAFE.sub("_", base).strip().lstrip(".")
    stem, dot, suffix = base.rpartition(".")
    if dot and len(base) > 120:
        base = stem[: 119 - len(suffix)] + "." + suffix
    return base[:120]


def _upload(engine: Engine, files: list[UploadFile]) -> dict:
    from ingest.load import SUPPORTED_SUFFIXES
    from retrieval.indexing import ingest_and_index

    limit = engine.settings.max_upload_bytes
    for f in files:  # all or nothing: an oversize file fails the request before any write
        if (f.size or 0) > limit:
            raise ApiError(413, "too_large", f"{safe_name(f.filename or '')} is over the "
                           f"{limit / 2**20:g} MB limit a file (serve --max-upload-mb)")
    with engine.open_store() as store:
        folder = store.root / UPLOAD_DIR
        folder.mkdir(exist_ok=True)
        results, saved = [], []
        for f in files:
            name = safe_name(f.filename or "")
            suffix = Path(name).suffix.lower()
            if not name or suffix not in SUPPORTED_SUFFIXES:
                results.append({"file": f.filename, "status": "rejected",
                                "reason": "not a type ingest reads ("
                                          + ", ".join(sorted(SUPPORTED_SUFFIXES)) + ")"})
                continue
            target = folder / name
            tmp = folder / f".{name}.{uuid.uuid4().hex[:8]}.part"
            with open(tmp, "wb") as out:
                shutil.copyfileobj(f.file, out, 1 << 20)
            os.replace(tmp, target)
            saved.append((f.filename, target))
        if saved:
            done = ingest_and_index(store, [t for _, t in saved], store.methods() or
                                    list(DEFAULT_INGEST), progress=False,
                                    require_documents=False)
            skipped = {str(Path(s.path).resolve()): s.reason for s in done.report.skipped}
            for original, target in saved:
                reason = skipped.get(str(target.resolve()))
                if reason:
                    target.unlink(missing_ok=True)
                    results.append({"file": original, "status": "skipped", "reason": reason})
                else:
                    results.append({"file": original, "status": "ingested", "stored_as": target.name})
        return {"files": results, "documents": store.count("documents"),
                "chunks": store.count("chunks")}


def _run_eval(engine: Engine, job: EvalJob, body: EvalBody) -> None:
    from eval.report import write_report
    from eval.runs import evaluate_store

    job.state = "running"
    try:
        run = evaluate_store(engine.settings.store, None, tuple(body.ks) if body.ks else None,
                             body.methods, resamples=body.resamples,
                             where=body.where or None)
        folder = engine.jobs_dir / job.id
        write_report(run.result, run.query_set, folder, run.unknown_words)
        job.plot = folder / "recall_at_k.png" if (folder / "recall_at_k.png").is_file() else None
        job.result = run.result.to_dict()
        job.state = "done"
    except RagminiError as exc:
        job.error = {"code": _status_of(exc)[1], "message": str(exc)}
        job.state = "failed"
    except Exception:  # noqa: BLE001 (reported through the job, never as a traceback)
        job.error = {"code": "internal", "message": "internal error"}
        job.state = "failed"
