"""Any OpenAI-compatible chat server as the generator: Ollama, llama.cpp's server,
vLLM, LM Studio or a hosted API, through the official `openai` client.

`openai:MODEL` names it; the base URL comes from the caller (`--base-url`) or
OPENAI_BASE_URL, never a default: an offline tool does not send a user's
documents to a cloud unasked. OPENAI_API_KEY is sent when set. The prompt is
the same chat turn the in-process models get (generation/prompt.py), fitted to
the window by an estimate, since the server's tokenizer is not ours.

Every failure is a one-line ModelUnavailable naming the URL and what to check:
the server is asked for its models when the generator loads (connect timeout
5 s, whole check under 10 s, no retries), so an unreachable or wrong server
fails before any retrieval work. Sampling maps onto the API's temperature,
top_p, seed and max_tokens; top_k goes in the request body only when set (the
local servers read it, OpenAI's own API refuses it); no_repeat_ngram has no
equivalent in the API and is not sent.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from core.errors import ModelUnavailable, RagminiError
from generation.prompt import Prompt, Source, build_messages

if TYPE_CHECKING:
    from generation.answer import Sampling

PREFIX = "openai:"
BASE_URL_ENV = "OPENAI_BASE_URL"
KEY_ENV = "OPENAI_API_KEY"
CONTEXT_ENV = "RAGMINI_CONTEXT_WINDOW"
CONNECT_TIMEOUT = 5.0
CHECK_TIMEOUT = 8.0  # the whole models check when loading: under the 10 s promised
READ_TIMEOUT = 120.0  # between two pieces of a reply: a big model on a CPU reads slowly
# The window assumed for a server's model: the smallest default of the common
# servers (llama.cpp's server and older Ollama: 2048). RAGMINI_CONTEXT_WINDOW raises it.
DEFAULT_CONTEXT = 2048
_NO_KEY = "sk-no-key"  # the client wants a key; servers without auth ignore it


def is_openai(name: str) -> bool:
    return name == PREFIX.rstrip(":") or name.startswith(PREFIX)


@dataclass
class OpenAIGenerator:
    """A model behind an OpenAI-compatible /v1/chat/completions."""

    name: str  # "openai:MODEL"
    model: str
    base_url: str
    client: Any
    context_window: int = DEFAULT_CONTEXT
    fallback_from: str | None = None
    needs_model = True

    def prompt(self, question: str, sources: list[Source], budget: int) -> Prompt:
        """The chat turn for `question`, fitted to `budget` estimated tokens."""
        return build_messages(question, sources, budget=budget)

    def write(self, prompt: Prompt, sampling: Sampling,
              on_text: Callable[[str], None] | None = None) -> str:
        """Stream the reply to `prompt`; `on_text` gets each piece as it comes."""
        pieces = []
        for piece in self.stream(prompt.messages, sampling):
            pieces.append(piece)
            if on_text:
                on_text(piece)
        return "".join(pieces).strip()

    def stream(self, messages: list[dict], sampling: Sampling) -> Iterator[str]:
        """The reply to chat `messages`, piece by piece; errors as ModelUnavailable."""
        got = 0
        try:
            response = self.client.chat.completions.create(
                model=self.model, messages=messages, stream=True, **_sampling_args(sampling))
            for chunk in response:
                if not chunk.choices:
                    continue
                text = chunk.choices[0].delta.content
                if text:
                    got += len(text)
                    yield text
        except Exception as exc:  # noqa: BLE001 (narrowed by _explain; others re-raised)
            raise _explain(exc, self.base_url, self.model, got) from exc

    def complete(self, messages: list[dict], sampling: Sampling | None = None) -> str:
        """The model's reply to chat `messages` (e.g. rewriting a follow-up question)."""
        from generation.answer import Sampling

        return "".join(self.stream(messages, sampling or Sampling())).strip()


def load_openai(name: str, *, base_url: str | None = None, api_key: str | None = None,
                context_window: int | None = None) -> OpenAIGenerator:
    """Connect to the server and check that it serves the model `openai:MODEL` names
    (`openai:` alone: the first model it lists). Raises ModelUnavailable, within
    10 s, naming the URL and what to check."""
    model = name[len(PREFIX):] if name.startswith(PREFIX) else ""
    url = _base_url(base_url)
    key = api_key if api_key is not None else os.environ.get(KEY_ENV) or None
    try:
        import openai
    except ImportError as exc:
        raise ModelUnavailable("the openai package is not installed: run `make setup`",
                               param="generator") from exc
    client = openai.OpenAI(base_url=url, api_key=key or _NO_KEY, max_retries=0,
                           timeout=openai.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT))
    try:
        # Raw: a server that is not an API (a web page at that URL) must give an
        # error here, not confuse the client's parser.
        raw = client.models.with_raw_response.list(
            timeout=openai.Timeout(CHECK_TIMEOUT, connect=CONNECT_TIMEOUT))
        ids = _model_ids(raw.http_response.content)
    except Exception as exc:  # noqa: BLE001 (narrowed by _explain; others re-raised)
        raise _explain(exc, url, model, key_set=bool(key)) from exc
    if ids is None:
        raise ModelUnavailable(f"the server at {url} did not answer as an OpenAI-compatible "
                               f"API (its {url}/models is not a model list); check the base "
                               "URL", param="generator")
    if not model:
        if not ids:
            raise ModelUnavailable(f"the server at {url} lists no model: load one there, or "
                                   "name it as openai:MODEL", param="generator")
        model = ids[0]
    elif ids and model not in ids:
        shown = ", ".join(ids[:8]) + (" ..." if len(ids) > 8 else "")
        raise ModelUnavailable(f"the server at {url} has no model '{model}'; it lists: "
                               f"{shown}", param="generator")
    window = context_window or _context_from_env()
    return OpenAIGenerator(f"{PREFIX}{model}", model, url, client, window)


def _model_ids(body: bytes) -> list[str] | None:
    """The model ids of a /models body, or None when it is not one."""
    try:
        data = json.loads(body).get("data")
    except (ValueError, AttributeError):
        return None
    if not isinstance(data, list):
        return None
    return [str(m["id"]) for m in data if isinstance(m, dict) and "id" in m]


def _base_url(given: str | None) -> str:
    url = (given or os.environ.get(BASE_URL_ENV) or "").strip().rstrip("/")
    if not url:
        raise ModelUnavailable(
            "an openai:MODEL generator needs its server's URL: pass --base-url "
            f"or set {BASE_URL_ENV}, e.g. http://127.0.0.1:11434/v1 for Ollama or "
            "http://127.0.0.1:8080/v1 for llama.cpp's server", param="base_url")
    parts = urlparse(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise RagminiError(f"base URL {url!r} is not an http(s) URL, e.g. "
                           "http://127.0.0.1:11434/v1", param="base_url")
    return url


def _context_from_env() -> int:
    raw = os.environ.get(CONTEXT_ENV, "").strip()
    if not raw:
        return DEFAULT_CONTEXT
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 256:
        raise RagminiError(f"{CONTEXT_ENV}={raw!r} must be a number of tokens, 256 or more",
                           param="generator")
    return value


def _sampling_args(sampling: Sampling) -> dict:
    args: dict[str, Any] = {"temperature": sampling.temperature, "top_p": sampling.top_p,
                            "max_tokens": sampling.max_new_tokens}
    if sampling.seed is not None:
        args["seed"] = sampling.seed
    if sampling.top_k:
        args["extra_body"] = {"top_k": sampling.top_k}
    return args


def _explain(exc: Exception, url: str, model: str, got: int = 0,
             key_set: bool | None = None) -> Exception:
    """A one-line ModelUnavailable for what went wrong talking to the server at `url`;
    `exc` itself when it is not a client or transport error (a bug keeps its traceback)."""
    import openai

    if isinstance(exc, RagminiError):
        return exc
    if key_set is None:
        key_set = bool(os.environ.get(KEY_ENV))
    where = f"the server at {url}"
    check = f"check that it is running and the base URL (--base-url or {BASE_URL_ENV})"
    if got:
        return ModelUnavailable(f"{where} stopped in the middle of the answer after {got} "
                                f"characters ({_reason(exc)}); {check}", param="generator")
    if isinstance(exc, openai.APITimeoutError):
        return ModelUnavailable(f"{where} did not answer in time ({_reason(exc)}); {check}",
                                param="generator")
    if isinstance(exc, openai.APIConnectionError):
        return ModelUnavailable(f"cannot reach an OpenAI-compatible server at {url} "
                                f"({_reason(exc)}); {check}", param="generator")
    if isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)):
        status = getattr(exc, "status_code", 401)
        fix = (f"the key in {KEY_ENV} is wrong for it; set the one it accepts" if key_set
               else f"it wants an API key: set {KEY_ENV}")
        return ModelUnavailable(f"{where} refused the request ({status}): {fix}",
                                param="generator")
    if isinstance(exc, openai.NotFoundError):
        if model and "model" in str(exc).lower():
            return ModelUnavailable(f"{where} has no model '{model}'", param="generator")
        return ModelUnavailable(f"no OpenAI-compatible API at {url} (404 Not Found): check "
                                "the base URL; it usually ends in /v1", param="generator")
    if isinstance(exc, openai.APIStatusError):
        return ModelUnavailable(f"{where} answered {exc.status_code}: {_message(exc)}",
                                param="generator")
    if isinstance(exc, openai.OpenAIError) or _is_transport(exc):
        return ModelUnavailable(f"{where} did not answer as an OpenAI-compatible API "
                                f"({_reason(exc)}); {check}", param="generator")
    return exc


def _is_transport(exc: Exception) -> bool:
    # Errors while reading a stream come from the HTTP library itself, unwrapped; a
    # server that is not an API answers what is not JSON.
    package = type(exc).__module__.split(".")[0]
    return package in ("httpx2", "httpx", "httpcore2", "httpcore") or isinstance(
        exc, json.JSONDecodeError)


def _message(exc) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        text = inner.get("message") if isinstance(inner, dict) else inner
        if isinstance(text, str) and text.strip():
            return _one_line(text)
    return _one_line(getattr(exc, "message", "") or str(exc))


def _reason(exc: BaseException) -> str:
    """The innermost cause's words ("Connection refused", "timed out"), on one line."""
    seen = exc
    while seen.__cause__ is not None or seen.__context__ is not None:
        seen = seen.__cause__ or seen.__context__
    text = str(seen) or type(seen).__name__
    if "Errno 111" in text or "refused" in text.lower():
        return "connection refused"
    return _one_line(text)


def _one_line(text: str, width: int = 200) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"
