"""The viewer's outer guard, an ASGI middleware in front of everything else: which hosts it
answers for (DNS rebinding), the optional access token, the body-size limit and the JSON
content type of API bodies, and a last net that turns any unexpected error into a short JSON
500 with one log line (never a traceback, never a path).

A page on another site can rebind its own name to 127.0.0.1 and then read the API from the
visitor's browser: the browser still sends that site's name as Host, so only the names the
viewer was started for are answered. The token, when set, is taken from the
`X-Saescope-Token` header, the `saescope_token` cookie, or a `?token=` query (a first visit
from the printed link: the answer sets the cookie, so the UI's own fetches carry it).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import re
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from urllib.parse import parse_qsl, urlencode

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("saescope.server")

MAX_BODY_BYTES = 64 * 1024  # a live text is at most 4,000 characters: 64 KiB is generous
TOKEN_HEADER = b"x-saescope-token"
TOKEN_COOKIE = "saescope_token"
TOKEN_ENV = "SAESCOPE_TOKEN"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1", "[::1]")
_JSON_TYPE = re.compile(rb"^application/([\w.+-]+\+)?json\s*(;|$)", re.IGNORECASE)


@dataclass(frozen=True)
class GuardOptions:
    """What the guard lets through. `allowed_hosts` None answers any Host (a reverse proxy
    in front checks it); `token` None needs none."""

    allowed_hosts: frozenset[str] | None = field(default=frozenset(LOOPBACK_NAMES))
    token: str | None = None
    max_body_bytes: int = MAX_BODY_BYTES


def hosts_for(bind_host: str, extra: list[str] | tuple[str, ...] = ()) -> frozenset[str] | None:
    """The Host names a server bound to `bind_host` answers for: the loopback names, the
    bound address itself, and `extra` ("*" in extra: any host)."""
    if "*" in extra:
        return None
    names = {*LOOPBACK_NAMES, bind_host.lower(), *(h.lower() for h in extra)}
    return frozenset(n for n in names if n not in ("0.0.0.0", "::", ""))


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Guard:
    def __init__(self, app: ASGIApp, options: GuardOptions) -> None:
        self.app, self.options = app, options

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope)
        if refusal is not None:
            await _answer(send, *refusal)
            return
        headers = dict(scope["headers"])
        if scope["method"] in ("POST", "PUT", "PATCH"):
            body = await self._read_body(scope, headers, receive, send)
            if body is None:
                return
            receive = _replay(body, receive)
        set_cookie = self._token_from_query(scope)
        if set_cookie is not None:
            await _redirect_with_cookie(send, scope, set_cookie)
            return
        await self._run(scope, receive, send)

    def _refusal(self, scope: Scope) -> tuple[int, str, list] | None:
        headers = dict(scope["headers"])
        allowed = self.options.allowed_hosts
        if allowed is not None:
            host = _host_name(headers.get(b"host", b"").decode("latin-1"))
            if host not in allowed:
                return (
                    421,
                    f"Host: got {host[:100]!r}; this viewer answers for "
                    f"{', '.join(sorted(allowed))} (saescope serve --allowed-host NAME adds one).",
                    [],
                )
        token = self.options.token
        if token is not None and not _has_token(scope, headers, token):
            return (
                401,
                "this viewer needs its access token: open the link it printed at start "
                "(?token=...), or send the X-Saescope-Token header.",
                [],
            )
        return None

    def _token_from_query(self, scope: Scope) -> str | None:
        """A page visit with ?token=: answered with the cookie and a redirect without it."""
        if self.options.token is None or scope["method"] != "GET":
            return None
        if scope["path"].startswith("/api/"):
            return None
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        given = query.get("token")
        # only the right token becomes the cookie (a stale link must not replace a good one)
        if given is None or not hmac.compare_digest(given.encode(), self.options.token.encode()):
            return None
        return given

    async def _read_body(
        self, scope: Scope, headers: dict[bytes, bytes], receive: Receive, send: Send
    ) -> bytes | None:
        """The request body, read here up to the limit; None when refused (answered here)."""
        limit = self.options.max_body_bytes
        too_large = f"body: over the limit of {limit} bytes (live texts: see /api/limits)."
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or len(declared) > 12):
            await _answer(send, 400, f"Content-Length: got {declared[:20]!r}; expected bytes")
            return None
        if declared is not None and int(declared) > limit:
            await _answer(send, 413, too_large)
            return None
        if scope["path"].startswith("/api/") and not _JSON_TYPE.match(
            headers.get(b"content-type", b"")
        ):
            got = headers.get(b"content-type", b"none").decode("latin-1")[:80]
            await _answer(send, 415, f"Content-Type: got {got!r}; the API takes application/json")
            return None
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:  # a streamed body (no Content-Length, or a lying one)
                await _answer(send, 413, too_large)
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _run(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as err:
            log.error(
                "saescope viewer: %s %s failed: %s",
                scope["method"],
                scope["path"][:200],
                type(err).__name__,
            )
            if not started:
                await _answer(send, 500, "internal error in the viewer (see its log).")


def _host_name(host: str) -> str:
    """The name of a Host header, without its port ("[::1]:8000" -> "[::1]")."""
    host = host.strip().lower()
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _has_token(scope: Scope, headers: dict[bytes, bytes], token: str) -> bool:
    given = headers.get(TOKEN_HEADER, b"").decode("latin-1")
    if not given and b"cookie" in headers:
        cookie = SimpleCookie()
        try:
            cookie.load(headers[b"cookie"].decode("latin-1"))
        except Exception:
            cookie = SimpleCookie()
        given = cookie[TOKEN_COOKIE].value if TOKEN_COOKIE in cookie else ""
    if not given and scope["method"] == "GET" and not scope["path"].startswith("/api/"):
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        given = query.get("token", "")
    return hmac.compare_digest(given.encode(), token.encode())


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that gives the body read here once, then the client's own messages (so a
    disconnect still reaches the app)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


async def _answer(send: Send, status: int, detail: str, headers: list | None = None) -> None:
    body = orjson.dumps({"detail": detail})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _redirect_with_cookie(send: Send, scope: Scope, token: str) -> None:
    query = [
        (k, v)
        for k, v in parse_qsl(scope.get("query_string", b"").decode("latin-1"))
        if k != "token"
    ]
    location = scope["path"] + (f"?{urlencode(query)}" if query else "")
    cookie = f"{TOKEN_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"
    await send(
        {
            "type": "http.response.start",
            "status": 303,
            "headers": [
                (b"location", location.encode("latin-1", "replace")),
                (b"set-cookie", cookie.encode("latin-1", "replace")),
                (b"content-length", b"0"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": b""})
