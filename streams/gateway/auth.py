"""Who is asking: the bearer-token gate in front of every route but the public ones.

The gate is ASGI middleware, not only a dependency: it refuses before routing, body
parsing and validation, so no route (today's or a future one) answers a stranger with
anything but the one 401, and a 422 never hints at a route's parameters first.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from redis.exceptions import RedisError
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from alerts.delivery.access import Users

log = logging.getLogger(__name__)

DENIED = "missing or invalid token"
#: WebSocket close code for a refused token (4000-4999: the application's own codes).
WS_DENIED = 4401
#: Where a refused WebSocket's HTTP status is left in the scope's state: the socket is
#: accepted only to be closed, and the request counts (request_counts.py) read it.
REFUSED_STATUS = "refused_status"

#: Paths anyone may read: the page, its files, health, the API's description.
PUBLIC_PATHS = frozenset({"/", "/healthz", "/openapi.json", "/docs", "/docs/oauth2-redirect"})
PUBLIC_PREFIXES = ("/page/",)

# RFC 6750's b64token, one space after the scheme, nothing after the token.
_BEARER = re.compile(r"^[Bb][Ee][Aa][Rr][Ee][Rr] ([A-Za-z0-9\-._~+/]+=*)$")

_DENIED_BODY = json.dumps({"detail": DENIED}).encode()
_UNAVAILABLE_BODY = json.dumps({"detail": "the gateway's storage is unavailable"}).encode()

#: Only for the OpenAPI description (the lock on /docs); the gate does the checking.
bearer_scheme = HTTPBearer(auto_error=False, description="A token from `tickwatch users add`.")


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header; None when malformed."""
    if authorization is None:
        return None
    found = _BEARER.match(authorization)
    return found.group(1) if found else None


class TokenGate:
    """Refuses every non-public request without a live token (401, or WebSocket close
    4401 before any message); for the others, puts `user` and `token` in the scope's state."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or is_public(scope["path"]):
            await self.app(scope, receive, send)
            return
        token = bearer_token(Headers(scope=scope).get("authorization"))
        users: Users = scope["app"].state.users
        try:
            user = await users.who(token) if token is not None else None
        except RedisError as error:
            log.warning("token check: Redis: %s", error)
            await _refuse(scope, receive, send, 503, _UNAVAILABLE_BODY)
            return
        if user is None:
            await _refuse(scope, receive, send, 401, _DENIED_BODY)
            return
        state = scope.setdefault("state", {})
        state["user"], state["token"] = user, token
        await self.app(scope, receive, send)


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, body: bytes) -> None:
    if scope["type"] == "websocket":
        # Browsers and most clients only report a close code from an accepted socket;
        # a refused handshake reads as a network error.
        scope.setdefault("state", {})[REFUSED_STATUS] = status
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        code = WS_DENIED if status == 401 else 1013  # 1013: try again later
        reason = json.loads(body)["detail"]
        await send({"type": "websocket.close", "code": code, "reason": reason})
        return
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def current_user(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> str:
    """The name of the user the gate let in (a FastAPI dependency).

    Outside the gate (a route made public by mistake) there is no user: 401 again.
    """
    user = request.scope.get("state", {}).get("user")
    if not isinstance(user, str):
        raise HTTPException(401, detail=DENIED, headers={"WWW-Authenticate": "Bearer"})
    return user


def current_token(scope: Scope) -> str:
    """The token the gate checked, to check again later (a long stream and revocation)."""
    token = scope.get("state", {}).get("token")
    return token if isinstance(token, str) else ""
