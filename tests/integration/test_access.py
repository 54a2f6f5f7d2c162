"""Users, tokens and saved filters in a real Redis: hashed tokens, rotate, revoke, per user."""

from __future__ import annotations

import re

import pytest
from redis.asyncio import Redis

from alerts.delivery.access import (
    MAX_SUBSCRIPTIONS,
    AccessError,
    Subscriptions,
    Users,
    token_digest,
)
from schemas.errors import TickwatchError
from schemas.gateway import Filters, Subscription


@pytest.fixture
def users(redis: Redis, key_prefix: str) -> Users:
    return Users(redis, key_prefix)


@pytest.fixture
def subscriptions(redis: Redis, key_prefix: str) -> Subscriptions:
    return Subscriptions(redis, key_prefix)


async def everything_stored(redis: Redis, prefix: str) -> bytes:
    """Every key under the prefix and every value it holds, as one blob."""
    parts = []
    async for key in redis.scan_iter(match=f"{prefix}:*"):
        parts.append(key)
        kind = (await redis.type(key)).decode()
        assert kind == "hash", f"{key!r} is a {kind}"
        for field, value in (await redis.hgetall(key)).items():
            parts += [field, value]
    return b"\n".join(parts)


def closes(token: str) -> list[str]:
    """Near misses of a token: a wrong character, one cut off, one added, no prefix."""
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    return [flipped, token[:-1], token + "x", token.removeprefix("tw_"), "", "Bearer " + token]


async def test_a_new_user_gets_a_token_that_names_them(users: Users) -> None:
    token = await users.add("alice@desk-1")
    assert re.fullmatch(r"tw_[A-Za-z0-9_-]{43}", token)
    assert await users.who(token) == "alice@desk-1"
    assert await users.names() == ["alice@desk-1"]
    for wrong in closes(token):
        assert await users.who(wrong) is None


async def test_tokens_are_stored_only_hashed(users: Users, redis: Redis, key_prefix: str) -> None:
    alice, bob = await users.add("alice"), await users.add("bob")
    bob = await users.rotate("bob")

    stored = await everything_stored(redis, key_prefix)
    for token in (alice, bob):
        assert token.encode() not in stored
        assert token.removeprefix("tw_").encode() not in stored
        assert token_digest(token).encode() in stored


async def test_a_taken_name_is_refused_until_revoked(users: Users) -> None:
    first = await users.add("alice")
    with pytest.raises(AccessError, match="user 'alice' exists: revoke it first"):
        await users.add("alice")
    assert await users.who(first) == "alice"

    assert await users.revoke("alice")
    second = await users.add("alice")
    assert second != first
    assert await users.who(first) is None
    assert await users.who(second) == "alice"


async def test_revoke_ends_the_token_and_the_user(
    users: Users, subscriptions: Subscriptions
) -> None:
    alice, bob = await users.add("alice"), await users.add("bob")
    await subscriptions.save("alice", Subscription(name="tech", filters=Filters()))

    assert await users.revoke("alice") is True
    assert await users.who(alice) is None
    assert await users.who(bob) == "bob"
    assert await users.names() == ["bob"]
    assert await subscriptions.all("alice") == []
    assert await users.revoke("alice") is False


async def test_rotate_invalidates_the_old_token_at_once(users: Users) -> None:
    old = await users.add("alice")
    new = await users.rotate("alice")
    assert new != old
    assert await users.who(old) is None
    assert await users.who(new) == "alice"
    assert await users.names() == ["alice"]


async def test_rotating_or_revoking_nobody_says_so(users: Users) -> None:
    with pytest.raises(AccessError, match="no user 'carol'"):
        await users.rotate("carol")
    assert await users.revoke("carol") is False
    assert await users.names() == []


@pytest.mark.parametrize("name", ["", "a b", "x/y", "n" * 65, "{gateway}", "a:b"])
async def test_bad_user_names_are_refused_in_one_line(users: Users, name: str) -> None:
    with pytest.raises(AccessError) as refused:
        await users.add(name)
    assert isinstance(refused.value, TickwatchError)
    assert "\n" not in str(refused.value)
    assert await users.names() == []


def subscription(name: str, *instruments: str) -> Subscription:
    return Subscription(name=name, filters=Filters(instruments=list(instruments)))


async def test_subscriptions_round_trip_and_are_per_user(subscriptions: Subscriptions) -> None:
    tech = Subscription(
        name="tech.close",
        filters=Filters(instruments=["HSTECH", "BIDU"], kinds=["record_high"], stages=["close"]),
    )
    await subscriptions.save("alice", tech)
    await subscriptions.save("alice", subscription("all"))
    await subscriptions.save("bob", subscription("tech.close", "9988.HK"))

    assert await subscriptions.get("alice", "tech.close") == tech
    assert await subscriptions.all("alice") == [subscription("all"), tech]
    assert await subscriptions.all("bob") == [subscription("tech.close", "9988.HK")]
    assert await subscriptions.get("carol", "tech.close") is None
    assert await subscriptions.get("alice", "missing") is None


async def test_saving_again_replaces(subscriptions: Subscriptions) -> None:
    await subscriptions.save("alice", subscription("mine", "HSTECH"))
    await subscriptions.save("alice", subscription("mine", "BIDU"))
    assert await subscriptions.all("alice") == [subscription("mine", "BIDU")]


async def test_delete_says_whether_there_was_one(subscriptions: Subscriptions) -> None:
    await subscriptions.save("alice", subscription("mine", "HSTECH"))
    await subscriptions.save("bob", subscription("mine", "HSTECH"))
    assert await subscriptions.delete("alice", "mine") is True
    assert await subscriptions.delete("alice", "mine") is False
    assert await subscriptions.all("alice") == []
    assert await subscriptions.all("bob") == [subscription("mine", "HSTECH")]


async def test_at_most_so_many_per_user(subscriptions: Subscriptions) -> None:
    for n in range(MAX_SUBSCRIPTIONS):
        await subscriptions.save("alice", subscription(f"s{n}"))
    with pytest.raises(AccessError, match=f"at most {MAX_SUBSCRIPTIONS} subscriptions"):
        await subscriptions.save("alice", subscription("one-more"))

    # Replacing one is not one more; another user has room of their own.
    await subscriptions.save("alice", subscription("s7", "HSTECH"))
    await subscriptions.save("bob", subscription("one-more"))
    assert len(await subscriptions.all("alice")) == MAX_SUBSCRIPTIONS
    assert await subscriptions.get("alice", "s7") == subscription("s7", "HSTECH")
    assert await subscriptions.get("alice", "one-more") is None


async def test_a_subscription_of_a_bad_user_name_is_refused(
    subscriptions: Subscriptions,
) -> None:
    with pytest.raises(AccessError):
        await subscriptions.all("a:b")
