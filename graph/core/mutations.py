"""GraphQL core: mutation fields and their payloads."""

from __future__ import annotations

from typing import Awaitable, Callable, TypeVar

import strawberry

from app.core.errors import DomainError
from graph.core import UserError

R = TypeVar("R")


async def attempt(fn: Callable[[], Awaitable[R]]) -> tuple[R | None, list[UserError]]:
    try:
        return await fn(), []
    except DomainError as exc:
        return None, [UserError.of(e) for e in getattr(exc, "errors", None) or [exc]]


def user_errors_field():
    return strawberry.field(description="Expected failures; empty on success.")
