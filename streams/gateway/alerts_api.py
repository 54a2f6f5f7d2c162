"""The alert endpoints: the live stream (SSE and WebSocket) and the history, under /v1."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, WebSocket
from redis.exceptions import RedisError
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.websockets import WebSocketDisconnect, WebSocketState

from alerts.delivery.access import Users
from alerts.delivery.stream import AlertStream
from schemas.alerts import Alert
from schemas.gateway import AlertPage, Filters, StreamedAlert
from streams.gateway.auth import WS_DENIED, current_token
from streams.gateway.follow import Heartbeat, Item, Truncated, follow
from streams.gateway.metrics import GatewayMetrics
from streams.gateway.query import QueryError, alert_filters, chosen_filters, position_from
from streams.gateway.wire import Wire

log = logging.getLogger(__name__)

#: How long a client may take to accept one event before it is dropped.
_SEND_TIMEOUT_S = 30.0
#: History with filters reads at most this many entries per request, then hands back a
#: cursor: a rare filter cannot make one request scan the whole stream.
_HISTORY_SCAN = 10_000
_HISTORY_READ = 1000

_AFTER = Query(
    description="Resume strictly after this stream position; 0: everything kept. "
    "Last-Event-ID, when sent, wins. Neither: only new alerts.",
)

_STREAM_DOC = """Alerts as they are published, as Server-Sent Events.

Each alert is one event: `id:` its stream position, `event: alert`, `data:` the alert
JSON exactly as published on the alerts topic, described by the published JSON Schema
`schemas/json/alert.schema.json` (the `Alert` schema here). Reconnect with
`Last-Event-ID` (or `after=`) to receive exactly what was missed. When the position asked
for is older than the oldest kept alert, the first event is `event: truncated` with data
`{"oldest": "<position>"}`. A comment (`: ping`) comes every heartbeat; the stream ends
at the next heartbeat after the token is revoked.
"""

_SSE_CONTENT = {
    "text/event-stream": {
        "itemSchema": {
            "type": "object",
            "required": ["data"],
            "properties": {
                "id": {"type": "string", "description": "The stream position."},
                "event": {"type": "string", "enum": ["alert", "truncated"]},
                "retry": {"type": "integer", "minimum": 0},
                "data": {
                    "type": "string",
                    "contentMediaType": "application/json",
                    "contentSchema": {"$ref": "#/components/schemas/Alert"},
                },
            },
        }
    }
}


def alerts_routes() -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["alerts"])
    router.add_api_route(
        "/alerts/stream",
        alert_stream,
        methods=["GET"],
        response_class=EventSourceResponse,
        description=_STREAM_DOC,
        responses={200: {"description": "The alerts, live.", "content": _SSE_CONTENT}},
    )
    router.add_api_route("/alerts", history, methods=["GET"], response_model=AlertPage)
    router.add_api_websocket_route("/alerts/ws", alert_socket)
    return router


async def alert_stream(
    request: Request,
    filters: Annotated[Filters, Depends(alert_filters)],
    after: Annotated[str | None, _AFTER] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> EventSourceResponse:
    """The live stream of alerts (Server-Sent Events)."""
    try:
        # An empty Last-Event-ID is a client that has seen no event yet.
        header = position_from("Last-Event-ID", last_event_id or None)
        asked = header or position_from("after", after)
    except QueryError as error:
        raise HTTPException(422, detail=str(error)) from None
    state = request.app.state
    # "Only new alerts" starts here, before the response: whatever is published once
    # the client has the headers, it receives.
    start = asked or await _newest(state.stream)
    items = follow(state.stream, state.fanout, start, filters, state.settings.gateway_heartbeat_s)
    events = _events(items, state.wire, state.users, current_token(request.scope), state.metrics)
    return EventSourceResponse(
        events,
        headers={"Cache-Control": "no-cache"},
        ping=0,  # follow() beats, so that a revoked token is noticed on the beat
        sep="\n",  # as the alerts' events (wire.py): one line end in the whole stream
        send_timeout=_SEND_TIMEOUT_S,
    )


async def _newest(stream: AlertStream) -> str:
    try:
        return await stream.last_position() or "0"
    except (RedisError, OSError) as error:
        raise HTTPException(503, detail="the gateway's storage is unavailable") from error


async def _events(
    items: AsyncGenerator[Item, None],
    wire: Wire,
    users: Users,
    token: str,
    metrics: GatewayMetrics | None,
) -> AsyncIterator[ServerSentEvent | bytes]:
    if metrics is not None:
        metrics.opened("sse")
    try:
        yield ServerSentEvent(retry=2000)
        async for item in items:
            if isinstance(item, list):
                # Bytes go out as they are: the batch's events in one write.
                yield wire.sse(item)
                if metrics is not None:  # written: the response has sent it on
                    metrics.delivered("sse", item)
            elif isinstance(item, Truncated):
                yield ServerSentEvent(data=json.dumps({"oldest": item.oldest}), event="truncated")
            elif isinstance(item, Heartbeat):
                if not await _still_allowed(users, token):
                    return
                yield ServerSentEvent(comment="ping")
    finally:
        if metrics is not None:
            metrics.closed("sse")
        await items.aclose()


async def _still_allowed(users: Users, token: str) -> bool:
    try:
        return await users.who(token) is not None
    except (RedisError, OSError) as error:
        # A Redis outage is not a revocation: the stream goes on until it answers.
        log.warning("token check: Redis: %s", error)
        return True


async def history(
    request: Request,
    filters: Annotated[Filters, Depends(alert_filters)],
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[
        str | None, Query(description="A next_cursor: alerts strictly older than it.")
    ] = None,
) -> AlertPage:
    """Kept alerts, newest first, a page at a time. A page may hold fewer than `limit`
    alerts and still have a next_cursor (a rare filter is read in steps)."""
    try:
        cursor = position_from("before", before)
    except QueryError as error:
        raise HTTPException(422, detail=str(error)) from None
    stream: AlertStream = request.app.state.stream
    unfiltered = filters == Filters()
    items: list[StreamedAlert] = []
    scanned = 0
    while scanned < _HISTORY_SCAN:
        asked = limit - len(items) if unfiltered else _HISTORY_READ
        entries = await stream.before(cursor, asked)
        for entry in entries:
            cursor = entry.position
            if filters.matches(entry.instrument, entry.kind, entry.rule, entry.stage):
                alert = Alert.model_validate_json(entry.alert)
                items.append(StreamedAlert(position=entry.position, alert=alert))
                if len(items) == limit:
                    return AlertPage(items=items, next_cursor=cursor)
        scanned += len(entries)
        if len(entries) < asked:
            return AlertPage(items=items, next_cursor=None)
    return AlertPage(items=items, next_cursor=cursor)


async def alert_socket(websocket: WebSocket) -> None:
    """The live stream over a WebSocket: the filters and `after` of the SSE stream; each
    message `{"position": ..., "alert": {...}}`, or `{"truncated": {"oldest": ...}}`."""
    state = websocket.app.state
    query = websocket.query_params
    try:
        filters = await chosen_filters(
            state.subscriptions,
            websocket.scope["state"]["user"],
            query.get("subscription"),
            query.getlist("instrument"),
            query.getlist("kind"),
            query.getlist("rule"),
            query.getlist("stage"),
        )
        asked = position_from("after", query.get("after"))
    except (QueryError, LookupError) as error:
        await websocket.accept()
        await websocket.close(1008, str(error)[:120])  # 1008: policy violation
        return
    start = asked or await _newest(state.stream)
    await websocket.accept()
    metrics: GatewayMetrics | None = state.metrics
    if metrics is not None:
        metrics.opened("ws")
    items = follow(state.stream, state.fanout, start, filters, state.settings.gateway_heartbeat_s)
    sender = asyncio.create_task(_send_items(websocket, items, state.wire, state.users, metrics))
    listener = asyncio.create_task(_until_closed(websocket))
    try:
        await asyncio.wait((sender, listener), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (sender, listener):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await items.aclose()
        if metrics is not None:
            metrics.closed("ws")
    if sender.done() and not sender.cancelled() and sender.exception() is not None:
        log.warning("websocket: %s", sender.exception())


async def _send_items(
    websocket: WebSocket,
    items: AsyncGenerator[Item, None],
    wire: Wire,
    users: Users,
    metrics: GatewayMetrics | None,
) -> None:
    token = current_token(websocket.scope)
    async for item in items:
        if isinstance(item, list):
            for entry in item:  # a message per alert: what a WebSocket client reads
                await websocket.send_text(wire.ws(entry))
            if metrics is not None:
                metrics.delivered("ws", item)
        elif isinstance(item, Truncated):
            await websocket.send_text(json.dumps({"truncated": {"oldest": item.oldest}}))
        elif isinstance(item, Heartbeat) and not await _still_allowed(users, token):
            await websocket.close(WS_DENIED, "token revoked")
            return


async def _until_closed(websocket: WebSocket) -> None:
    with contextlib.suppress(WebSocketDisconnect):
        while websocket.client_state == WebSocketState.CONNECTED:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
