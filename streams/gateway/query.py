"""What a client asks for in the query string: filters, a saved subscription, a position."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request
from pydantic import ValidationError

from alerts.delivery.access import Subscriptions
from alerts.delivery.stream import valid_position
from schemas.errors import describe
from schemas.gateway import KINDS, STAGES, Filters
from streams.gateway.auth import current_user


class QueryError(ValueError):
    """A query a client sent cannot be served; the message is its one-line reason."""


def _values(given: Sequence[str]) -> list[str]:
    # Repeatable and comma-separated: ?kind=a&kind=b and ?kind=a,b ask the same.
    return [part.strip() for value in given for part in value.split(",") if part.strip()]


def filters_from(
    instrument: Sequence[str], kind: Sequence[str], rule: Sequence[str], stage: Sequence[str]
) -> Filters:
    """Filters from the query's values; QueryError naming the first bad one."""
    try:
        return Filters(
            instruments=_values(instrument),
            kinds=_values(kind),
            rules=_values(rule),
            stages=_values(stage),  # type: ignore[arg-type]  # checked by the model
        )
    except ValidationError as error:
        raise QueryError(describe(error)) from None


def position_from(name: str, value: str | None) -> str | None:
    """A position from the query or a header; QueryError when it is not one."""
    if value is not None and not valid_position(value):
        raise QueryError(f"{name}: not a stream position (ms or ms-seq): {value[:40]!r}")
    return value


async def chosen_filters(
    subscriptions: Subscriptions,
    user: str,
    subscription: str | None,
    instrument: Sequence[str],
    kind: Sequence[str],
    rule: Sequence[str],
    stage: Sequence[str],
) -> Filters:
    """The filters of the query, or of the user's saved subscription (not both)."""
    if subscription is None:
        return filters_from(instrument, kind, rule, stage)
    if instrument or kind or rule or stage:
        raise QueryError("subscription: give a subscription or filters, not both")
    saved = await subscriptions.get(user, subscription)
    if saved is None:
        raise LookupError(f"no subscription named {subscription!r}")
    return saved.filters


def _listed(text: str) -> str:
    return f"Repeatable, or comma-separated. {text}"


async def alert_filters(
    request: Request,
    user: Annotated[str, Depends(current_user)],
    instrument: Annotated[list[str], Query(description=_listed("Instrument symbols."))] = [],  # noqa: B006
    kind: Annotated[list[str], Query(description=_listed(", ".join(KINDS) + "."))] = [],  # noqa: B006
    rule: Annotated[list[str], Query(description=_listed("Rule names."))] = [],  # noqa: B006
    stage: Annotated[list[str], Query(description=_listed(", ".join(STAGES) + "."))] = [],  # noqa: B006
    subscription: Annotated[
        str | None, Query(description="A saved subscription's name, instead of filters.")
    ] = None,
) -> Filters:
    """The filters of an HTTP request (a FastAPI dependency): 422 or 404 with one line."""
    try:
        return await chosen_filters(
            request.app.state.subscriptions, user, subscription, instrument, kind, rule, stage
        )
    except QueryError as error:
        raise HTTPException(422, detail=str(error)) from None
    except LookupError as error:
        raise HTTPException(404, detail=str(error)) from None
