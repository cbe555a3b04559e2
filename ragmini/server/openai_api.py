"""An OpenAI-compatible RAG endpoint: `/v1/models` and `/v1/chat/completions`, so chat
apps (Open WebUI, LibreChat) and scripts using the `openai` client ask the store.

The last user message is the question; earlier user/assistant turns are the history
a follow-up is made standalone from. The reply's content is the checked answer with
its [n] citations and a Sources list; the support labels, the abstention and the
sources ride in an extra `ragmini` field that clients may ignore. Errors use
OpenAI's shape (`{"error": {"message", "type", "param", "code"}}`) on these routes.
Each model is one of the store's generators (`ragmini-extractive`, ...).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

import ragmini
from ragmini.api import defaults as D
from ragmini.api.errors import RagminiError, http_status

PREFIX = "ragmini-"
_WORDS = re.compile(r"\w+|[^\w\s]")


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        """The message's text (a list of content parts keeps its text parts)."""
        if isinstance(self.content, list):
            return "\n".join(str(p.get("text", "")) for p in self.content
                             if p.get("type") == "text")
        return self.content or ""


class Options(BaseModel):
    """ragmini's own settings, in an optional `ragmini` object of the request."""

    model_config = ConfigDict(extra="forbid")

    k: int = Field(D.ASK_K, ge=1, le=20)
    method: str = D.METHOD
    strict: bool = D.STRICT
    abstain: bool = D.ABSTAIN
    where: list[str] = Field(default_factory=list, max_length=16)


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # clients send options we do not use

    model: str
    messages: list[Message] = Field(min_length=1, max_length=200)
    stream: bool = False
    temperature: float | None = Field(None, ge=0.0, le=5.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    max_tokens: int | None = Field(None, ge=1, le=4096)
    max_completion_tokens: int | None = Field(None, ge=1, le=4096)
    seed: int | None = None
    stream_options: dict[str, Any] | None = None
    ragmini: Options = Field(default_factory=Options)


def error(status: int, message: str, kind: str, code: str | None = None,
          param: str | None = None) -> JSONResponse:
    """An error in OpenAI's shape."""
    return JSONResponse({"error": {"message": message, "type": kind, "param": param,
                                   "code": code}}, status_code=status)


def _from_library(exc: RagminiError) -> JSONResponse:
    status, code = http_status(exc)
    kind = "invalid_request_error" if status < 500 else "server_error"
    return error(status, str(exc), kind, code, getattr(exc, "param", None))


def conversation(messages: list[Message]) -> tuple[str, list[dict]]:
    """(the question: the last user message, the history: earlier user turns each with
    the assistant reply that followed it)."""
    users = [i for i, m in enumerate(messages) if m.role == "user"]
    if not users or not messages[users[-1]].text().strip():
        raise ValueError("the last user message is the question, and there is none")
    last = users[-1]
    history = []
    for i in users[:-1]:
        reply = next((m.text() for m in messages[i + 1:last] if m.role == "assistant"), "")
        history.append({"question": messages[i].text(), "answer": _without_sources(reply)})
    return messages[last].text(), history


def _without_sources(reply: str) -> str:
    """An earlier reply of ours without its Sources list (the history keeps the answer)."""
    for marker in ("\n\nSources:\n", "\n\nClosest sources:\n"):
        if marker in reply:
            return reply.split(marker, 1)[0]
    return reply


def _usage(answer, content: str) -> dict:
    # Prompt tokens as the generator counted them (0 for the extractive answer, which
    # reads no prompt); completion tokens as words and punctuation of the reply.
    prompt = int(getattr(answer.record, "prompt_tokens", 0) or 0)
    completion = len(_WORDS.findall(content))
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}


def make_router(store: ragmini.Store) -> APIRouter:
    """The `/v1` routes over `store` (the app puts them behind its guards)."""
    # Left out of /openapi.json: OpenAI's own API reference documents these shapes,
    # and their errors are OpenAI's, not this API's one error shape.
    router = APIRouter(prefix="/v1", tags=["openai"], include_in_schema=False)

    @router.get("/models")
    def models() -> dict:
        """One model per generator this server offers."""
        created = int(time.time())
        return {"object": "list", "data": [
            {"id": PREFIX + name, "object": "model", "created": created, "owned_by": "ragmini"}
            for name in D.generators()]}

    @router.post("/chat/completions", response_model=None)
    async def chat(request: Request):
        """A checked, cited answer to the last user message, the earlier turns its
        history; `stream: true` sends it as chat.completion.chunk events."""
        try:
            body = ChatRequest.model_validate(await request.json())
        except (ValidationError, ValueError) as exc:
            first = exc.errors()[0] if isinstance(exc, ValidationError) else {}
            where = ".".join(str(p) for p in first.get("loc", ())) or None
            message = f"{where}: {first.get('msg')}" if first else f"the body is not JSON ({exc})"
            return error(400, message, "invalid_request_error", "bad_request", where)
        generator = body.model.removeprefix(PREFIX)
        if generator not in D.generators():
            return error(404, f"no model {body.model!r}; GET /v1/models lists them",
                         "invalid_request_error", "model_not_found", "model")
        try:
            question, history = conversation(body.messages)
        except ValueError as exc:
            return error(400, str(exc), "invalid_request_error", "bad_request", "messages")
        sampling = {k: v for k, v in (("temperature", body.temperature), ("top_p", body.top_p),
                                      ("seed", body.seed),
                                      ("max_new_tokens", body.max_completion_tokens
                                       or body.max_tokens)) if v is not None}
        options = body.ragmini

        def run():
            return store.ask(question, generator=generator, method=options.method,
                             k=options.k, strict=options.strict, abstain=options.abstain,
                             where=options.where or None, history=history, **sampling)

        try:
            answer = await asyncio.to_thread(run)
        except RagminiError as exc:
            return _from_library(exc)
        content = answer.to_markdown()
        reply_id, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        extra = answer.to_dict()
        if not body.stream:
            return {"id": reply_id, "object": "chat.completion", "created": created,
                    "model": body.model,
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": content}}],
                    "usage": _usage(answer, content), "ragmini": extra}
        usage = bool((body.stream_options or {}).get("include_usage"))
        return StreamingResponse(_chunks(reply_id, created, body.model, content, extra,
                                         _usage(answer, content) if usage else None),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

    return router


async def _chunks(reply_id: str, created: int, model: str, content: str, extra: dict,
                  usage: dict | None):
    """The reply as chat.completion.chunk events: the role, the checked text a few words
    at a time, a final chunk with the `ragmini` field, usage if asked, then [DONE]."""
    def event(delta: dict, finish: str | None = None, **more) -> str:
        chunk = {"id": reply_id, "object": "chat.completion.chunk", "created": created,
                 "model": model, "choices": [{"index": 0, "delta": delta,
                                              "finish_reason": finish}], **more}
        return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"

    yield event({"role": "assistant", "content": ""})
    pieces = re.findall(r"\S+\s*|\s+", content)
    for start in range(0, len(pieces), 8):
        yield event({"content": "".join(pieces[start:start + 8])})
        await asyncio.sleep(0)
    yield event({}, "stop", ragmini=extra)
    if usage is not None:
        chunk = {"id": reply_id, "object": "chat.completion.chunk", "created": created,
                 "model": model, "choices": [], "usage": usage}
        yield f"data: {json.dumps(chunk)}\n\n"
    yield "data: [DONE]\n\n"
