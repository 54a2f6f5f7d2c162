"""The caller's own things, under /v1: who they are and their saved filters (subscriptions)."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response
from pydantic import BaseModel

from alerts.delivery.access import AccessError, Subscriptions
from schemas.gateway import Filters, Subscription
from streams.gateway.auth import current_user

User = Annotated[str, Depends(current_user)]
Name = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]


class Me(BaseModel):
    user: str


def account_routes() -> APIRouter:
    router = APIRouter(prefix="/v1")
    router.add_api_route("/me", me, methods=["GET"], response_model=Me, tags=["account"])
    tags: list[str | Enum] = ["subscriptions"]
    router.add_api_route(
        "/subscriptions",
        list_subscriptions,
        methods=["GET"],
        response_model=list[Subscription],
        tags=tags,
    )
    router.add_api_route(
        "/subscriptions/{name}",
        save_subscription,
        methods=["PUT"],
        response_model=Subscription,
        tags=tags,
        responses={409: {"description": "The user keeps the most subscriptions already."}},
    )
    router.add_api_route(
        "/subscriptions/{name}",
        delete_subscription,
        methods=["DELETE"],
        status_code=204,
        tags=tags,
        responses={404: {"description": "No subscription of that name."}},
    )
    return router


def _subscriptions(request: Request) -> Subscriptions:
    found: Subscriptions = request.app.state.subscriptions
    return found


async def me(user: User) -> Me:
    """The user the token belongs to."""
    return Me(user=user)


async def list_subscriptions(request: Request, user: User) -> list[Subscription]:
    """The user's saved filters, by name; use one as `subscription=NAME` on the stream."""
    return await _subscriptions(request).all(user)


async def save_subscription(
    request: Request, user: User, name: Name, filters: Filters
) -> Subscription:
    """Save filters under a name (create or replace)."""
    subscription = Subscription(name=name, filters=filters)
    try:
        await _subscriptions(request).save(user, subscription)
    except AccessError as error:
        raise HTTPException(409, detail=str(error)) from None
    return subscription


async def delete_subscription(request: Request, user: User, name: Name) -> Response:
    """Forget a saved subscription."""
    if not await _subscriptions(request).delete(user, name):
        raise HTTPException(404, detail=f"no subscription named {name!r}")
    return Response(status_code=204)
