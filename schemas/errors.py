"""Typed errors of the schema layer: what a person needs to fix their input."""

from __future__ import annotations

from pydantic import ValidationError


class TickwatchError(Exception):
    """Base of every error tickwatch reports to a user in one line."""


class ConfigError(TickwatchError):
    """A setting, or a configuration file, is wrong; the message names it."""


class InputError(TickwatchError):
    """A file a user gave us cannot be read; the message names file and line."""


def describe(error: ValidationError, prefix: str = "") -> str:
    """One line naming every field pydantic rejected and why."""
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "value"
        given = item.get("input")
        shown = "" if isinstance(given, dict) else f" (got {given!r})"
        parts.append(f"{prefix}{where}: {item['msg']}{shown}")
    return "; ".join(parts)
