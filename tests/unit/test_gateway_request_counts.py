"""HTTP requests counted by route template and status (streams/gateway/request_counts.py),
on the gateway's real app with a stand-in user list: a refusal counts under the route it
was meant for, and a client's own path text never becomes a label."""

from __future__ import annotations

import httpx
import pytest

from schemas.settings import Settings
from streams.gateway.app import create_app
from streams.gateway.metrics import GatewayMetrics
from streams.gateway.request_counts import RequestCounts


class Users:
    """Stands in for alerts.delivery.access.Users: one known token."""

    async def who(self, token: str) -> str | None:
        return "alice" if token == "good" else None


async def requests_counted(*asked: tuple[str, str, dict[str, str]]) -> dict[tuple[str, str], int]:
    metrics = GatewayMetrics()
    app = create_app(Settings(), metrics)
    app.state.users = Users()  # no lifespan here: no Redis
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        for method, path, headers in asked:
            await client.request(method, path, headers=headers)
    return dict(metrics.requests)


NO_TOKEN: dict[str, str] = {}


async def test_refusals_count_under_the_route_they_were_meant_for() -> None:
    counted = await requests_counted(
        ("GET", "/v1/alerts", NO_TOKEN),
        ("GET", "/v1/alerts", {"Authorization": "Bearer wrong"}),
        ("GET", "/v1/bars/SECRET-SYMBOL", NO_TOKEN),
        ("GET", "/v1/alerts?instrument=" + "X" * 5000, NO_TOKEN),
        ("DELETE", "/healthz", NO_TOKEN),
        ("GET", "/openapi.json", NO_TOKEN),
        ("GET", "/page/no-such-file.js", NO_TOKEN),
        ("GET", "/v1/subscriptions", {"Authorization": "Bearer good"}),
    )
    assert counted == {
        ("/v1/alerts", "401"): 2,
        ("/v1/bars/{instrument}", "401"): 1,
        ("/v1/alerts", "414"): 1,
        ("/healthz", "405"): 1,
        ("/openapi.json", "200"): 1,
        ("/page/{path}", "404"): 1,
        # The gate let it in; the route then failed without Redis (no lifespan here).
        ("/v1/subscriptions", "500"): 1,
    }


async def test_paths_of_no_route_are_one_label_whatever_they_say() -> None:
    paths = ["/wp-admin/setup.php", "/v1/alertz", "/v2/alerts", "/.env", "/v1/bars"]
    counted = await requests_counted(*(("GET", path, NO_TOKEN) for path in paths))
    assert counted == {("unmatched", "401"): len(paths)}
    public = await requests_counted(("GET", "/healthz/extra", {"Authorization": "Bearer good"}))
    assert public == {("unmatched", "404"): 1}


@pytest.mark.parametrize("enabled", [True, False])
def test_requests_are_counted_only_with_metrics(enabled: bool) -> None:
    app = create_app(Settings(), GatewayMetrics() if enabled else None)
    counting = [m for m in app.user_middleware if m.cls is RequestCounts]
    assert len(counting) == (1 if enabled else 0)
    if enabled:
        assert app.user_middleware[0].cls is RequestCounts  # outermost: sees every guard


async def test_a_websocket_refused_by_the_gate_counts_as_its_401() -> None:
    # The gate accepts the socket only to close it with 4401: not a 101.
    metrics = GatewayMetrics()
    app = create_app(Settings(), metrics)
    app.state.users = Users()
    scope = {
        "type": "websocket",
        "path": "/v1/alerts/ws",
        "raw_path": b"/v1/alerts/ws",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"authorization", b"Bearer wrong")],
        "state": {},
    }
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "websocket.connect"}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    assert [(m["type"], m.get("code")) for m in sent] == [
        ("websocket.accept", None),
        ("websocket.close", 4401),
    ]
    assert dict(metrics.requests) == {("/v1/alerts/ws", "401"): 1}
