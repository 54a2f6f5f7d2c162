"""`tickwatch users`: a gateway user's token made, replaced or revoked; the users listed."""

from __future__ import annotations

import asyncio
import sys

from redis.asyncio import Redis

from alerts.delivery.access import AccessError, Users
from schemas.settings import Settings
from streams.redis_ready import DEFAULT_REDIS_URL, check_redis

ACTIONS = ("add", "rotate", "revoke", "list")


def run_users(settings: Settings, action: str, name: str | None) -> int:
    """Do it and say it; a token goes alone on stdout's last line, so scripts can take it."""
    url = settings.redis_url or DEFAULT_REDIS_URL
    check_redis(url)
    return asyncio.run(_run(url, settings.key_prefix, action, name))


async def _run(url: str, prefix: str, action: str, name: str | None) -> int:
    redis = Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
    users = Users(redis, prefix)
    try:
        if action == "list":
            for user in await users.names():
                print(user)
            return 0
        assert name is not None  # the parser asks for one
        if action == "revoke":
            if not await users.revoke(name):
                raise AccessError(f"no user {name!r}")
            print(f"revoked {name}: its token no longer works")
            return 0
        token = await (users.add(name) if action == "add" else users.rotate(name))
        print(
            f"the token of {name} follows; it is shown only now (it is stored hashed)",
            file=sys.stderr,
        )
        print(token)
        return 0
    finally:
        await redis.aclose()
