"""What the core asks to send to Kafka: alerts, dead letters, forwards to the index agent."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Record:
    topic: str
    key: bytes
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()
