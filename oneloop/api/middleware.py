"""The request id and the security headers every answer carries, as one pure ASGI middleware.

Pure ASGI rather than ``@app.middleware("http")``: Starlette's ``BaseHTTPMiddleware`` runs
the rest of the app in a task group and streams the answer through a memory channel, which
costs each request more than many of our reads do.
"""

from __future__ import annotations

import re

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from oneloop.api import openapi
from oneloop.core.ids import new_id
from oneloop.core.logging import request_id_var

REQUEST_ID_HEADER = "X-Request-ID"
API_DOCS = (openapi.DOCS_URL, openapi.REDOC_URL, "/docs", "/redoc")
CONSOLE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


class AnswerHeaders:
    """Tags every log line of a request with its id (the caller's, if it is safe to echo)
    and hands the id back. Every answer also says: no MIME sniffing, no framing
    (click-jacking), no referrer leaving the site. The console's pages get a content security
    policy allowing our own scripts and styles only, so that a profile value that slipped
    past escaping still cannot run; the interactive API docs load their assets from a CDN
    and are left out."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = Headers(scope=scope).get(REQUEST_ID_HEADER, "")
        rid = given if _SAFE_REQUEST_ID.fullmatch(given) else new_id()
        # request.state: the 500 handler runs outside this middleware and reads it there
        scope.setdefault("state", {})["request_id"] = rid
        docs = scope["path"].startswith(API_DOCS)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers[REQUEST_ID_HEADER] = rid
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault("Referrer-Policy", "same-origin")
                if headers.get("content-type", "").startswith("text/html") and not docs:
                    headers.setdefault("Content-Security-Policy", CONSOLE_CSP)
            await send(message)

        token = request_id_var.set(rid)
        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            request_id_var.reset(token)


class ConnectionTurnover:
    """Closes a keep-alive connection after ``limit`` answers (``Connection: close``), as
    proxies do (nginx's ``keepalive_requests``).

    With several server processes, each connection stays with the process that accepted it;
    a client (or a proxy's pool) that opened its connections at once may find two thirds of
    them on one process, which then queues while the other idles. Closing every so often
    lets the next connection go to whichever process accepts first, which is the one with
    time to spare. The client reconnects on its own; a TCP handshake on the loopback costs
    less than a read. The connection is known by the client's address and port, unique
    while it is open."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self._served: dict[tuple[object, ...], int] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if scope["type"] != "http" or not client:
            await self.app(scope, receive, send)
            return
        key = tuple(client)
        served = self._served.get(key, 0) + 1
        if len(self._served) >= MAX_TRACKED_CONNECTIONS:
            self._served.clear()  # connections that closed on their own: start counting anew
        last = served >= self.limit
        if last:
            self._served.pop(key, None)
        else:
            self._served[key] = served

        async def send_closing(message: Message) -> None:
            if last and message["type"] == "http.response.start":
                MutableHeaders(scope=message)["Connection"] = "close"
            await send(message)

        await self.app(scope, receive, send_closing if last else send)


MAX_TRACKED_CONNECTIONS = 10_000
