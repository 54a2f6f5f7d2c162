"""Around every request, outermost: its route template and status code counted, for
`tickwatch_gateway_http_requests_total`.

The route is looked up here, before the token gate or the query limit may answer, so a
401 or a 414 counts under the route it was meant for. The label is always a template of
the app's own routes (`/v1/bars/{instrument}`) or `unmatched`, never the path a client
sent: a scanner's thousand paths stay one series.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi.routing import RouteContext, iter_route_contexts
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from streams.gateway.auth import REFUSED_STATUS
from streams.gateway.metrics import GatewayMetrics

UNMATCHED = "unmatched"

#: What a WebSocket handshake is counted as: accepted (101 Switching Protocols), or
#: closed before it was accepted (403, as uvicorn answers then). One the token gate
#: accepts only to close it (4401) counts as the 401 (or 503) it stands for.
_WS_ACCEPTED, _WS_REFUSED = 101, 403


def route_template(routes: Sequence[RouteContext], scope: Scope) -> str:
    """The template of the route the router will pick: the first full match, else the first
    that matches the path only (a 405); `unmatched` when none does."""
    partial: RouteContext | None = None
    for route in routes:
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return route.path_format or UNMATCHED
        if match == Match.PARTIAL and partial is None:
            partial = route
    return (partial.path_format or UNMATCHED) if partial is not None else UNMATCHED


class RequestCounts:
    """Counts each HTTP request and WebSocket handshake once, when its answer starts (or
    as a 500 when the app raised before answering)."""

    def __init__(self, app: ASGIApp, metrics: GatewayMetrics) -> None:
        self.app = app
        self._metrics = metrics
        self._routes: list[RouteContext] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if self._routes is None:
            # The app's routes as the router sees them (an included router's own, with
            # their prefix); they are all added before the first request.
            self._routes = list(iter_route_contexts(scope["app"].routes))
        route = route_template(self._routes, scope)
        counted = False

        async def counting_send(message: Message) -> None:
            nonlocal counted
            if not counted:
                code = _code(message, scope)
                if code is not None:
                    counted = True
                    self._metrics.requested(route, code)
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        except Exception:
            if not counted:
                self._metrics.requested(route, 500)
            raise


def _code(message: Message, scope: Scope) -> int | None:
    """The status an ASGI message gives the request, if it is the one that does."""
    kind = message["type"]
    if kind in ("http.response.start", "websocket.http.response.start"):
        return int(message["status"])
    if kind == "websocket.accept":
        return int(scope.get("state", {}).get(REFUSED_STATUS, _WS_ACCEPTED))
    if kind == "websocket.close":
        return _WS_REFUSED
    return None
