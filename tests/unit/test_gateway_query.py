"""What a gateway client asks for: filters from a query, positions, bearer headers, and
the app's CORS switch."""

from __future__ import annotations

import httpx
import pytest
from redis.asyncio import Redis

from alerts.delivery.access import Subscriptions
from alerts.delivery.stream import AlertStream
from schemas.gateway import Filters
from schemas.settings import Settings
from streams.gateway.app import create_app
from streams.gateway.auth import bearer_token, is_public
from streams.gateway.query import QueryError, filters_from, position_from


def test_values_repeat_or_are_comma_separated() -> None:
    filters = filters_from(["HSTECH,BIDU", " BABA "], ["daily_move"], [], ["close,intraday"])
    assert filters == Filters(
        instruments=["HSTECH", "BIDU", "BABA"],
        kinds=["daily_move"],
        stages=["close", "intraday"],
    )
    assert filters_from([], [], [], []) == Filters()
    assert filters_from([","], [], [], []) == Filters()


@pytest.mark.parametrize(
    ("instrument", "kind", "stage", "said"),
    [
        ([], ["sideways"], [], "sideways"),
        ([], [], ["later"], "later"),
        (["X" * 65], [], [], "instruments.0"),
        ([",".join(["A"] * 201)], [], [], "instruments"),
    ],
)
def test_a_bad_filter_is_one_line_naming_it(
    instrument: list[str], kind: list[str], stage: list[str], said: str
) -> None:
    with pytest.raises(QueryError) as error:
        filters_from(instrument, kind, [], stage)
    assert said in str(error.value) and "\n" not in str(error.value)


def test_positions() -> None:
    assert position_from("after", None) is None
    assert position_from("after", "0") == "0"
    assert position_from("after", "1758160800000-3") == "1758160800000-3"
    for bad in ("", "-1", "1-", "x", "1-2-3", "9" * 21):
        with pytest.raises(QueryError, match="after"):
            position_from("after", bad)


def test_bearer_headers() -> None:
    assert bearer_token("Bearer tw_abc-_~.+/9==") == "tw_abc-_~.+/9=="
    assert bearer_token("bearer tw_abc") == "tw_abc"
    for bad in (None, "", "Bearer", "Bearer ", "Bearer  tw", "Bearer a b", "Basic tw", "tw"):
        assert bearer_token(bad) is None, bad


def test_public_paths() -> None:
    assert all(is_public(p) for p in ("/", "/healthz", "/openapi.json", "/docs", "/page/a.js"))
    assert not any(is_public(p) for p in ("/v1/me", "/page", "/pages/x", "/healthz/x", "/x"))


async def test_cors_only_for_the_origins_set() -> None:
    app = create_app(Settings(gateway_cors_origins="https://desk.example, https://b.example"))
    # No lifespan, no Redis: a preflight is answered before the token gate.
    transport = httpx.ASGITransport(app)
    asked = {
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization",
    }
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        allowed = await client.options(
            "/v1/me", headers={"Origin": "https://desk.example", **asked}
        )
        other = await client.options(
            "/v1/me", headers={"Origin": "https://elsewhere.example", **asked}
        )
    assert allowed.headers["access-control-allow-origin"] == "https://desk.example"
    assert "access-control-allow-origin" not in other.headers


class _Alice:
    async def who(self, token: str) -> str:
        return "alice"


async def test_redis_down_is_a_503_in_one_line() -> None:
    app = create_app(Settings())
    unreachable = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    app.state.users = _Alice()
    app.state.stream = AlertStream(unreachable, "tw", 100, 60)
    app.state.subscriptions = Subscriptions(unreachable, "tw")
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        response = await client.get("/v1/alerts", headers={"Authorization": "Bearer tw_x"})
    await unreachable.aclose()
    assert response.status_code == 503
    assert response.json() == {"detail": "the gateway's storage is unavailable"}
