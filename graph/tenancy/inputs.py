"""GraphQL tenancy: input types."""

from __future__ import annotations

import strawberry

from app.core.errors import DomainError, ErrorCode
from graph.core import from_global_id
from graph.core.enums import Role
from models.enums import UnitKind

UNIT_TYPES = {"Organization": UnitKind.ORGANIZATION, "Zone": UnitKind.ZONE, "Center": UnitKind.CENTER}


def unit_ref(gid: str | None, field: str | list[str]) -> tuple[UnitKind, int] | None:
    """A global id of an organization, zone or center (None when not given)."""
    if gid is None:
        return None
    parsed = from_global_id(gid)
    if parsed is None or parsed[0] not in UNIT_TYPES:
        raise DomainError(ErrorCode.NOT_FOUND, "unit not found", field)
    return UNIT_TYPES[parsed[0]], parsed[1]


@strawberry.input(description="Issue an API token: to a new member created with this role and scope, or to the "
                              "existing member with this email (whose role, scope and export permission must then "
                              "match: a token never changes a member — use memberUpdate).")
class TokenCreateInput:
    email: str = strawberry.field(description="Member's email (created if new).")
    role: Role = strawberry.field(description="Member's role.")
    scope_unit_id: strawberry.ID | None = strawberry.field(default=None, description="Member's scope unit (default: yours).")
    name: str | None = strawberry.field(default=None, description="Label of the token.")
    can_export: bool | None = strawberry.field(default=None, description="Export permission.")


@strawberry.input(description="A new organization with its first owner.")
class OrganizationCreateInput:
    name: str = strawberry.field(description="Name (unique).")
    owner_email: str = strawberry.field(description="Email of the first owner.")
    currency: str = strawberry.field(default="EUR", description="ISO 4217 currency code.")
    timezone: str = strawberry.field(default="UTC", description="IANA time zone for daily figures.")


@strawberry.input(description="A change of a member's role, scope and/or export permission (omitted: unchanged).")
class MemberUpdateInput:
    role: Role | None = strawberry.field(default=None, description="New role (OWNER only with organization scope).")
    scope_unit_id: strawberry.ID | None = strawberry.field(default=None, description="New scope unit (inside yours).")
    can_export: bool | None = strawberry.field(default=None, description="New export permission.")
