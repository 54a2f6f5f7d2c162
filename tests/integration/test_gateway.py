"""The gateway as a client sees it: a real `tickwatch gateway`, the embedded broker, Redis.

One gateway serves the whole module; each test publishes alerts of instruments of its
own and filters on them, so tests do not see each other's alerts.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect

from alerts.delivery.stream import position_key
from schemas.alerts import Alert
from streams.dev.gateways import add_user
from tests.integration.gateway_support import (
    Gateway,
    alerts_of,
    bearer,
    gateway_settings,
    make_alert,
    pinged_after_alerts,
    publish,
    running_gateway,
    sse_events,
)

STREAM = "/v1/alerts/stream"


@pytest.fixture(scope="module")
def gateway(redis_url: str) -> Iterator[Gateway]:
    with running_gateway(gateway_settings(redis_url)) as running:
        yield running


@pytest.fixture(scope="module")
def token(gateway: Gateway) -> str:
    return add_user(gateway.settings.redis_url or "", gateway.settings.key_prefix, "alice")


@pytest.fixture
async def client(gateway: Gateway, token: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway.url, headers=bearer(token), timeout=10) as c:
        yield c


def fresh() -> str:
    """An instrument no other test publishes."""
    return f"T{uuid.uuid4().hex[:8].upper()}"


async def kept(client: httpx.AsyncClient, instrument: str, count: int) -> list[dict]:
    """The instrument's alerts in the gateway's history, oldest first, once there are
    `count` of them."""
    async with asyncio.timeout(15):
        while True:
            page = (await client.get("/v1/alerts", params={"instrument": instrument})).json()
            if len(page["items"]) >= count:
                return list(reversed(page["items"]))
            await asyncio.sleep(0.05)


def published(alerts: list[Alert]) -> list[str]:
    return [alert.model_dump_json() for alert in alerts]


async def test_live_alerts_arrive_as_published_with_positions_as_ids(
    gateway: Gateway, client: httpx.AsyncClient, token: str
) -> None:
    instrument = fresh()
    alerts = [make_alert(instrument, n) for n in range(5)]

    async def publish_now() -> None:
        await asyncio.to_thread(publish, gateway.settings, alerts)

    read = await sse_events(
        client, STREAM, pinged_after_alerts(5), bearer(token), {"instrument": instrument},
        on_open=publish_now,
    )  # fmt: skip
    got = alerts_of(read.events)
    assert [e.data for e in got] == published(alerts)  # the bytes as published
    positions = [item["position"] for item in await kept(client, instrument, 5)]
    assert [e.id for e in got] == positions
    assert read.events[0].retry == 2000
    assert read.events[-1].event == "comment" and read.events[-1].data == "ping"
    assert read.headers["cache-control"] == "no-cache"
    assert read.headers["x-accel-buffering"] == "no"


async def test_a_resumed_stream_gets_exactly_the_rest(
    gateway: Gateway, client: httpx.AsyncClient, token: str
) -> None:
    instrument = fresh()
    publish(gateway.settings, [make_alert(instrument, n) for n in range(6)])
    positions = [item["position"] for item in await kept(client, instrument, 6)]
    only = {"instrument": instrument}

    async def resumed(headers: dict[str, str], params: dict[str, str], count: int) -> list:
        read = await sse_events(
            client, STREAM, pinged_after_alerts(count), {**bearer(token), **headers},
            {**only, **params},
        )  # fmt: skip
        return [e.id for e in alerts_of(read.events)]

    assert await resumed({"Last-Event-ID": positions[2]}, {}, 3) == positions[3:]
    assert await resumed({}, {"after": positions[4]}, 1) == positions[5:]
    # The header wins over the query.
    header_and_query = ({"Last-Event-ID": positions[1]}, {"after": positions[4]}, 4)
    assert await resumed(*header_and_query) == positions[2:]
    assert await resumed({}, {"after": "0"}, 6) == positions
    assert await resumed({}, {"after": positions[5]}, 0) == []


async def test_a_position_older_than_the_oldest_kept_says_alerts_were_trimmed(
    gateway: Gateway, client: httpx.AsyncClient, token: str
) -> None:
    instrument = fresh()
    publish(gateway.settings, [make_alert(instrument, 1)])
    [item] = await kept(client, instrument, 1)
    params = {"instrument": instrument, "after": "1-0"}
    read = await sse_events(client, STREAM, pinged_after_alerts(1), bearer(token), params)
    truncated = [e for e in read.events if e.event == "truncated"]
    assert read.events.index(truncated[0]) < read.events.index(alerts_of(read.events)[0])
    oldest = json.loads(truncated[0].data)["oldest"]
    assert position_key("1-0") < position_key(oldest) <= position_key(item["position"])
    assert [e.id for e in alerts_of(read.events)] == [item["position"]]


async def test_filters_choose_alerts_on_stream_history_and_saved_subscriptions(
    gateway: Gateway, client: httpx.AsyncClient, token: str
) -> None:
    a, b = fresh(), fresh()
    alerts = {
        "a1": make_alert(a, 1),
        "a2": make_alert(a, 2, kind="record_high", rule="record"),
        "a3": make_alert(a, 3, stage="close"),
        "b1": make_alert(b, 4),
        "b2": make_alert(b, 5, kind="ytd_change", rule="ytd_gain", stage="close"),
    }
    publish(gateway.settings, list(alerts.values()))
    await kept(client, a, 3)
    await kept(client, b, 2)
    name_of = {alert.alert_id: name for name, alert in alerts.items()}
    saved = {"instruments": [a], "stages": ["close"]}
    assert (await client.put("/v1/subscriptions/mine", json=saved)).status_code == 200
    both = f"{a},{b}"
    cases: list[tuple[list[tuple[str, str]], set[str]]] = [
        ([("instrument", both), ("kind", "daily_move")], {"a1", "a3", "b1"}),
        ([("instrument", a), ("instrument", b), ("stage", "close")], {"a3", "b2"}),
        ([("instrument", both), ("rule", "record")], {"a2"}),
        ([("instrument", both), ("kind", "ytd_change,record_high")], {"a2", "b2"}),
        ([("subscription", "mine")], {"a3"}),
    ]
    for params, wanted in cases:
        read = await sse_events(
            client, STREAM, pinged_after_alerts(len(wanted)), bearer(token),
            [*params, ("after", "0")],
        )  # fmt: skip
        streamed = alerts_of(read.events)
        assert {name_of[json.loads(e.data)["alert_id"]] for e in streamed} == wanted, params
        ids = [position_key(e.id or "") for e in streamed]
        assert ids == sorted(ids)
        page = (await client.get("/v1/alerts", params=params)).json()
        assert {name_of[i["alert"]["alert_id"]] for i in page["items"]} == wanted, params
        assert [i["position"] for i in page["items"]] == [e.id for e in reversed(streamed)]


async def test_bad_filters_and_positions_are_refused_in_one_line(
    client: httpx.AsyncClient,
) -> None:
    cases = [
        ({"kind": "sideways"}, 422, "sideways"),
        ({"stage": "later"}, 422, "later"),
        ({"subscription": "mine", "instrument": "X"}, 422, "not both"),
        ({"subscription": "nobody-saved-this"}, 404, "nobody-saved-this"),
    ]
    asked = [(path, *case) for case in cases for path in (STREAM, "/v1/alerts")]
    asked.append((STREAM, {"after": "yesterday"}, 422, "after"))
    asked.append(("/v1/alerts", {"before": "yesterday"}, 422, "before"))
    for path, params, status, said in asked:
        response = await client.get(path, params=params)
        assert response.status_code == status, (path, params, response.text)
        detail = response.json()["detail"]
        assert isinstance(detail, str) and "\n" not in detail and said in detail
    response = await client.get(STREAM, headers={"Last-Event-ID": "x"})
    assert response.status_code == 422 and "Last-Event-ID" in response.json()["detail"]


async def test_history_pages_newest_first_with_a_cursor(
    gateway: Gateway, client: httpx.AsyncClient
) -> None:
    instrument = fresh()
    alerts = [make_alert(instrument, n) for n in range(7)]
    publish(gateway.settings, alerts)
    await kept(client, instrument, 7)
    pages, cursor = [], None
    while True:
        params = {"instrument": instrument, "limit": "3", **({"before": cursor} if cursor else {})}
        page = (await client.get("/v1/alerts", params=params)).json()
        pages.append([Alert.model_validate(i["alert"]) for i in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [len(p) for p in pages] in ([3, 3, 1], [3, 3, 1, 0])
    assert [alert for page in pages for alert in page] == list(reversed(alerts))
    newest = (await client.get("/v1/alerts", params={"limit": "2"})).json()
    first, second = (position_key(i["position"]) for i in newest["items"])
    assert first > second and newest["next_cursor"] == newest["items"][1]["position"]
    assert (await client.get("/v1/alerts", params={"limit": "1001"})).status_code == 422


async def test_the_websocket_carries_the_same_alerts(
    gateway: Gateway, client: httpx.AsyncClient, token: str
) -> None:
    instrument = fresh()
    alerts = [make_alert(instrument, n) for n in range(3)]
    url = gateway.ws_url(f"/v1/alerts/ws?instrument={instrument}")
    async with asyncio.timeout(15), connect(url, additional_headers=bearer(token)) as socket:
        await asyncio.to_thread(publish, gateway.settings, alerts)
        live = [orjson.loads(await socket.recv()) for _ in alerts]
    positions = [item["position"] for item in await kept(client, instrument, 3)]
    assert [m["position"] for m in live] == positions
    assert [Alert.model_validate(m["alert"]) for m in live] == alerts
    url = gateway.ws_url(f"/v1/alerts/ws?instrument={instrument}&after=1-0")
    async with asyncio.timeout(15), connect(url, additional_headers=bearer(token)) as socket:
        first = orjson.loads(await socket.recv())
        resumed = [orjson.loads(await socket.recv()) for _ in alerts]
    assert set(first) == {"truncated"} and "oldest" in first["truncated"]
    assert [m["position"] for m in resumed] == positions


async def test_what_is_not_an_alert_is_skipped_and_a_repeated_alert_kept_once(
    gateway: Gateway, client: httpx.AsyncClient, token: str
) -> None:
    instrument = fresh()
    first, second = make_alert(instrument, 1), make_alert(instrument, 2)
    publish(
        gateway.settings,
        [b"not json", first, first, b'{"alert_id": 1}', second],
        key=instrument,
    )
    await kept(client, instrument, 2)
    params = {"instrument": instrument, "after": "0"}
    read = await sse_events(client, STREAM, pinged_after_alerts(2), bearer(token), params)
    assert [e.data for e in alerts_of(read.events)] == published([first, second])
    health = (await client.get("/healthz")).json()
    assert health["ingest"]["invalid"] >= 2 and health["ingest"]["duplicates"] >= 1
    assert health["status"] == "ok"
    assert health["ingest"]["partitions"] == gateway.settings.alerts_partitions  # the only one


async def test_subscriptions_are_saved_listed_and_deleted(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/me")).json() == {"user": "alice"}
    filters = {"instruments": ["HSTECH"], "kinds": ["daily_move"], "rules": [], "stages": []}
    saved = await client.put("/v1/subscriptions/hstech.moves", json=filters)
    assert saved.json() == {"name": "hstech.moves", "filters": filters}
    listed = (await client.get("/v1/subscriptions")).json()
    assert {"name": "hstech.moves", "filters": filters} in listed
    assert (await client.delete("/v1/subscriptions/hstech.moves")).status_code == 204
    assert (await client.delete("/v1/subscriptions/hstech.moves")).status_code == 404
    bad_kind = await client.put("/v1/subscriptions/x", json={"kinds": ["sideways"]})
    assert bad_kind.status_code == 422
    assert (await client.put("/v1/subscriptions/a%20b", json={})).status_code == 422


async def test_limits_headers_and_no_cors_by_default(client: httpx.AsyncClient) -> None:
    big = await client.put("/v1/subscriptions/big", content=b"{" + b" " * 20_000 + b"}")
    assert big.status_code == 413
    long_query = await client.get("/v1/alerts", params={"instrument": "X" * 5000})
    assert long_query.status_code == 414
    origin = {"Origin": "https://elsewhere.example"}
    plain = await client.get("/v1/me", headers=origin)
    assert plain.status_code == 200 and "access-control-allow-origin" not in plain.headers
    preflight = await client.options(
        "/v1/me", headers={**origin, "Access-Control-Request-Method": "GET"}
    )
    assert "access-control-allow-origin" not in preflight.headers
    for path in ("/healthz", "/v1/me", "/openapi.json"):
        response = await client.get(path)
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
    page = await client.get("/", headers={"Authorization": ""})
    assert page.headers["content-security-policy"].startswith("default-src 'self'")


async def test_the_api_description_names_the_alert_schema(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json", headers={"Authorization": ""})).json()
    stream = spec["paths"][STREAM]["get"]
    assert "alert.schema.json" in stream["description"]
    data = stream["responses"]["200"]["content"]["text/event-stream"]["itemSchema"]
    assert data["properties"]["data"]["contentSchema"] == {"$ref": "#/components/schemas/Alert"}
    assert "alert_id" in spec["components"]["schemas"]["Alert"]["properties"]


async def test_clients_that_hang_up_are_forgotten(client: httpx.AsyncClient) -> None:
    async def clients() -> int:
        return int((await client.get("/healthz")).json()["fanout"]["clients"])

    async with client.stream("GET", STREAM) as response:
        assert response.status_code == 200
        lines = response.aiter_lines()  # kept: a closed iterator closes the response
        async with asyncio.timeout(5):
            while not (await anext(lines)).startswith(":"):
                pass  # until a heartbeat: the client follows the fan-out
        assert await clients() == 1
    async with asyncio.timeout(5):
        while await clients() != 0:
            await asyncio.sleep(0.05)
