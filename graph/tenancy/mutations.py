"""GraphQL tenancy: mutation fields and their payloads."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from app.tenancy import service as tenancy_service
from graph.core import ObjectId, UserError, ctx, require_id
from graph.core.mutations import attempt, user_errors_field
from graph.tenancy.inputs import MemberUpdateInput, OrganizationCreateInput, TokenCreateInput, unit_ref
from graph.tenancy.types import ApiToken, Center, Organization, User, Zone


@strawberry.type(description="Result of tokenCreate / organizationCreate: the secret is shown only here.")
class TokenCreatePayload:
    token: str | None = strawberry.field(description="The bearer token. Store it: it cannot be shown again.")
    api_token: ApiToken | None = strawberry.field(description="The token's record.")
    user: User | None = strawberry.field(description="The member it authenticates.")
    organization: Organization | None = strawberry.field(description="The organization (organizationCreate).")
    user_errors: list[UserError] = user_errors_field()


@strawberry.type(description="Result of tokenRevoke.")
class TokenRevokePayload:
    api_token: ApiToken | None = strawberry.field(description="The revoked token.")
    user_errors: list[UserError] = user_errors_field()


@strawberry.type(description="Result of zoneCreate.")
class ZonePayload:
    zone: Zone | None = strawberry.field(description="The new zone.")
    user_errors: list[UserError] = user_errors_field()


@strawberry.type(description="Result of centerCreate.")
class CenterPayload:
    center: Center | None = strawberry.field(description="The new center.")
    user_errors: list[UserError] = user_errors_field()


@strawberry.type(description="Result of memberUpdate.")
class MemberUpdatePayload:
    user: User | None = strawberry.field(description="The member as it is now.")
    user_errors: list[UserError] = user_errors_field()


@strawberry.mutation(description="Change a member's role, scope or export permission. Only an owner who could create "
                                 "the member both as it is and as it becomes (its scope inside the owner's; owners "
                                 "are organization-wide); the organization keeps an owner; every change is recorded "
                                 "(User.changes). Live subscriptions of the member end and must be reopened.")
async def member_update(self, info: Info, id: ObjectId,
                        input: Annotated[MemberUpdateInput, strawberry.argument(description="What changes.")]) -> MemberUpdatePayload:
    p = ctx(info).principal

    async def run():
        member_id = require_id(id, "member", "id", "User")
        scope = unit_ref(input.scope_unit_id, "scopeUnitId")
        return await tenancy_service.member_update(p, member_id, role=input.role, scope_kind=scope[0] if scope else None,
                                                   scope_id=scope[1] if scope else None, can_export=input.can_export)

    user, errors = await attempt(run)
    return MemberUpdatePayload(user=User.of(user) if user else None, user_errors=errors)


@strawberry.mutation(description="Issue a token: to a new member (created with the given role and scope) or to an "
                                 "existing one, which it never changes (see memberUpdate). Owners only.")
async def token_create(self, info: Info, input: Annotated[TokenCreateInput, strawberry.argument(description="Member and token.")]) -> TokenCreatePayload:
    p = ctx(info).principal

    async def run():
        scope = unit_ref(input.scope_unit_id, "scopeUnitId")
        return await tenancy_service.token_create(
            p, input.email, input.role, *(scope or (None, None)), name=input.name or "", can_export=input.can_export)

    issued, errors = await attempt(run)
    if issued is None:
        return TokenCreatePayload(token=None, api_token=None, user=None, organization=None, user_errors=errors)
    return TokenCreatePayload(token=issued.token, api_token=ApiToken.of(issued.record), user=User.of(issued.user),
                              organization=None, user_errors=[])


@strawberry.mutation(description="Revoke a token (yours, or any in the organization for owners).")
async def token_revoke(self, info: Info, id: ObjectId) -> TokenRevokePayload:
    p = ctx(info).principal

    async def run():
        return await tenancy_service.token_revoke(p, require_id(id, "token", "id", "ApiToken"))

    token, errors = await attempt(run)
    return TokenRevokePayload(api_token=ApiToken.of(token) if token else None, user_errors=errors)


@strawberry.mutation(description="Create a new organization with its first owner and token. Owners only "
                                 "(the CLI `pulse org create` does the same on a fresh install).")
async def organization_create(self, info: Info, input: Annotated[OrganizationCreateInput, strawberry.argument(description="The organization.")]) -> TokenCreatePayload:
    p = ctx(info).principal

    async def run():
        p.require(p.role.OWNER)
        return await tenancy_service.create_organization(input.name, input.owner_email, input.currency, input.timezone)

    issued, errors = await attempt(run)
    if issued is None:
        return TokenCreatePayload(token=None, api_token=None, user=None, organization=None, user_errors=errors)
    org = await issued.user.organization
    return TokenCreatePayload(token=issued.token, api_token=ApiToken.of(issued.record), user=User.of(issued.user),
                              organization=Organization.of(org), user_errors=[])


@strawberry.mutation(description="Create a zone. Owners only.")
async def zone_create(self, info: Info, name: Annotated[str, strawberry.argument(description="Zone name.")]) -> ZonePayload:
    p = ctx(info).principal
    zone, errors = await attempt(lambda: tenancy_service.zone_create(p, name))
    return ZonePayload(zone=Zone.of(zone) if zone else None, user_errors=errors)


@strawberry.mutation(description="Create a center in a zone. Owners only.")
async def center_create(self, info: Info, zone_id: Annotated[strawberry.ID, strawberry.argument(description="The zone.")], name: Annotated[str, strawberry.argument(description="Center name.")]) -> CenterPayload:
    p = ctx(info).principal

    async def run():
        return await tenancy_service.center_create(p, require_id(zone_id, "zone", "zoneId", "Zone"), name)

    center, errors = await attempt(run)
    return CenterPayload(center=Center.of(center) if center else None, user_errors=errors)
