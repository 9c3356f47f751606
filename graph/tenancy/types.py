"""GraphQL tenancy: object types."""

from __future__ import annotations

import datetime as dt

import strawberry
from strawberry.types import Info

from app.tenancy.access import visible_centers, visible_zones
from graph.core import Node, ctx, to_global_id
from graph.core.enums import Role, UnitKind
from graph.core.loaders import loaders
from models import tenancy as mt
from models.enums import UnitKind as UK


# An organization's currency is fixed when it is created (nothing changes it): kept per process once
# read, so that money fields cost no query (bounded: cleared when full).
_CURRENCIES: dict[int, str] = {}


async def org_currency(info: Info, org_id: int) -> str:
    try:
        return _CURRENCIES[org_id]
    except KeyError:
        pass
    org = await loaders(info).organization.load(org_id)
    if org is None:
        return "XXX"
    if len(_CURRENCIES) >= 10_000:
        _CURRENCIES.clear()
    _CURRENCIES[org_id] = org.currency
    return org.currency


def forget_currencies() -> None:
    """Called when the app (re)connects to a database (another database, other organizations)."""
    _CURRENCIES.clear()


# ---------------------------------------------------------------- tenancy


@strawberry.type(description="A tenant. All money in it uses its one currency.")
class Organization(Node):
    m: strawberry.Private[mt.Organization]

    @strawberry.field(description="Display name.")
    def name(self) -> str:
        return self.m.name

    @strawberry.field(description="ISO 4217 currency code of all money in the organization.")
    def currency(self) -> str:
        return self.m.currency

    @strawberry.field(description="IANA time zone used for daily figures.")
    def timezone(self) -> str:
        return self.m.timezone

    @strawberry.field(description="Zones of the organization visible to you.")
    async def zones(self, info: Info) -> list[Zone]:
        return [Zone.of(z) for z in await visible_zones(ctx(info).principal).order_by("name")]

    @strawberry.field(description="Centers of the organization visible to you.")
    async def centers(self, info: Info) -> list[Center]:
        return [Center.of(c) for c in await visible_centers(ctx(info).principal).order_by("name")]

    @staticmethod
    def of(m: mt.Organization) -> "Organization":
        return Organization(id=to_global_id("Organization", m.id), m=m)


@strawberry.type(description="A zone: a group of centers.")
class Zone(Node):
    m: strawberry.Private[mt.Zone]

    @strawberry.field(description="Display name.")
    def name(self) -> str:
        return self.m.name

    @staticmethod
    def of(m: mt.Zone) -> "Zone":
        return Zone(id=to_global_id("Zone", m.id), m=m)


@strawberry.type(description="A center (a site); belongs to one zone.")
class Center(Node):
    m: strawberry.Private[mt.Center]

    @strawberry.field(description="Display name.")
    def name(self) -> str:
        return self.m.name

    @strawberry.field(description="The zone this center belongs to.")
    async def zone(self, info: Info) -> Zone:
        return Zone.of(await loaders(info).zone.load(self.m.zone_id))

    @staticmethod
    def of(m: mt.Center) -> "Center":
        return Center(id=to_global_id("Center", m.id), m=m)


@strawberry.type(description="An organizational unit: the organization, a zone or a center.")
class OrgUnit:
    id: strawberry.ID = strawberry.field(description="Global id of the organization, zone or center.")
    kind: UnitKind = strawberry.field(description="Which level the unit is.")
    name: str = strawberry.field(description="Display name.")


async def org_unit(info: Info, kind: UK, org_id: int, zone_id: int | None, center_id: int | None) -> OrgUnit:
    if kind == UK.CENTER:
        c = await loaders(info).center.load(center_id)
        return OrgUnit(id=to_global_id("Center", c.id), kind=UK.CENTER, name=c.name)
    if kind == UK.ZONE:
        z = await loaders(info).zone.load(zone_id)
        return OrgUnit(id=to_global_id("Zone", z.id), kind=UK.ZONE, name=z.name)
    o = await loaders(info).organization.load(org_id)
    return OrgUnit(id=to_global_id("Organization", o.id), kind=UK.ORGANIZATION, name=o.name)


@strawberry.type(description="A member of an organization.")
class User(Node):
    m: strawberry.Private[mt.User]

    @strawberry.field(description="Email address (unique in the organization).")
    def email(self) -> str:
        return self.m.email

    @strawberry.field(description="Display name.")
    def name(self) -> str:
        return self.m.name

    @strawberry.field(description="Role in the organization.")
    def role(self) -> Role:
        return self.m.role

    @strawberry.field(description="Whether the user may export data (owners always may).")
    def can_export(self) -> bool:
        return bool(self.m.can_export or self.m.role == "OWNER")

    @strawberry.field(description="The unit whose campaigns and leads the user sees.")
    async def scope(self, info: Info) -> OrgUnit:
        zone_id = self.m.scope_zone_id
        if self.m.scope_kind == UK.CENTER:
            zone_id = (await loaders(info).center.load(self.m.scope_center_id)).zone_id
        return await org_unit(info, UK(self.m.scope_kind), self.m.organization_id, zone_id, self.m.scope_center_id)

    @strawberry.field(description="The user's organization.")
    async def organization(self, info: Info) -> Organization:
        return Organization.of(await loaders(info).organization.load(self.m.organization_id))

    @strawberry.field(description="Recorded changes of this member's role, scope or export permission "
                                  "(memberUpdate), oldest first.")
    async def changes(self) -> list["MemberChange"]:
        rows = await mt.MemberChange.filter(member_id=self.m.id).order_by("id")
        return [MemberChange.of(r) for r in rows]

    @staticmethod
    def of(m: mt.User) -> "User":
        return User(id=to_global_id("User", m.id), m=m)


@strawberry.type(description="A member's role, scope and export permission at one moment.")
class MemberGrant:
    role: Role = strawberry.field(description="Role.")
    scope_unit_id: strawberry.ID = strawberry.field(description="Global id of the scope unit.")
    can_export: bool = strawberry.field(description="Export permission as stored (owners may always export).")

    @staticmethod
    def of(d: dict) -> "MemberGrant":
        type_name = {"ORGANIZATION": "Organization", "ZONE": "Zone", "CENTER": "Center"}[d["scopeKind"]]
        return MemberGrant(role=d["role"], scope_unit_id=to_global_id(type_name, d["scopeId"]),
                           can_export=bool(d["canExport"]))


@strawberry.type(description="One recorded memberUpdate: who changed the member, when, from what to what.")
class MemberChange:
    m: strawberry.Private[mt.MemberChange]

    @strawberry.field(description="When the change was made.")
    def changed_at(self) -> dt.datetime:
        return self.m.changed_at

    @strawberry.field(description="Global id of the member who made the change (null once deleted).")
    def changed_by_id(self) -> strawberry.ID | None:
        return to_global_id("User", self.m.changed_by_id) if self.m.changed_by_id else None

    @strawberry.field(description="Global id of the API token the change was made with.")
    def token_id(self) -> strawberry.ID | None:
        return to_global_id("ApiToken", self.m.token_id) if self.m.token_id else None

    @strawberry.field(description="The grant before the change.")
    def before(self) -> MemberGrant:
        return MemberGrant.of(self.m.before)

    @strawberry.field(description="The grant after the change.")
    def after(self) -> MemberGrant:
        return MemberGrant.of(self.m.after)

    @staticmethod
    def of(m: mt.MemberChange) -> "MemberChange":
        return MemberChange(m=m)


@strawberry.type(description="An API token (the secret itself is shown only once, at creation).")
class ApiToken(Node):
    m: strawberry.Private[mt.ApiToken]

    @strawberry.field(description="Label given at creation.")
    def name(self) -> str:
        return self.m.name

    @strawberry.field(description="First characters of the token, to recognise it.")
    def prefix(self) -> str:
        return self.m.prefix

    @strawberry.field(description="When the token was created.")
    def created_at(self) -> dt.datetime:
        return self.m.created_at

    @strawberry.field(description="When the token was last used (to the minute).")
    def last_used_at(self) -> dt.datetime | None:
        return self.m.last_used_at

    @strawberry.field(description="When the token was revoked; null while active.")
    def revoked_at(self) -> dt.datetime | None:
        return self.m.revoked_at

    @strawberry.field(description="Email of the user the token authenticates.")
    async def user_email(self, info: Info) -> str:
        return (await loaders(info).user.load(self.m.user_id)).email

    @staticmethod
    def of(m: mt.ApiToken) -> "ApiToken":
        return ApiToken(id=to_global_id("ApiToken", m.id), m=m)
