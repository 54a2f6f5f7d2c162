"""Minute bars in Redis: written by the gateway's bars thread, read for the page's chart.

    {P}:{gateway}:bars:{instrument}:{session}   Hash minute "HH:MM" -> "open,high,low,close"
    {P}:{gateway}:barsessions:{instrument}      Hash session -> {"timezone", "start"}

The second key says which sessions have bars (the newest is the chart's default, found
without scanning keys) and how to read their minutes. Both expire BARS_TTL_S after their
last write. Every key carries the one {gateway} hash tag, so one script may write them
all, in Redis Cluster too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date

from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from alerts.core.minute_bars import BarKey, Ohlc, SessionClock, in_session_order
from schemas.gateway import Bar, Bars

BARS_TTL_S = 3 * 24 * 3600
#: Sessions listed per instrument; the bars of older ones are still there until they expire,
#: but the chart only ever asks for recent ones.
SESSIONS_KEPT = 64

# One run per poll: merge each minute with what Redis holds (its open stays, its high and
# low widen, its close is the new one), so that ticks spread over several polls make the
# bar one poll would, and a replay of ticks already applied changes nothing in the end.
# The values are compared as numbers and kept as the strings given (Lua's tostring would
# round them). KEYS: per instrument and session, its bars and its sessions hash. ARGV:
# ttl, sessions kept, then per pair: session, its description, n, and n times minute,
# open, high, low, close.
_SCRIPT = """
local ttl, keep, pos = tonumber(ARGV[1]), tonumber(ARGV[2]), 3
for k = 1, #KEYS, 2 do
  local bars, sessions = KEYS[k], KEYS[k + 1]
  local session, about, n = ARGV[pos], ARGV[pos + 1], tonumber(ARGV[pos + 2])
  pos = pos + 3
  for _ = 1, n do
    local minute, o, h, l, c = ARGV[pos], ARGV[pos + 1], ARGV[pos + 2], ARGV[pos + 3], ARGV[pos + 4]
    pos = pos + 5
    local old = redis.call('HGET', bars, minute)
    if old then
      local oo, oh, ol = string.match(old, '^([^,]+),([^,]+),([^,]+),')
      if oo then
        o = oo
        if tonumber(oh) > tonumber(h) then h = oh end
        if tonumber(ol) < tonumber(l) then l = ol end
      end
    end
    redis.call('HSET', bars, minute, o .. ',' .. h .. ',' .. l .. ',' .. c)
  end
  redis.call('EXPIRE', bars, ttl)
  redis.call('HSET', sessions, session, about)
  if redis.call('HLEN', sessions) > keep then
    local days = redis.call('HKEYS', sessions)
    table.sort(days)
    for i = 1, #days - keep do redis.call('HDEL', sessions, days[i]) end
  end
  redis.call('EXPIRE', sessions, ttl)
end
return #KEYS / 2
"""


def clock_text(clock: SessionClock) -> str:
    return json.dumps({"timezone": clock.timezone, "start": clock.start})


def parse_clock(text: str | bytes) -> SessionClock:
    about = json.loads(text)
    return SessionClock(str(about["timezone"]), str(about["start"]))


def bars_key(prefix: str, instrument: str, session: date) -> str:
    return f"{prefix}:{{gateway}}:bars:{instrument}:{session.isoformat()}"


def sessions_key(prefix: str, instrument: str) -> str:
    return f"{prefix}:{{gateway}}:barsessions:{instrument}"


class BarWriter:
    """Writes a poll's bars in one script run (sync: the bars thread owns it)."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._prefix = prefix
        self._script = redis.register_script(_SCRIPT)

    def write(
        self, bars: Mapping[BarKey, Mapping[str, Ohlc]], clocks: Mapping[BarKey, SessionClock]
    ) -> int:
        """Merge the bars into Redis; the number of instrument sessions written."""
        if not bars:
            return 0
        keys: list[str] = []
        args: list[str | int] = [BARS_TTL_S, SESSIONS_KEPT]
        for key, minutes in bars.items():
            keys.append(bars_key(self._prefix, key.instrument, key.session))
            keys.append(sessions_key(self._prefix, key.instrument))
            args += [key.session.isoformat(), clock_text(clocks[key]), len(minutes)]
            for minute, bar in minutes.items():
                args += [minute, *bar.text().split(",")]
        return int(self._script(keys=keys, args=args))


async def read_bars(
    redis: AsyncRedis, prefix: str, instrument: str, session: date | None
) -> Bars | None:
    """The instrument's bars in that session (None: its newest session with bars), in
    time order; None when there are none."""
    listed = await redis.hgetall(sessions_key(prefix, instrument))
    clocks = {date.fromisoformat(_text(day)): parse_clock(about) for day, about in listed.items()}
    days = [session] if session is not None else sorted(clocks, reverse=True)
    for day in days:
        clock = clocks.get(day)
        if clock is None:
            continue
        stored = await redis.hgetall(bars_key(prefix, instrument, day))
        if not stored:
            continue
        minutes = {_text(minute): Ohlc.parse(_text(value)) for minute, value in stored.items()}
        bars = [
            Bar(minute=minute, open=bar.open, high=bar.high, low=bar.low, close=bar.close)
            for minute, bar in in_session_order(minutes, clock.start)
        ]
        return Bars(instrument=instrument, session=day, timezone=clock.timezone, bars=bars)
    return None


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
