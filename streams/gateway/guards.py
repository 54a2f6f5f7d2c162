"""Around every request: the query-string limit, and the security headers on every response.

(The body limit is FastAPI's own `max_body_size`; the token gate is auth.py.)
"""

from __future__ import annotations

import json

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_QUERY_BYTES = 4096

#: The page loads only its own files, no inline script or style, and talks only to us.
PAGE_POLICY = "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'"

_TOO_LONG = json.dumps({"detail": f"query string over {MAX_QUERY_BYTES} bytes"}).encode()


class QueryLimit:
    """414 for a query string over MAX_QUERY_BYTES, before anything parses it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and len(scope.get("query_string", b"")) > MAX_QUERY_BYTES:
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", b"%d" % len(_TOO_LONG)),
            ]
            await send({"type": "http.response.start", "status": 414, "headers": headers})
            await send({"type": "http.response.body", "body": _TOO_LONG})
            return
        await self.app(scope, receive, send)


class SecurityHeaders:
    """No MIME sniffing and no referrer on every response; the page's content policy on
    the page and its files."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        on_page = scope["path"] == "/" or scope["path"].startswith("/page/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = "no-referrer"
                if on_page:
                    headers["Content-Security-Policy"] = PAGE_POLICY
            await send(message)

        await self.app(scope, receive, send_with_headers)
