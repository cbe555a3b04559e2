"""What every request meets before any route: one plain ASGI middleware around the
whole app (the page, /api/, and whatever is mounted later: /mcp, /v1/...).

In order:

1. **Host allow-list** (DNS rebinding): the Host header must name this machine's
   loopback (localhost, *.localhost, 127.0.0.0/8, ::1), the address the server is
   bound to, or a name given with `serve --allow-host`; anything else is 421.
2. **Cross-site writes**: a request that can change the store (any method but GET,
   HEAD, OPTIONS) is refused with 403 when a browser says it comes from another
   site: `Sec-Fetch-Site` other than same-origin or none, or else an `Origin` that
   is not this server's own (or the `--cors-origin` one). A request with neither
   header (curl, Python clients) is not a browser's and passes. This holds with or
   without a token: a loopback bind does not stop a page the user has open.
3. **Body size**: over the cap, 413 (a chunked body is counted as it arrives).
4. **Token**: with `--token`, every path but the page, its static files, the API
   docs and /healthz needs `Authorization: Bearer TOKEN`, else 401.

Responses also get `nosniff` and a frame ban (no other site can frame the page and
steer clicks into it). Every refusal is the one error shape,
`{"error": {"code", "message"}}`, as is uvicorn's own 400 for a request it cannot
parse (`http_protocol`).
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
from collections.abc import Iterable

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SAME_ORIGIN_FETCH = frozenset({"same-origin", "none"})  # none: typed, bookmarked
LOOPBACK_NAMES = ("localhost",)
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")  # as the 421 message lists them
# Served without the token: the page asks for it, and /healthz is for supervisors.
PUBLIC_PATHS = frozenset({"/", "/healthz", "/docs", "/openapi.json", "/favicon.ico"})
PUBLIC_PREFIXES = ("/static/", "/swagger/")
JSON_CAP = 2**20  # every body but an upload's
UPLOAD_PATH = "/api/documents"
UPLOAD_FILES = 8  # an upload may carry this many files at the per-file limit
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
)
FRAME_BAN = b"frame-ancestors 'none'"


def error_response(status: int, code: str, message: str) -> JSONResponse:
    """The one error shape: `{"error": {"code", "message"}}`."""
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


# The OpenAI-compatible routes: their clients read OpenAI's error shape.
OPENAI_PREFIX = "/v1/"
_OPENAI_TYPES = {401: "authentication_error", 403: "permission_error",
                 413: "invalid_request_error", 421: "invalid_request_error"}


def _openai_shaped(response: JSONResponse) -> JSONResponse:
    """A refusal in OpenAI's error shape, same status and headers."""
    import json

    error = json.loads(response.body)["error"]
    out = JSONResponse({"error": {"message": error["message"], "code": error["code"],
                                  "type": _OPENAI_TYPES.get(response.status_code,
                                                            "invalid_request_error"),
                                  "param": None}}, status_code=response.status_code)
    for key, value in response.headers.items():
        if key.lower() not in ("content-length", "content-type"):
            out.headers[key] = value
    return out


def host_name(host: str) -> str:
    """The name part of a Host header, lower-case, without port, brackets or the
    final dot: "[::1]:8000" -> "::1", "LocalHost.:80" -> "localhost"."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


def is_loopback(name: str) -> bool:
    if name in LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class Guard:
    """The checks above, in front of `app`. Plain ASGI: a BaseHTTPMiddleware costs
    about a millisecond a request.

    `bound`: the address the server listens on; `allow_hosts`: more Host names it
    answers for; `origins`: browser origins (besides its own) that may write (the
    CORS origin); `token`: the bearer token, if any; `max_upload_bytes`: the
    per-file upload limit (an upload's body may hold UPLOAD_FILES of them)."""

    def __init__(self, app, *, bound: str = "127.0.0.1", allow_hosts: Iterable[str] = (),
                 origins: Iterable[str] = (), token: str | None = None,
                 max_upload_bytes: int = 20 * 2**20):
        self.app = app
        self.hosts = {host_name(bound), *(host_name(h) for h in allow_hosts)}
        self.origins = {o.rstrip("/").lower() for o in origins}
        self.expected = f"Bearer {token}".encode() if token else None
        self.upload_cap = max_upload_bytes * UPLOAD_FILES + 2**20

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        if scope["type"] == "http":
            send = _with_security_headers(send)
        refusal = self.refusal(scope, headers)
        if refusal is not None and scope["path"].startswith(OPENAI_PREFIX):
            refusal = _openai_shaped(refusal)
        if refusal is not None:
            if scope["type"] == "websocket":
                return await send({"type": "websocket.close", "code": 1008})
            return await refusal(scope, receive, send)
        if scope["type"] == "http":
            length = headers.get(b"content-length", b"")
            if not length.isdigit():  # a chunked body: count it as it arrives
                cap = self.cap(scope["path"])
                receive = _capped(receive, cap, _too_large(cap))
        return await self.app(scope, receive, send)

    def cap(self, path: str) -> int:
        return self.upload_cap if path == UPLOAD_PATH else JSON_CAP

    def refusal(self, scope, headers: dict[bytes, bytes]) -> JSONResponse | None:
        """The response refusing this request, or None to let it through."""
        host = headers.get(b"host", b"").decode("latin-1")
        name = host_name(host)
        if host and not (is_loopback(name) or name in self.hosts):
            known = dict.fromkeys([*LOOPBACK_HOSTS, *sorted(self.hosts)])
            return error_response(421, "host_not_allowed", (
                f"this server does not answer for the host {name!r} (a guard against DNS "
                f"rebinding); it answers for {', '.join(known)}. Start it with --allow-host "
                f"{name} to add that name"))
        method = scope.get("method", "GET")
        if scope["type"] == "websocket" or method not in SAFE_METHODS:
            site = self.cross_site(host, headers)
            if site:
                return error_response(403, "cross_site", (
                    f"refused: this {method} comes from a page of another site ({site}); "
                    "only this server's own page may send it (clients that send no Origin, "
                    "such as curl or Python, are not affected)"))
        if scope["type"] == "http":
            length = headers.get(b"content-length", b"")
            cap = self.cap(scope["path"])
            if length.isdigit() and int(length) > cap:
                return error_response(413, "too_large", _too_large(cap))
        if self.expected and not _public(scope["path"]) and not hmac.compare_digest(
                headers.get(b"authorization", b""), self.expected):
            response = error_response(401, "unauthorized", "this server needs its access "
                                      "token, sent as `Authorization: Bearer TOKEN`")
            response.headers["WWW-Authenticate"] = "Bearer"
            return response
        return None

    def cross_site(self, host: str, headers: dict[bytes, bytes]) -> str | None:
        """Where a browser says the request comes from, when that is not this server
        (None: same origin, a trusted origin, or no browser at all)."""
        origin = headers.get(b"origin", b"").decode("latin-1").strip()
        if origin and origin.rstrip("/").lower() in self.origins:
            return None
        fetch_site = headers.get(b"sec-fetch-site", b"").decode("latin-1").strip().lower()
        if fetch_site:
            if fetch_site in SAME_ORIGIN_FETCH:
                return None
            return f"Sec-Fetch-Site: {fetch_site}" + (f", Origin {origin}" if origin else "")
        if not origin:
            return None
        own = {f"http://{host}".lower(), f"https://{host}".lower()}
        return None if origin.rstrip("/").lower() in own else f"Origin {origin}"


def _public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def _too_large(cap: int) -> str:
    return f"the request body is over {cap / 2**20:g} MB"


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


def _with_security_headers(send):
    async def wrapped(event):
        if event["type"] == "http.response.start":
            headers = list(event.get("headers", []))
            names = {k.lower() for k, _ in headers}
            headers += [(k, v) for k, v in SECURITY_HEADERS if k not in names]
            if b"content-security-policy" not in names:
                headers.append((b"content-security-policy", FRAME_BAN))
            event = {**event, "headers": headers}
        await send(event)

    return wrapped


# -- requests uvicorn cannot parse ----------------------------------------------

def _json_400(self, msg: str) -> None:
    """uvicorn's 400 for a request it cannot parse (a request line or header over
    its parser's limit, bytes that are not HTTP), in the one error shape."""
    body = json.dumps({"error": {"code": "bad_request", "message": (
        "the request could not be read as HTTP: a request line or header over the "
        "server's limit (a query takes at most 2000 characters), or not HTTP at all")}}
    ).encode()
    head = [b"HTTP/1.1 400 Bad Request\r\n"]
    head += [name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers]
    head += [b"content-type: application/json\r\n",
             b"content-length: " + str(len(body)).encode() + b"\r\n",
             b"connection: close\r\n\r\n"]
    self.transport.write(b"".join(head) + body)
    self.transport.close()


def http_protocol() -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol (httptools, else h11) answering unparsable requests
    with the JSON error shape: `uvicorn.run(app, http=http_protocol())`."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as Base
    except ImportError:  # httptools missing: the pure-Python parser
        from uvicorn.protocols.http.h11_impl import H11Protocol as Base

    return type("JsonErrorProtocol", (Base,), {"send_400_response": _json_400})
