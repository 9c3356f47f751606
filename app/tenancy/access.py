"""Principals, roles and scope units (SPEC §1).

A principal sees campaigns owned by its scope unit or any unit inside it, and
the leads of those units. Anything outside is reported exactly like a missing
object (NotFound), never as forbidden.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from tortoise.expressions import Q

from app.core.errors import DomainError, ErrorCode, Forbidden, NotFound, Unauthenticated
from models.enums import Role, UnitKind
from subscriptions.bus import publish
from models.tenancy import ApiToken, Center, Organization, User, Zone

TOKEN_PREFIX = "cp_"


@dataclass(frozen=True)
class Unit:
    """An organization, a zone or a center of one organization."""

    kind: UnitKind
    org_id: int
    id: int  # id of the organization, zone or center
    zone_id: int | None = None  # for a center: its zone
    name: str = ""

    def contains(self, other: "Unit") -> bool:
        if self.org_id != other.org_id:
            return False
        if self.kind == UnitKind.ORGANIZATION:
            return True
        if self.kind == UnitKind.ZONE:
            return (other.kind == UnitKind.ZONE and other.id == self.id) or (
                other.kind == UnitKind.CENTER and other.zone_id == self.id
            )
        return other.kind == UnitKind.CENTER and other.id == self.id

    def campaign_q(self) -> Q:
        """Campaigns owned by this unit or any unit inside it."""
        if self.kind == UnitKind.ORGANIZATION:
            return Q(organization_id=self.org_id)
        if self.kind == UnitKind.ZONE:
            return Q(organization_id=self.org_id, zone_id=self.id)
        return Q(organization_id=self.org_id, center_id=self.id)

    def holds_lead(self, org_id: int, zone_id: int | None, center_id: int | None) -> bool:
        """Does a lead (its organization, home zone and center) lie in this unit? The same test as lead_q."""
        if org_id != self.org_id:
            return False
        if self.kind == UnitKind.ORGANIZATION:
            return True
        return (zone_id if self.kind == UnitKind.ZONE else center_id) == self.id

    def lead_q(self) -> Q:
        """Leads whose home center lies in this unit (org scope: every lead)."""
        return self.campaign_q()

    def sql_filter(self, alias: str) -> tuple[str, list]:
        """The same predicate as campaign_q/lead_q, for raw SQL."""
        if self.kind == UnitKind.ORGANIZATION:
            return f"{alias}.organization_id = ?", [self.org_id]
        if self.kind == UnitKind.ZONE:
            return f"{alias}.organization_id = ? AND {alias}.zone_id = ?", [self.org_id, self.id]
        return f"{alias}.organization_id = ? AND {alias}.center_id = ?", [self.org_id, self.id]


@dataclass(frozen=True)
class Principal:
    user_id: int
    org_id: int
    role: Role
    scope: Unit
    can_export: bool
    email: str
    token_id: int | None = None

    @property
    def is_owner(self) -> bool:
        return self.role == Role.OWNER

    def require(self, *roles: Role) -> None:
        if self.role not in roles:
            raise Forbidden(f"role {self.role.value} may not do this")

    def require_write(self) -> None:
        self.require(Role.OWNER, Role.MANAGER)

    def require_ingest(self) -> None:
        self.require(Role.OWNER, Role.MANAGER, Role.INTEGRATION)

    def sees_lead(self, lead) -> bool:
        """Every path that returns a lead asks this (a lead outside the scope is as invisible as a missing one)."""
        return self.scope.holds_lead(lead.organization_id, lead.zone_id, lead.center_id)

    def members_q(self, prefix: str = "") -> Q:
        """The members this principal sees and manages: for an owner, every member whose scope lies inside
        the owner's scope (all of them for an organization-wide owner); for anyone else, itself.
        `prefix` is the relation to the member ("user__" for tokens)."""
        if not self.is_owner:
            return Q(**{f"{prefix}id": self.user_id})
        return member_scope_q(self.scope, prefix)

    def check_grant(self, role: Role, unit: "Unit", field: str | list[str]) -> None:
        """May this principal create (or turn a member into) `role` with scope `unit`? Only an owner, only
        for a unit inside its own scope, and an OWNER only organization-wide (SPEC §1)."""
        self.require(Role.OWNER)
        if not self.scope.contains(unit):
            raise NotFound("unit", field)
        check_owner_scope(role, unit, field)


# ---------------------------------------------------------------- units


def check_owner_scope(role: Role, unit: Unit, field: str | list[str]) -> None:
    """Owners are organization-wide: an OWNER never has a zone or center scope."""
    if role == Role.OWNER and unit.kind != UnitKind.ORGANIZATION:
        raise DomainError(ErrorCode.INVALID, "owners are organization-wide: an OWNER cannot have a zone or "
                                             "center scope", field)


def member_scope_q(scope: Unit, prefix: str = "") -> Q:
    """Members whose own scope lies inside `scope` (`prefix`: the relation to the member)."""
    org = Q(**{f"{prefix}organization_id": scope.org_id})
    if scope.kind == UnitKind.ORGANIZATION:
        return org
    center = Q(**{f"{prefix}scope_kind": UnitKind.CENTER})
    if scope.kind == UnitKind.ZONE:
        return org & (Q(**{f"{prefix}scope_kind": UnitKind.ZONE, f"{prefix}scope_zone_id": scope.id})
                      | (center & Q(**{f"{prefix}scope_center__zone_id": scope.id})))
    return org & center & Q(**{f"{prefix}scope_center_id": scope.id})


async def unit_of(kind: UnitKind, org_id: int, unit_id: int) -> Unit | None:
    if kind == UnitKind.ORGANIZATION:
        org = await Organization.get_or_none(id=unit_id)
        if org is None or org.id != org_id:
            return None
        return Unit(UnitKind.ORGANIZATION, org.id, org.id, None, org.name)
    if kind == UnitKind.ZONE:
        zone = await Zone.get_or_none(id=unit_id, organization_id=org_id)
        return Unit(UnitKind.ZONE, org_id, zone.id, zone.id, zone.name) if zone else None
    center = await Center.get_or_none(id=unit_id, organization_id=org_id)
    return Unit(UnitKind.CENTER, org_id, center.id, center.zone_id, center.name) if center else None


async def resolve_unit(principal: Principal, kind: UnitKind | None, unit_id: int | None, field: str = "scope") -> Unit:
    """A unit named by the caller; it must lie inside the caller's scope."""
    if kind is None or unit_id is None:
        return principal.scope
    unit = await unit_of(kind, principal.org_id, unit_id)
    if unit is None or not principal.scope.contains(unit):
        raise NotFound("unit", field)
    return unit


# ---------------------------------------------------------------- tokens


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


async def principal_for_user(user: User, token_id: int | None = None) -> Principal:
    zone_id = None
    if user.scope_kind == UnitKind.CENTER and user.scope_center_id:
        center = await Center.get(id=user.scope_center_id)
        zone_id = center.zone_id
    if user.scope_kind == UnitKind.CENTER:
        scope = Unit(UnitKind.CENTER, user.organization_id, user.scope_center_id, zone_id)
    elif user.scope_kind == UnitKind.ZONE:
        scope = Unit(UnitKind.ZONE, user.organization_id, user.scope_zone_id, user.scope_zone_id)
    else:
        scope = Unit(UnitKind.ORGANIZATION, user.organization_id, user.organization_id)
    return Principal(
        user_id=user.id,
        org_id=user.organization_id,
        role=Role(user.role),
        scope=scope,
        can_export=user.can_export or user.role == Role.OWNER,
        email=user.email,
        token_id=token_id,
    )


# A per-process principal cache: token hash → (principal, last_used_at, expires). Safe to lose. A
# revocation or a role/scope change calls forget_principals() on the instance that made it and
# publishes PRINCIPALS_TOPIC on the bus; every other instance's listener (app/main.py) forgets too.
# The TTL bounds staleness when a bus message is lost (bus down, CLI without a bus).
PRINCIPALS_TOPIC = "pulse.principals"
_principals: dict[str, tuple[Principal, datetime | None, float]] = {}
_generation = 0
principal_cache_ttl_s: float = 5.0
_CACHE_MAX = 10_000


def configure_principal_cache(ttl_s: float) -> None:
    global principal_cache_ttl_s
    principal_cache_ttl_s = ttl_s
    forget_principals()


def forget_principals() -> None:
    """Drop every cached principal of this process (an entry being loaded is not stored)."""
    global _generation
    _generation += 1
    _principals.clear()


async def principals_changed() -> None:
    """After a committed revocation or role/scope change: this instance forgets at once, the others
    through the bus (best effort; the TTL bounds the rest)."""
    forget_principals()
    await publish(PRINCIPALS_TOPIC, {"what": "principals"})


async def authenticate(raw: str | None, *, touch_resolution_s: int = 60) -> Principal:
    """Resolve a bearer token (with or without the `Bearer ` prefix)."""
    if not raw:
        raise Unauthenticated("missing bearer token")
    token = raw.strip()
    if token.lower().startswith("bearer "):
        token = token[7:].strip()
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        raise Unauthenticated("invalid token")
    key = hash_token(token)
    now = datetime.now(timezone.utc)
    clock = time.monotonic()
    hit = _principals.get(key)
    if hit is not None and hit[2] > clock:
        principal, last_used = hit[0], hit[1]
        if last_used is None or now - last_used > timedelta(seconds=touch_resolution_s):
            await ApiToken.filter(id=principal.token_id).update(last_used_at=now)
            if _principals.get(key) is hit:
                _principals[key] = (principal, now, hit[2])
        return principal
    generation = _generation
    record = await ApiToken.get_or_none(token_hash=key).select_related("user")
    if record is None or record.revoked_at is not None:
        raise Unauthenticated("invalid or revoked token")
    last_used = record.last_used_at
    if last_used is None or now - last_used > timedelta(seconds=touch_resolution_s):
        await ApiToken.filter(id=record.id).update(last_used_at=now)
        last_used = now
    principal = await principal_for_user(record.user, record.id)
    if principal_cache_ttl_s > 0 and generation == _generation:
        if len(_principals) >= _CACHE_MAX:
            _principals.clear()
        _principals[key] = (principal, last_used, clock + principal_cache_ttl_s)
    return principal


async def access_still_granted(principals: list[Principal]) -> list[str | None]:
    """For each principal of a live subscription: None while its token is active and its member
    still has the role and scope it subscribed with, else the reason it may receive no more.

    One query for all of them (the hubs call it every round)."""
    token_ids = {p.token_id for p in principals if p.token_id}
    grants: dict[int, tuple] = {}
    if token_ids:
        rows = await ApiToken.filter(id__in=list(token_ids), revoked_at=None).values(
            "id", "user__role", "user__scope_kind", "user__scope_zone_id", "user__scope_center_id",
            "user__organization_id")
        for r in rows:
            kind = str(getattr(r["user__scope_kind"], "value", r["user__scope_kind"]))
            unit = {"ZONE": r["user__scope_zone_id"], "CENTER": r["user__scope_center_id"]}.get(
                kind, r["user__organization_id"])
            grants[r["id"]] = (str(getattr(r["user__role"], "value", r["user__role"])), kind, unit)
    out: list[str | None] = []
    for p in principals:
        if not p.token_id:
            out.append(None)
        elif p.token_id not in grants:
            out.append("token revoked")
        elif grants[p.token_id] != (p.role.value, p.scope.kind.value, p.scope.id):
            out.append("permissions changed: reconnect to subscribe with the new ones")
        else:
            out.append(None)
    return out


# ---------------------------------------------------------------- what a principal may see
# The only place that turns a principal into the units and members it may see; resolvers call
# these and never filter by scope themselves.


def visible_zones(principal: Principal):
    """Zones of the principal's organization inside its scope (all of them for an org-wide scope)."""
    qs = Zone.filter(organization_id=principal.org_id)
    if principal.scope.kind != UnitKind.ORGANIZATION:
        qs = qs.filter(id=principal.scope.zone_id)
    return qs


def visible_centers(principal: Principal):
    """Centers of the principal's organization inside its scope."""
    qs = Center.filter(organization_id=principal.org_id)
    if principal.scope.kind == UnitKind.ZONE:
        qs = qs.filter(zone_id=principal.scope.id)
    elif principal.scope.kind == UnitKind.CENTER:
        qs = qs.filter(id=principal.scope.id)
    return qs
