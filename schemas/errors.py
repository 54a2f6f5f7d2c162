"""Typed errors of the schema layer: what a person needs to fix their input."""

from __future__ import annotations

from pydantic import ValidationError


class TickwatchError(Exception):
    """Base of every error tickwatch reports to a user in one line."""


class ConfigError(TickwatchError):
    """A setting, or a configuration file, is wrong; the message names it."""


class InputError(TickwatchError):
    """A file a user gave us cannot be read; the message names file and line."""


_SHOWN_INPUT_CHARS = 60


def describe(error: ValidationError, prefix: str = "") -> str:
    """One line naming every field pydantic rejected and why."""
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "value"
        why = item["msg"].removeprefix("Value error, ")
        parts.append(f"{prefix}{where}: {why}{_shown(item.get('input'))}")
    return "; ".join(parts)


def _shown(given: object) -> str:
    # A whole mapping or list would swamp the line; the location already points into it.
    if isinstance(given, dict | list | tuple | set | frozenset):
        return ""
    text = repr(given)
    if len(text) > _SHOWN_INPUT_CHARS:
        text = text[: _SHOWN_INPUT_CHARS - 3] + "..."
    return f" (got {text})"
