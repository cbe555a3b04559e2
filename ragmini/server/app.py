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
from typing import Annotated, Any

from fastapi import FastAPI, File, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.errors import IndexStale, ModelUnavailable, QueryError, RagminiError, StoreError
from retrieval.methods import DEFAULT_METHOD, INDEXED, names

STATIC = Path(__file__).with_name("static")
MAX_QUERY_CHARS = 2000
MAX_K = 100
UPLOAD_DIR = "uploads"


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


class CompareBody(BaseModel):
    q: Text
    methods: list[str] = Field(default_factory=lambda: list(names()), min_length=1, max_length=8)
    k: int = Field(10, ge=1, le=MAX_K)


class AskBody(BaseModel):
    question: Text
    generator: str = Field("distilgpt2", max_length=200)
    method: str = Field(DEFAULT_METHOD, max_length=100)
    k: int = Field(3, ge=1, le=20)
    temperature: float = Field(0.0, ge=0.0, le=5.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int = Field(0, ge=0, le=1000)
    max_new_tokens: int = Field(128, ge=1, le=512)
    seed: int | None = Field(None, ge=0, le=2**31 - 1)
    no_repeat_ngram: int = Field(3, ge=0, le=10)
    strict: bool = True
    abstain: bool = True


class EvalBody(BaseModel):
    methods: list[str] | None = Field(None, max_length=8)
    ks: list[int] | None = Field(None, max_length=8)
    resamples: int = Field(2000, ge=100, le=10_000)


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
        self.jobs_dir = Path(tempfile.mkdtemp(prefix="ragmini-serve-"))

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
        shutil.rmtree(self.jobs_dir, ignore_errors=True)


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
        if length.isdigit() and int(length) > cap:
            return await _error(413, "too_large", f"the request body is over "
                                                  f"{cap / 2**20:g} MB")(scope, receive, send)
        if self.expected and path.startswith("/api/") and not hmac.compare_digest(
                headers.get(b"authorization", b""), self.expected):
            return await _error(401, "unauthorized", "this server needs `Authorization: "
                                                     "Bearer <token>`")(scope, receive, send)
        return await self.app(scope, receive, send)


def create_app(settings: Settings, preload: bool = False) -> FastAPI:
    engine = Engine(settings)
    app = FastAPI(title="ragmini", version=_version(), docs_url=None, redoc_url=None,
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
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(
            exc.status_code, "http_error")
        return _error(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception):
        return _error(500, "internal", "internal error; the server log has the details")

    _routes(app, engine)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _version() -> str:
    from ragmini import __version__

    return __version__


def _check_query(text: str, k: int) -> None:
    """The one query check (whitespace-only text); length and k are bounded by the
    request models and Query parameters, which FastAPI checks first."""
    from retrieval.contract import check_queries

    check_queries([text], k)


def _search(engine: Engine, q: str, method: str, k: int) -> dict:
    from retrieval.contract import search_one
    from retrieval.methods import check_method, open_searcher

    check_method(method)
    with engine.open_store() as store:
        searcher = open_searcher(store, method)
        hits = search_one(searcher, q, k)
        return {"query": q, "method": method, "hits": [h.to_dict() for h in hits],
                "generation": store.generation - searcher.behind}


def _routes(app: FastAPI, engine: Engine) -> None:  # noqa: C901 (one route each)
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

    @app.get("/healthz", tags=["meta"])
    def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/api/status", tags=["store"])
    def status() -> dict:
        from retrieval.status import check_store

        with engine.open_store() as store:
            return {**check_store(store).to_dict(), "repaired": False}

    @app.get("/api/search", tags=["search"])
    def search(q: Annotated[str, Query(min_length=1, max_length=MAX_QUERY_CHARS)],
               method: Annotated[str, Query(max_length=100)] = DEFAULT_METHOD,
               k: Annotated[int, Query(ge=1, le=MAX_K)] = 10) -> dict:
        """The `search --json` body: the top-k chunks of one method."""
        _check_query(q, k)
        return _search(engine, q, method, k)

    @app.post("/api/compare", tags=["search"])
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
                results[m] = {"hits": _search(engine, body.q, m, body.k)["hits"]}
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

    @app.post("/api/ask", tags=["answer"])
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
                                 on_text=on_text).to_dict()

        if "text/event-stream" not in request.headers.get("accept", ""):
            return await asyncio.to_thread(run)
        return StreamingResponse(_stream(run), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

    @app.get("/api/documents", tags=["documents"])
    def documents(offset: Annotated[int, Query(ge=0)] = 0,
                  limit: Annotated[int, Query(ge=1, le=500)] = 50) -> dict:
        with engine.open_store() as store:
            total, page = store.document_page(offset, limit)
        return {"total": total, "offset": offset, "limit": limit, "documents": page}

    @app.post("/api/documents", tags=["documents"])
    def upload(files: Annotated[list[UploadFile], File(description="one or more files")]
               ) -> dict:
        """Store, ingest and index uploaded files; a result per file."""
        return _upload(engine, files)

    @app.delete("/api/documents/{doc_id}", tags=["documents"])
    def delete(doc_id: str) -> dict:
        from retrieval.indexing import remove_and_index

        with engine.open_store() as store:
            sources = store.sources_of(doc_id)
            if not sources:
                raise ApiError(404, "not_found", f"no document with id {doc_id!r}")
            removed = remove_and_index(store, sources=sources)
            return {"removed": removed, "documents": store.count("documents")}

    @app.post("/api/eval", tags=["eval"], status_code=202)
    def start_eval(body: EvalBody | None = None) -> dict:
        """Evaluate the store's methods on its labelled queries in the background."""
        job = EvalJob(uuid.uuid4().hex[:12])
        engine.jobs[job.id] = job
        threading.Thread(target=_run_eval, args=(engine, job, body or EvalBody()),
                         daemon=True).start()
        return {"id": job.id, "state": job.state}

    @app.get("/api/eval/history", tags=["eval"])
    def eval_history(limit: Annotated[int, Query(ge=1, le=200)] = 20) -> dict:
        from eval.history import list_runs

        with engine.open_store() as store:
            return {"runs": list_runs(store, limit)}

    @app.get("/api/eval/{job_id}", tags=["eval"])
    def eval_job(job_id: str) -> dict:
        job = engine.jobs.get(job_id)
        if job is None:
            raise ApiError(404, "not_found", f"no eval job {job_id!r}")
        return {"id": job.id, "state": job.state, "result": job.result, "error": job.error,
                "plot": f"/api/eval/{job.id}/plot.png" if job.plot else None}

    @app.get("/api/eval/{job_id}/plot.png", tags=["eval"], response_class=FileResponse)
    def eval_plot(job_id: str):
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
                                    list(INDEXED), progress=False,
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
                             body.methods, resamples=body.resamples)
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
