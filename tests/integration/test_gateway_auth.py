"""Access to a real gateway: every route but the public ones refuses a missing, wrong,
malformed or revoked token with the one 401 (the WebSocket: close 4401 before any
message), a revoked token ends an open stream, and `tickwatch users` as a user runs it.

The routes come from the app itself, so an endpoint added later is checked too.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi.routing import iter_route_contexts
from redis.asyncio import Redis
from starlette.routing import Mount, WebSocketRoute
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from alerts.delivery.access import Users
from streams.dev.children import settings_env
from streams.gateway.app import create_app
from tests.integration.gateway_support import (
    Gateway,
    bearer,
    gateway_settings,
    running_gateway,
    sse_events,
)

PUBLIC = {"/", "/healthz", "/openapi.json", "/docs", "/docs/oauth2-redirect"}
PUBLIC_MOUNTS = {"/page"}
DENIED = {"detail": "missing or invalid token"}


@dataclass(frozen=True)
class Tokens:
    live: str
    revoked: str


@pytest.fixture(scope="module")
def gateway(redis_url: str) -> Iterator[Gateway]:
    with running_gateway(gateway_settings(redis_url)) as running:
        yield running


async def _users(gateway: Gateway) -> tuple[Redis, Users]:
    redis = Redis.from_url(gateway.settings.redis_url or "")
    return redis, Users(redis, gateway.settings.key_prefix)


@pytest.fixture(scope="module")
def tokens(gateway: Gateway) -> Tokens:
    async def made() -> Tokens:
        redis, users = await _users(gateway)
        try:
            live, revoked = await users.add("alice"), await users.add("mallory")
            assert await users.revoke("mallory")
            return Tokens(live, revoked)
        finally:
            await redis.aclose()

    return asyncio.run(made())


@pytest.fixture
async def client(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as c:
        yield c


@dataclass(frozen=True)
class Guarded:
    method: str  # "WS" for a WebSocket
    path: str


@pytest.fixture(scope="module")
def routes(gateway: Gateway) -> list[Guarded]:
    """Every route of the app but the public ones, path parameters filled in."""
    found = []
    for context in iter_route_contexts(create_app(gateway.settings).routes):
        route = context.original_route
        if isinstance(route, Mount):
            assert route.path in PUBLIC_MOUNTS, f"a mount nobody checks: {route.path}"
            continue
        path = re.sub(r"\{[^}]+\}", "BIDU", context.path or "")
        if path in PUBLIC:
            continue
        if isinstance(route, WebSocketRoute) or context.methods is None:
            found.append(Guarded("WS", path))
        else:
            found += [Guarded(m, path) for m in sorted(context.methods) if m != "HEAD"]
    return found


def bad_credentials(tokens: Tokens) -> dict[str, dict[str, str]]:
    return {
        "no header": {},
        "a wrong token": bearer("tw_" + "A" * 43),
        "another scheme": {"Authorization": f"Basic {tokens.live}"},
        "no token": {"Authorization": "Bearer"},
        "two tokens": {"Authorization": f"Bearer {tokens.live} {tokens.live}"},
        "a token with a space before": {"Authorization": f"Bearer  {tokens.live}"},
        "the token alone": {"Authorization": tokens.live},
        "a revoked token": bearer(tokens.revoked),
    }


def test_the_check_covers_every_endpoint(routes: list[Guarded]) -> None:
    found = {(r.method, r.path) for r in routes}
    expected = {
        ("GET", "/v1/alerts/stream"),
        ("GET", "/v1/alerts"),
        ("WS", "/v1/alerts/ws"),
        ("GET", "/v1/me"),
        ("GET", "/v1/subscriptions"),
        ("PUT", "/v1/subscriptions/BIDU"),
        ("DELETE", "/v1/subscriptions/BIDU"),
        ("GET", "/v1/bars/BIDU"),
    }
    assert expected <= found


async def test_every_route_refuses_a_bad_token_with_the_one_401(
    routes: list[Guarded], tokens: Tokens, client: httpx.AsyncClient
) -> None:
    http_routes = [r for r in routes if r.method != "WS"]
    # An unknown path is refused the same: nothing says which paths exist.
    http_routes += [Guarded("GET", "/v1/no-such-thing"), Guarded("POST", "/v1/alerts")]
    for route in http_routes:
        for why, headers in bad_credentials(tokens).items():
            # Bad parameters and a body must not be judged before the token.
            response = await client.request(
                route.method, route.path, headers=headers, params={"kind": "bogus"},
                json={"kinds": ["bogus"]} if route.method == "PUT" else None,
            )  # fmt: skip
            where = (route, why, response.text)
            assert response.status_code == 401, where
            assert response.json() == DENIED, where
            assert response.headers["www-authenticate"] == "Bearer", where


async def test_every_websocket_closes_4401_before_any_message(
    gateway: Gateway, routes: list[Guarded], tokens: Tokens
) -> None:
    sockets = [r for r in routes if r.method == "WS"]
    assert sockets
    for route in sockets:
        for why, headers in bad_credentials(tokens).items():
            async with (
                asyncio.timeout(5),
                connect(
                    gateway.ws_url(route.path + "?after=0"), additional_headers=headers
                ) as socket,
            ):
                with pytest.raises(ConnectionClosed) as closed:
                    message = await socket.recv()
                    pytest.fail(f"{route.path} with {why} sent {message!r}")
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401, why


async def test_a_live_token_passes_every_gate(
    gateway: Gateway, routes: list[Guarded], tokens: Tokens, client: httpx.AsyncClient
) -> None:
    """The refusals above are the gate's, not every request failing."""
    headers = bearer(tokens.live)
    for route in routes:
        if route.method == "WS":
            async with connect(gateway.ws_url(route.path), additional_headers=headers) as socket:
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(socket.recv(), 0.3)  # open, and quiet
            continue
        body = {} if route.method == "PUT" else None
        async with client.stream(route.method, route.path, headers=headers, json=body) as got:
            assert got.status_code in (200, 204, 404), (route, got.status_code)
            if got.status_code == 404:  # nothing saved or no bars: said by the route
                assert "BIDU" in (await got.aread()).decode()
    for path in ("/healthz", "/openapi.json", "/docs", "/", "/page/app.js"):
        assert (await client.get(path)).status_code == 200, path


async def test_a_revoked_token_ends_its_open_streams(
    gateway: Gateway, client: httpx.AsyncClient
) -> None:
    redis, users = await _users(gateway)
    try:
        token = await users.add("carol")

        async def revoke() -> None:
            assert await users.revoke("carol")

        read = await sse_events(
            client, "/v1/alerts/stream", lambda events: False, bearer(token), on_open=revoke,
            timeout_s=5 * gateway.settings.gateway_heartbeat_s + 2,
        )  # fmt: skip
        assert [e.event for e in read.events] == ["message"]  # the retry, then the end
        token = await users.add("carol")
        url = gateway.ws_url("/v1/alerts/ws")
        async with asyncio.timeout(5), connect(url, additional_headers=bearer(token)) as socket:
            assert await users.revoke("carol")
            with pytest.raises(ConnectionClosed) as closed:
                await socket.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    finally:
        await redis.aclose()


def tickwatch_users(gateway: Gateway, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", "users", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **settings_env(gateway.settings)},
    )


async def test_tokens_from_the_users_command(gateway: Gateway, client: httpx.AsyncClient) -> None:
    added = tickwatch_users(gateway, "add", "dave")
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip().splitlines()[-1]
    assert "shown only now" in added.stderr and token not in added.stderr
    me = await client.get("/v1/me", headers=bearer(token))
    assert me.json() == {"user": "dave"}
    assert "dave" in tickwatch_users(gateway, "list").stdout.split()
    again = tickwatch_users(gateway, "add", "dave")
    assert again.returncode == 2 and again.stderr.count("\n") == 1 and "exists" in again.stderr
    rotated = tickwatch_users(gateway, "rotate", "dave")
    assert rotated.returncode == 0, rotated.stderr
    old, token = token, rotated.stdout.strip().splitlines()[-1]
    assert (await client.get("/v1/me", headers=bearer(old))).status_code == 401
    assert (await client.get("/v1/me", headers=bearer(token))).status_code == 200
    revoked = tickwatch_users(gateway, "revoke", "dave")
    assert revoked.returncode == 0, revoked.stderr
    refused = await client.get("/v1/me", headers=bearer(token))
    assert refused.status_code == 401 and refused.json() == DENIED
