"""`ragmini serve`: the HTTP API, the web page, the OpenAI-compatible endpoint and the
MCP server, over one store, behind one guard.

Every route is a call to the public API (`ragmini.Store`, opened once for the app):
the JSON bodies are the records' `to_dict()`, the bodies `--json` prints. Models and
index files are loaded once per process and shared across requests; the Store keeps
one connection per thread and each read sees the latest commit, so an ingest by the
CLI is seen on the next request. Writes (upload, delete, eval recording) take the
store's writer lock, as the CLI does.

    guard.py       Host allow-list, cross-site refusal, token, body cap (the whole app)
    models.py      request and response models, what each error means
    routes.py      /api/...
    openai_api.py  /v1/models, /v1/chat/completions
    jobs.py        background eval jobs
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

import ragmini
from ragmini.api.errors import RagminiError, http_status
from ragmini.server.guard import Guard
from ragmini.server.guard import error_response as _error
from ragmini.server.jobs import EvalJobs
from ragmini.server.models import PAGE_CSP, HealthOut, responses
from ragmini.server.routes import ApiError

STATIC = Path(__file__).with_name("static")


@dataclass
class Settings:
    store: Path
    token: str | None = None
    max_upload_bytes: int = 20 * 2**20
    cors_origin: str | None = None
    host: str = "127.0.0.1"  # the bound address: a Host name the server answers for
    allow_hosts: tuple[str, ...] = ()  # more such names (serve --allow-host)
    mcp: bool = True  # mount the MCP server at /mcp


def create_app(settings: Settings, preload: bool = False) -> FastAPI:
    from ragmini.server import openai_api, routes

    store = ragmini.open(settings.store)
    jobs = EvalJobs()
    mcp_app = _mcp_app(store) if settings.mcp else None

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        # Here, not only after uvicorn.run returns: on SIGTERM uvicorn shuts down
        # gracefully, then re-raises the signal, and the process ends without it.
        async with _running(mcp_app):
            yield
        jobs.close()
        store.close()

    app = FastAPI(title="ragmini", version=ragmini.__version__, docs_url=None,
                  redoc_url=None, lifespan=lifespan,
                  description="Local semantic search and RAG over one store. Every error is "
                              '`{"error": {"code", "message"}}` (on /v1, OpenAI\'s shape).')
    app.state.store, app.state.jobs = store, jobs
    if preload:
        store.preload()
    if settings.cors_origin:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=[settings.cors_origin],
                           allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Authorization", "Content-Type"])
    # Outermost, around the whole app: every route and mount meets it (guard.py).
    app.add_middleware(Guard, bound=settings.host, allow_hosts=settings.allow_hosts,
                       origins=[settings.cors_origin] if settings.cors_origin else [],
                       token=settings.token, max_upload_bytes=settings.max_upload_bytes)
    _handlers(app)
    _pages(app)
    app.include_router(routes.make_router(store, jobs, token=settings.token is not None,
                                          max_upload_bytes=settings.max_upload_bytes))
    app.include_router(openai_api.make_router(store))
    if mcp_app is not None:
        app.mount("/mcp", mcp_app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _mcp_app(store: ragmini.Store):
    """The MCP server's streamable-HTTP app, answering at the mount point itself
    (`/mcp`). Its own DNS-rebinding check is off: the app's guard does that job for
    every route, with the server's own allow-list."""
    from mcp.server.transport_security import TransportSecuritySettings

    from ragmini.mcp_server import create_server

    server = create_server(store)
    return server.streamable_http_app(
        streamable_http_path="/", stateless_http=True, json_response=True,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False))


@contextlib.asynccontextmanager
async def _running(mcp_app):
    """The MCP app's own lifespan (its session manager) inside the server's."""
    if mcp_app is None:
        yield
        return
    async with mcp_app.router.lifespan_context(mcp_app):
        yield


def _handlers(app: FastAPI) -> None:
    @app.exception_handler(RagminiError)
    async def ragmini_error(request: Request, exc: RagminiError):
        status, code = http_status(exc)
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
                413: "too_large"}.get(exc.status_code, "http_error")
        response = _error(exc.status_code, code, str(exc.detail))
        response.headers.update(exc.headers or {})
        if exc.status_code == 405:  # Allow: every method of the path, not one route's
            response.headers["Allow"] = ", ".join(_allowed_methods(request))
        return response

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception):
        return _error(500, "internal", "internal error; the server log has the details")


def _allowed_methods(request: Request) -> list[str]:
    from starlette.routing import Match

    methods: set[str] = set()
    for route in _routes_of(request.app.router.routes):
        if getattr(route, "methods", None) and route.matches(request.scope)[0] != Match.NONE:
            methods |= route.methods
    return sorted(methods)


def _routes_of(routes):
    """Every route, those of included routers too (FastAPI keeps an included router as
    one entry; ours are included without a prefix of their own)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _routes_of(inner.routes)
        else:
            yield route


def _pages(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        # Nothing but this server's own files runs or loads in the page.
        return FileResponse(STATIC / "index.html", headers={"Content-Security-Policy": PAGE_CSP})

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        from fastapi.openapi.docs import get_swagger_ui_html

        # validatorUrl None: Swagger UI would otherwise send the schema to swagger.io.
        return get_swagger_ui_html(openapi_url="/openapi.json", title="ragmini API",
                                   swagger_js_url="/swagger/swagger-ui-bundle.js",
                                   swagger_css_url="/swagger/swagger-ui.css",
                                   swagger_favicon_url="/static/favicon.svg",
                                   swagger_ui_parameters={"validatorUrl": None})

    @app.get("/swagger/{name}", include_in_schema=False)
    def swagger_asset(name: str) -> FileResponse:
        import swagger_ui_bundle

        if name not in {"swagger-ui-bundle.js", "swagger-ui.css"}:
            raise ApiError(404, "not_found", "no such file")
        return FileResponse(Path(swagger_ui_bundle.swagger_ui_path) / name)

    @app.get("/healthz", tags=["meta"], response_model=None, responses=responses(HealthOut))
    def healthz() -> dict:
        return {"status": "ok"}
