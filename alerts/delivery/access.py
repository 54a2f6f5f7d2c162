"""Who may read the gateway's alerts: users, their bearer tokens, their saved filters, in Redis."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from datetime import UTC, datetime

from redis.asyncio import Redis

from schemas.errors import TickwatchError
from schemas.gateway import Filters, Subscription

MAX_SUBSCRIPTIONS = 100
TOKEN_PREFIX = "tw_"

_USER_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")

# A user's record and the token index change together, so no moment exists where an
# old token still works after a rotate or a revoke, or a new one does not. cjson reads
# the record's digest to drop its index entry.
#
# KEYS: users, tokens, the user's subscriptions. ARGV: action, name, digest, record.
_SET_TOKEN = """
local action, name = ARGV[1], ARGV[2]
local record = redis.call('HGET', KEYS[1], name)
if action == 'add' then
  if record then return 0 end
else
  if not record then return 0 end
  redis.call('HDEL', KEYS[2], cjson.decode(record)['token_sha256'])
end
if action == 'revoke' then
  redis.call('HDEL', KEYS[1], name)
  redis.call('DEL', KEYS[3])
else
  redis.call('HSET', KEYS[1], name, ARGV[4])
  redis.call('HSET', KEYS[2], ARGV[3], name)
end
return 1
"""

# KEYS: the user's subscriptions. ARGV: name, filters JSON, the most a user may keep.
_SAVE = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1
    or redis.call('HLEN', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  return 1
end
return 0
"""


class AccessError(TickwatchError):
    """A user or subscription cannot be changed as asked; the message says why."""


def token_digest(token: str) -> str:
    """The only form of a token Redis holds. sha256, not a slow hash: a token is 256
    random bits, so it cannot be guessed from its digest, and every request checks one."""
    return hashlib.sha256(token.encode()).hexdigest()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _checked(name: str) -> str:
    if not _USER_NAME.match(name):
        raise AccessError(f"user name {name!r}: 1 to 64 of A-Z a-z 0-9 _ . @ -")
    return name


def _keys(prefix: str) -> tuple[str, str]:
    base = f"{prefix}:{{gateway}}"
    return f"{base}:users", f"{base}:tokens"


def _subscriptions_key(prefix: str, user: str) -> str:
    return f"{prefix}:{{gateway}}:subs:{user}"


class Users:
    """Users and their bearer tokens; a token is shown once, when made, and stored hashed."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix
        self._users, self._tokens = _keys(prefix)
        self._set_token = redis.register_script(_SET_TOKEN)

    async def add(self, name: str) -> str:
        """A new user's token. AccessError if the name is taken (revoke it first)."""
        token = await self._change("add", _checked(name))
        if token is None:
            raise AccessError(f"user {name!r} exists: revoke it first, or rotate its token")
        return token

    async def rotate(self, name: str) -> str:
        """A new token for the user; the old one stops working at once."""
        token = await self._change("rotate", _checked(name))
        if token is None:
            raise AccessError(f"no user {name!r}")
        return token

    async def revoke(self, name: str) -> bool:
        """Remove the user, its token and its subscriptions; False if there was none."""
        return await self._change("revoke", _checked(name)) is not None

    async def names(self) -> list[str]:
        """Every user's name, sorted."""
        return sorted(_text(name) for name in await self._redis.hkeys(self._users))

    async def who(self, token: str) -> str | None:
        """The user holding this token; None for an unknown or revoked one. The lookup is
        by digest, so its timing says nothing about the token."""
        name = await self._redis.hget(self._tokens, token_digest(token))
        return None if name is None else _text(name)

    async def _change(self, action: str, name: str) -> str | None:
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        digest = token_digest(token)
        record = json.dumps({"token_sha256": digest, "created": datetime.now(UTC).isoformat()})
        keys = [self._users, self._tokens, _subscriptions_key(self._prefix, name)]
        done = await self._set_token(keys=keys, args=[action, name, digest, record])
        return token if int(done) else None


class Subscriptions:
    """Each user's saved filters, by name; at most MAX_SUBSCRIPTIONS per user."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix
        self._save = redis.register_script(_SAVE)

    async def save(self, user: str, subscription: Subscription) -> None:
        """Create or replace it. AccessError when the user already keeps the most."""
        key = self._key(user)
        args: list[str | int] = [
            subscription.name,
            subscription.filters.model_dump_json(),
            MAX_SUBSCRIPTIONS,
        ]
        if not int(await self._save(keys=[key], args=args)):
            raise AccessError(
                f"at most {MAX_SUBSCRIPTIONS} subscriptions per user: delete one first"
            )

    async def get(self, user: str, name: str) -> Subscription | None:
        """The user's subscription of that name, or None."""
        raw = await self._redis.hget(self._key(user), name)
        if raw is None:
            return None
        return Subscription(name=name, filters=Filters.model_validate_json(raw))

    async def all(self, user: str) -> list[Subscription]:
        """The user's subscriptions, by name."""
        raw = await self._redis.hgetall(self._key(user))
        found = [
            Subscription(name=_text(name), filters=Filters.model_validate_json(filters))
            for name, filters in raw.items()
        ]
        return sorted(found, key=lambda subscription: subscription.name)

    async def delete(self, user: str, name: str) -> bool:
        """False if the user had none of that name."""
        return bool(await self._redis.hdel(self._key(user), name))

    def _key(self, user: str) -> str:
        return _subscriptions_key(self._prefix, _checked(user))
