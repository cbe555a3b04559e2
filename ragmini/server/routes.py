"""The `/api` routes: each parses its request, makes one call to the public API
(`ragmini.Store`), and returns the record's `to_dict()`, the body `--json` prints.
Library errors become the JSON error shape in app.py's handler."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Annotated

from fastapi import APIRouter, File, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import Field
from starlette.background import BackgroundTask

import ragmini
from ragmini.api import defaults as D
from ragmini.api.errors import QueryError, RagminiError, http_status
from ragmini.api.checks import check_methods
from ragmini.server.jobs import Busy, EvalJobs
from ragmini.server.models import (
    FILE_CSP,
    MAX_K,
    MAX_OFFSET,
    MAX_QUERY_CHARS,
    AskBody,
    AskOut,
    ChunkOut,
    CompareBody,
    CompareOut,
    DeleteOut,
    DocumentsOut,
    DocumentTextOut,
    EvalBody,
    EvalHistoryOut,
    EvalJobOut,
    EvalStartedOut,
    JobId,
    MethodsOut,
    QuerySetsOut,
    SearchOut,
    SourceParam,
    StatusOut,
    UploadOut,
    _method_pattern,
    responses,
)

Where = Annotated[list[Annotated[str, Field(min_length=1, max_length=500)]],
                  Query(max_length=16, description=(
                      "metadata condition, repeatable, all must hold: KEY=VALUE (glob for "
                      "source), KEY!=VALUE, KEY<VALUE, KEY>=VALUE (numbers, dates), KEY~TEXT"))]
DocId = Annotated[str, PathParam(max_length=1000)]


class ApiError(Exception):
    """An HTTP failure that is not a library error (a busy eval, an oversize upload)."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def make_router(store: ragmini.Store, jobs: EvalJobs, *, token: bool,
                max_upload_bytes: int) -> APIRouter:  # noqa: C901 (one route each)
    router = APIRouter()

    @router.get("/api/status", tags=["store"], response_model=None,
                responses=responses(StatusOut, 503, token=token))
    def status() -> dict:
        return store.status().to_dict()

    @router.get("/api/methods", tags=["store"], response_model=None,
                responses=responses(MethodsOut, 503, token=token))
    def methods() -> dict:
        """The methods this store can rank by, the fusions, the generators and every
        default (ragmini.api.defaults): what the page builds its controls from."""
        return store.methods().to_dict()

    @router.get("/api/search", tags=["search"], response_model=None,
                responses=responses(SearchOut, 400, 409, 422, 503, token=token))
    def search(q: Annotated[str, Query(min_length=1, max_length=MAX_QUERY_CHARS)],
               method: Annotated[str, Query(max_length=100, json_schema_extra={
                   "pattern": _method_pattern()})] = D.METHOD,
               k: Annotated[int, Query(ge=1, le=MAX_K)] = D.SEARCH_K,
               where: Where = []) -> dict:
        """The `search --json` body: the top-k chunks of one method, of the documents
        matching every `where` condition."""
        return store.search(q, method=method, k=k, where=where or None).to_dict()

    @router.post("/api/compare", tags=["search"], response_model=None,
                 responses=responses(CompareOut, 400, 413, 422, token=token, write=True))
    def compare(body: CompareBody) -> dict:
        """Each method's ranking for one query, and the chunks several methods agree on."""
        return store.compare(body.q, body.methods, k=body.k,
                             where=body.where or None).to_dict()

    @router.post("/api/ask", tags=["answer"], response_model=None, responses=responses(
        AskOut, 400, 409, 413, 422, 503, token=token, write=True,
        content={"text/event-stream": {"schema": {"type": "string"}}},
        description="the `ask --json` body; or, asked for `text/event-stream`, `token` "
                    "events and one `done` (the body) or `error` event"))
    async def ask(body: AskBody, request: Request):
        """The `ask --json` body; with `Accept: text/event-stream`, the answer's text as
        `token` events, then one `done` event with the whole body (or `error`)."""
        offered = D.generators()
        if body.generator is not None and body.generator not in offered:
            raise QueryError(f"unknown generator '{body.generator}'; this server offers "
                             f"{', '.join(offered)}", param="generator")

        def run(on_text=None) -> dict:
            return store.ask(body.question, generator=body.generator, method=body.method,
                             k=body.k, strict=body.strict, abstain=body.abstain,
                             temperature=body.temperature, top_p=body.top_p,
                             top_k=body.top_k, max_new_tokens=body.max_new_tokens,
                             seed=body.seed, no_repeat_ngram=body.no_repeat_ngram,
                             where=body.where or None, on_text=on_text,
                             history=[t.model_dump() for t in body.history]).to_dict()

        if "text/event-stream" not in request.headers.get("accept", ""):
            return await asyncio.to_thread(run)
        return StreamingResponse(_stream(run), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

    @router.get("/api/documents", tags=["documents"], response_model=None,
                responses=responses(DocumentsOut, 400, 422, 503, token=token))
    def documents(offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
                  limit: Annotated[int, Query(ge=1, le=500)] = 50,
                  where: Where = []) -> dict:
        """The store's documents, newest first, with their chunk counts."""
        return store.documents(where or None, limit=limit, offset=offset).to_dict()

    @router.post("/api/documents", tags=["documents"], response_model=None,
                 responses=responses(UploadOut, 400, 409, 413, 422, 503, token=token,
                                     write=True))
    def upload(files: Annotated[list[UploadFile], File(description="one or more files")]
               ) -> dict:
        """Store, ingest and index uploaded files; a result per file, with the doc_id
        each got (`uploads/NAME`; a name uploaded again replaces that upload)."""
        for f in files:  # all or nothing: an oversize file fails the request before any write
            if (f.size or 0) > max_upload_bytes:
                name = (f.filename or "").replace("\\", "/").split("/")[-1] or "a file"
                raise ApiError(413, "too_large", f"{name[:120]} is {f.size / 2**20:.1f} MB, "
                               f"over this server's per-file limit of "
                               f"{max_upload_bytes / 2**20:g} MB")
        return store.upload([(f.filename, f.file) for f in files],
                            max_file_mb=max_upload_bytes / 2**20).to_dict()

    @router.delete("/api/documents/{doc_id:path}", tags=["documents"], response_model=None,
                   responses=responses(DeleteOut, 404, 409, 422, 503, token=token,
                                       write=True))
    def delete(doc_id: DocId, source: SourceParam = None) -> dict:
        """Remove one document (and its file, if it was uploaded). An id several
        documents share is refused (409, listing their sources) unless `source`
        names one."""
        return store.delete(doc_id, source=source).to_dict()

    @router.get("/api/documents/{doc_id:path}/file", tags=["documents"],
                response_class=StreamingResponse,
                responses=responses(None, 404, 409, 422, 503, token=token) | {200: {
                    "content": {t: {"schema": {"type": "string", "format": "binary"}}
                                for t in D.FILE_MEDIA_TYPES},
                    "description": "the document's original file, with its own "
                                   "Content-Type (a PDF opens at a page with #page=N)"}})
    def document_file(doc_id: DocId, source: SourceParam = None):
        """The original bytes of a stored document's file, shown inline. Only the
        file a stored document was ingested from, and only while it is still that
        regular file (never through a link)."""
        opened = store.document_file(doc_id, source=source)
        return StreamingResponse(opened.blocks(), media_type=opened.media_type,
                                 headers=_file_headers(opened),
                                 background=BackgroundTask(opened.close))  # if cut short

    @router.get("/api/documents/{doc_id:path}/text", tags=["documents"], response_model=None,
                responses=responses(DocumentTextOut, 400, 404, 409, 422, 503, token=token))
    def document_text(doc_id: DocId, source: SourceParam = None) -> dict:
        """A stored document's text as it was chunked, with each chunk's place in it:
        what the page shows to open a citation of a text format."""
        return store.document(doc_id, source=source).to_dict()

    @router.get("/api/chunks/{chunk_id}", tags=["documents"], response_model=None,
                responses=responses(ChunkOut, 400, 404, 422, 503, token=token))
    def chunk(chunk_id: Annotated[int, PathParam(ge=0, le=2**62)],
              neighbours: Annotated[int, Query(ge=0, le=20)] = 1) -> dict:
        """A chunk (by the id hits carry) and its neighbours in reading order."""
        return store.chunk(chunk_id, neighbours).to_dict()

    @router.get("/api/eval/query-sets", tags=["eval"], response_model=None,
                responses=responses(QuerySetsOut, 503, token=token))
    def query_sets() -> dict:
        """The labelled query sets an eval of this store can use: the bundled one, and
        the splits of each BEIR folder whose corpus the store holds."""
        return store.query_sets().to_dict()

    @router.post("/api/eval", tags=["eval"], status_code=202, response_model=None,
                 responses=responses(EvalStartedOut, 400, 409, 413, 422, token=token,
                                     write=True, ok_status=202))
    def start_eval(body: EvalBody | None = None) -> dict:
        """Evaluate the store's methods on labelled queries in the background (one
        eval at a time: it uses every core)."""
        body = body or EvalBody()
        if body.methods:
            check_methods(body.methods)  # a bad name is a 400 now, not a failed job later
        if body.query_set:
            known = [q.id for q in store.query_sets().choices]
            if body.query_set not in known:
                raise QueryError(f"unknown query set {body.query_set!r}; this store knows "
                                 f"{', '.join(known)}", param="query_set")
        try:
            job = jobs.start(lambda: store.evaluate(
                methods=body.methods, ks=body.ks, resamples=body.resamples,
                where=body.where or None, query_set=body.query_set))
        except Busy as busy:
            raise ApiError(409, "busy", f"eval job {busy} is still running; poll "
                                        f"/api/eval/{busy} and start another when it ends")
        return {"id": job.id, "state": job.state}

    @router.get("/api/eval/history", tags=["eval"], response_model=None,
                responses=responses(EvalHistoryOut, 422, 503, token=token))
    def eval_history(limit: Annotated[int, Query(ge=1, le=200)] = D.HISTORY_LIMIT) -> dict:
        return store.history(limit).to_dict()

    @router.get("/api/eval/{job_id}", tags=["eval"], response_model=None,
                responses=responses(EvalJobOut, 404, 422, token=token))
    def eval_job(job_id: JobId) -> dict:
        job = jobs.get(job_id)
        if job is None:
            raise ApiError(404, "not_found", f"no eval job {job_id!r}")
        return job.to_dict()

    @router.get("/api/eval/{job_id}/plot.png", tags=["eval"], response_class=FileResponse,
                responses=responses(None, 404, 422, token=token) | {200: {
                    "content": {"image/png": {"schema": {"type": "string",
                                                         "format": "binary"}}},
                    "description": "the recall@k plot"}})
    def eval_plot(job_id: JobId):
        job = jobs.get(job_id)
        if job is None or job.plot is None:
            raise ApiError(404, "not_found", f"no plot for eval job {job_id!r}")
        return FileResponse(job.plot, media_type="image/png")

    return router


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
                "error", {"error": {"code": http_status(exc)[1], "message": str(exc)}}))
        except Exception:  # noqa: BLE001 (a stream cannot change its status any more)
            loop.call_soon_threadsafe(queue.put_nowait, (
                "error", {"error": {"code": "internal", "message": "internal error"}}))

    threading.Thread(target=work, daemon=True).start()
    while True:
        event, data = await queue.get()
        yield f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
        if event in ("done", "error"):
            return


def _file_headers(opened) -> dict[str, str]:
    """Inline, under its own name; HTML and XML sandboxed (no script, no request off
    the server: a stored page is read, never run with the API's origin)."""
    from urllib.parse import quote

    ascii_name = opened.filename.encode("ascii", "replace").decode().replace('"', "'")
    headers = {"Content-Disposition": f"inline; filename=\"{ascii_name}\"; "
                                      f"filename*=UTF-8''{quote(opened.filename)}",
               "Content-Length": str(opened.size), "Cache-Control": "no-store"}
    if opened.active:
        headers["Content-Security-Policy"] = FILE_CSP
    return headers
