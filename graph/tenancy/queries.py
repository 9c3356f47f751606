"""GraphQL tenancy: query fields."""

from __future__ import annotations

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from app.core.errors import DomainError
from app.tenancy.access import Principal, Unit, resolve_unit
from app.tenancy.service import members_query, tokens_query
from graph.core import (
    After,
    Connection,
    First,
    ctx,
    paginate,
)
from graph.tenancy.inputs import unit_ref
from graph.tenancy.types import ApiToken, User
from models import tenancy as mt


async def scope_or_none(info: Info, p: Principal, scope: strawberry.ID | None) -> Unit | None:
    """The caller's scope, or a narrower unit it names; None when not visible."""
    try:
        return await resolve_unit(p, *(unit_ref(scope, "scope") or (None, None)))
    except DomainError:
        return None


async def principal_currency(p: Principal) -> str:
    return (await mt.Organization.get(id=p.org_id)).currency


@strawberry.field(description="The authenticated user.")
async def viewer(self, info: Info) -> User:
    return User.of(await mt.User.get(id=ctx(info).principal.user_id))


@strawberry.field(description="API tokens: for owners, those of every member inside their scope; your own otherwise.")
async def tokens(self, info: Info, first: First = 50, after: After = None) -> Connection[ApiToken]:
    return await paginate(tokens_query(ctx(info).principal), first, after, ApiToken.of)


@strawberry.field(description="Members inside your scope (owners), or yourself.")
async def users(self, info: Info, first: First = 50, after: After = None) -> Connection[User]:
    return await paginate(members_query(ctx(info).principal), first, after, User.of)


async def scope_unit(p: Principal, scope: str | None) -> Unit:
    try:
        return await resolve_unit(p, *(unit_ref(scope, "scope") or (None, None)))
    except DomainError:
        raise GraphQLError("unit not found", extensions={"code": "NOT_FOUND"}) from None
