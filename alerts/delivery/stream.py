"""The gateway's receiver: published alerts kept in a bounded Redis Stream, read by position."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from redis import Redis as SyncRedis
from redis.asyncio import Redis

from schemas.alerts import Alert

# One call applies a whole polled batch, so a SIGKILL before it changes nothing and a
# SIGKILL after it loses nothing: the consumer position is stored with the output.
# A message below its partition's stored next offset was applied before (old); an alert
# whose alert_id is held already came at another offset (duplicate) and only moves the
# position. The seen set's score is the ms of the entry's stream id, so trimming it
# "with the stream" is one range removal below the oldest entry still kept. Trims are
# approximate (`~`, whole stream nodes only: cheap), so up to a node's 100 entries more
# than the bounds may stay.
#
# KEYS: stream, positions, seen. ARGV: max_len, max_age_ms, then per message:
# partition, offset, alert_id, instrument, kind, rule, stage, alert bytes.
_APPEND = """
local max_len = ARGV[1]
local max_age_ms = tonumber(ARGV[2])
local added, duplicates, old = 0, 0, 0
local next_offsets, moved = {}, {}
for base = 3, #ARGV, 8 do
  local partition = ARGV[base]
  local offset = tonumber(ARGV[base + 1])
  local next_offset = next_offsets[partition]
  if next_offset == nil then
    next_offset = tonumber(redis.call('HGET', KEYS[2], partition) or '0')
    next_offsets[partition] = next_offset
  end
  if offset < next_offset then
    old = old + 1
  else
    next_offsets[partition] = offset + 1
    moved[partition] = true
    local alert_id = ARGV[base + 2]
    if redis.call('ZSCORE', KEYS[3], alert_id) then
      duplicates = duplicates + 1
    else
      local id = redis.call('XADD', KEYS[1], '*',
        'alert', ARGV[base + 7], 'alert_id', alert_id, 'instrument', ARGV[base + 3],
        'kind', ARGV[base + 4], 'rule', ARGV[base + 5], 'stage', ARGV[base + 6])
      redis.call('ZADD', KEYS[3], string.match(id, '^(%d+)'), alert_id)
      added = added + 1
    end
  end
end
for partition, _ in pairs(moved) do
  redis.call('HSET', KEYS[2], partition, string.format('%d', next_offsets[partition]))
end
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('XTRIM', KEYS[1], 'MAXLEN', '~', max_len)
redis.call('XTRIM', KEYS[1], 'MINID', '~', string.format('%d', math.max(0, now_ms - max_age_ms)))
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1]
if first then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf',
    '(' .. string.match(first[1], '^(%d+)'))
else
  redis.call('DEL', KEYS[3])
end
return {added, duplicates, old}
"""

_POSITION = re.compile(r"^(\d{1,20})(?:-(\d{1,20}))?$")
_MAX_ID_PART = 2**64 - 1


@dataclass(frozen=True)
class Incoming:
    """One message of the alerts topic, where Kafka put it."""

    partition: int
    offset: int
    value: bytes


@dataclass(frozen=True)
class Appended:
    """What one append did: `old` were at or below the stored position."""

    added: int
    duplicates: int
    old: int


@dataclass(frozen=True)
class Entry:
    """One kept alert: its stream position, what filters look at, and its bytes as published."""

    position: str
    alert_id: str
    instrument: str
    kind: str
    rule: str
    stage: str
    alert: bytes


def valid_position(text: str) -> bool:
    """True for a stream id a client may send (`ms` or `ms-seq`, each part a uint64)."""
    found = _POSITION.match(text)
    if found is None:
        return False
    return all(int(part) <= _MAX_ID_PART for part in found.groups("0"))


def position_key(position: str) -> tuple[int, int]:
    """A valid position as (ms, seq), ordered as Redis orders stream ids."""
    found = _POSITION.match(position)
    if found is None:
        raise ValueError(f"not a stream position: {position!r}")
    return int(found.group(1)), int(found.group(2) or 0)


def stream_keys(prefix: str) -> tuple[str, str, str]:
    """The stream, positions and seen keys; one hash tag, so the script is Cluster safe."""
    base = f"{prefix}:{{gateway}}"
    return f"{base}:alerts", f"{base}:positions", f"{base}:seen"


def _append_args(
    items: Sequence[tuple[Incoming, Alert]], max_len: int, max_age_ms: int
) -> list[bytes | str | int]:
    args: list[bytes | str | int] = [max_len, max_age_ms]
    for incoming, alert in items:
        args += [incoming.partition, incoming.offset, alert.alert_id, alert.instrument]
        args += [alert.kind, alert.rule, alert.stage, incoming.value]
    return args


def _appended(result: object) -> Appended:
    added, duplicates, old = (int(n) for n in result)  # type: ignore[attr-defined]
    return Appended(added=added, duplicates=duplicates, old=old)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


_Rows = Sequence[tuple[bytes | str | None, dict[bytes | str, bytes | str] | None]] | None


def _entries(rows: _Rows) -> list[Entry]:
    # Works with clients made with or without decode_responses; the alert stays bytes.
    found = []
    for position, fields in rows or ():
        if position is None or fields is None:
            continue  # Redis gives no such row for XRANGE or XREAD; the client's type allows it
        named = {_text(key): value for key, value in fields.items()}
        alert = named["alert"]
        found.append(
            Entry(
                position=_text(position),
                alert_id=_text(named["alert_id"]),
                instrument=_text(named["instrument"]),
                kind=_text(named["kind"]),
                rule=_text(named["rule"]),
                stage=_text(named["stage"]),
                alert=alert if isinstance(alert, bytes) else alert.encode(),
            )
        )
    return found


def _positions(raw: dict[bytes | str, bytes | str]) -> dict[int, int]:
    return {int(partition): int(offset) for partition, offset in raw.items()}


class AlertStream:
    """The gateway's alerts in Redis: appended by the ingest, read by the fan-out and history."""

    def __init__(self, redis: Redis, prefix: str, max_len: int, max_age_s: float) -> None:
        self._redis = redis
        self._keys = stream_keys(prefix)
        self._max_len = max_len
        self._max_age_ms = int(max_age_s * 1000)
        # register_script loads the script again by itself after a Redis restart or flush.
        self._append = redis.register_script(_APPEND)

    @property
    def stream_key(self) -> str:
        return self._keys[0]

    async def append(self, items: Sequence[tuple[Incoming, Alert]]) -> Appended:
        """Append a polled batch in one script call; re-appending anything is a no-op."""
        if not items:
            return Appended(0, 0, 0)
        args = _append_args(items, self._max_len, self._max_age_ms)
        return _appended(await self._append(keys=list(self._keys), args=args))

    async def positions(self) -> dict[int, int]:
        """Partition -> the next offset to read (absent: from the beginning)."""
        return _positions(await self._redis.hgetall(self._keys[1]))

    async def after(self, position: str, count: int) -> list[Entry]:
        """Up to `count` entries strictly after `position`, oldest first ("0": from the start)."""
        if position_key(position) == (_MAX_ID_PART, _MAX_ID_PART):
            return []
        return _entries(await self._redis.xrange(self.stream_key, f"({position}", "+", count))

    async def before(self, position: str | None, count: int) -> list[Entry]:
        """Up to `count` entries strictly before `position`, newest first (None: the newest)."""
        if position is None:
            high = "+"
        elif position_key(position) == (0, 0):
            return []
        else:
            high = f"({position}"
        return _entries(await self._redis.xrevrange(self.stream_key, high, "-", count))

    async def first_position(self) -> str | None:
        """The oldest kept entry's position; None when the stream is empty."""
        found = _entries(await self._redis.xrange(self.stream_key, "-", "+", 1))
        return found[0].position if found else None

    async def last_position(self) -> str | None:
        """The newest entry's position; None when the stream is empty."""
        found = _entries(await self._redis.xrevrange(self.stream_key, "+", "-", 1))
        return found[0].position if found else None

    async def wait_after(self, position: str, block_ms: int, count: int) -> list[Entry]:
        """Entries strictly after `position`, waiting up to `block_ms` for the first one;
        [] on timeout. The client's socket timeout must exceed `block_ms`."""
        found = await self._redis.xread({self.stream_key: position}, count, block_ms)
        if not found:
            return []
        # The stream's rows, as [[key, rows]] (RESP2, the default) or {key: rows}.
        rows = found[0][1] if isinstance(found, list) else next(iter(found.values()))
        return _entries(cast(_Rows, rows))


class SyncAlertStream:
    """The append side for the ingest thread: the same script and keys on a blocking client."""

    def __init__(self, redis: SyncRedis, prefix: str, max_len: int, max_age_s: float) -> None:
        self._redis = redis
        self._keys = stream_keys(prefix)
        self._max_len = max_len
        self._max_age_ms = int(max_age_s * 1000)
        self._append = redis.register_script(_APPEND)

    def append(self, items: Sequence[tuple[Incoming, Alert]]) -> Appended:
        """As AlertStream.append."""
        if not items:
            return Appended(0, 0, 0)
        args = _append_args(items, self._max_len, self._max_age_ms)
        return _appended(self._append(keys=list(self._keys), args=args))

    def positions(self) -> dict[int, int]:
        """As AlertStream.positions."""
        return _positions(self._redis.hgetall(self._keys[1]))
