"""Organizations, zones, centers, members and API tokens."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from app.tenancy.access import Principal, Unit, hash_token, new_token, principals_changed, resolve_unit
from app.core.errors import DomainError, ErrorCode, NotFound
from models.enums import Role, UnitKind
from models.tenancy import ApiToken, Center, Organization, User, Zone

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
CURRENCY_RE = re.compile(r"^[A-Z]{3}$")


@dataclass
class IssuedToken:
    token: str  # the secret, shown once
    record: ApiToken
    user: User


def check_name(value: str | None, field: str = "name", max_len: int = 200, required: bool = True) -> str:
    value = (value or "").strip()
    if required and not value:
        raise DomainError(ErrorCode.INVALID, "must not be blank", field)
    if len(value) > max_len:
        raise DomainError(ErrorCode.TOO_LONG, f"at most {max_len} characters", field)
    return value


def check_email(email: str | None, field: str = "email") -> str:
    email = (email or "").strip().lower()
    if not EMAIL_RE.match(email) or len(email) > 320:
        raise DomainError(ErrorCode.INVALID, "not a valid email address", field)
    return email


def check_timezone(tz: str, field: str = "timezone") -> str:
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise DomainError(ErrorCode.INVALID, f"unknown time zone {tz!r}", field) from None
    return tz


async def create_organization(name: str, owner_email: str, currency: str = "EUR", tz: str = "UTC") -> IssuedToken:
    name = check_name(name)
    owner_email = check_email(owner_email, "ownerEmail")
    currency = (currency or "").strip().upper()
    if not CURRENCY_RE.match(currency):
        raise DomainError(ErrorCode.INVALID, "currency must be an ISO 4217 code such as EUR", "currency")
    check_timezone(tz)
    try:
        async with in_transaction():
            org = await Organization.create(name=name, currency=currency, timezone=tz)
            user = await User.create(organization=org, email=owner_email, role=Role.OWNER, can_export=True)
            return await _issue(user, "initial owner token")
    except IntegrityError:
        raise DomainError(ErrorCode.DUPLICATE, f"an organization named {name!r} exists", "name") from None


async def _issue(user: User, name: str) -> IssuedToken:
    secret = new_token()
    record = await ApiToken.create(user=user, name=name, prefix=secret[:8], token_hash=hash_token(secret))
    return IssuedToken(secret, record, user)


async def create_token(
    org_id: int,
    email: str,
    role: Role,
    scope: Unit | None = None,
    *,
    name: str = "",
    can_export: bool | None = None,
    user_name: str | None = None,
) -> IssuedToken:
    """Create (or update) the member with this email and give it a new token."""
    email = check_email(email)
    name = check_name(name, "name", required=False)
    scope = scope or Unit(UnitKind.ORGANIZATION, org_id, org_id)
    changed = False
    async with in_transaction():
        user = await User.get_or_none(organization_id=org_id, email=email)
        fields = {
            "role": role,
            "scope_kind": scope.kind,
            "scope_zone_id": scope.id if scope.kind == UnitKind.ZONE else None,
            "scope_center_id": scope.id if scope.kind == UnitKind.CENTER else None,
        }
        if can_export is not None:
            fields["can_export"] = can_export
        if user_name is not None:
            fields["name"] = check_name(user_name, "userName", required=False)
        if user is None:
            user = await User.create(organization_id=org_id, email=email, **fields)
        else:
            await User.filter(id=user.id).update(**fields)
            await user.refresh_from_db()
            changed = True
        issued = await _issue(user, name)
    if changed:  # role, scope or export right of existing tokens may have changed
        await principals_changed()
    return issued


async def token_create(principal: Principal, email: str, role: Role, scope_kind, scope_id, **kw) -> IssuedToken:
    principal.require(Role.OWNER)
    scope = await resolve_unit(principal, scope_kind, scope_id, "scopeUnitId")
    return await create_token(principal.org_id, email, role, scope, **kw)


async def token_revoke(principal: Principal, token_id: int) -> ApiToken:
    token = await ApiToken.get_or_none(id=token_id).select_related("user")
    # Another member's token is as invisible to a non-owner as a missing one.
    if token is None or token.user.organization_id != principal.org_id or (
            token.user_id != principal.user_id and not principal.is_owner):
        raise NotFound("token", "id")
    if token.revoked_at is None:
        token.revoked_at = datetime.now(timezone.utc)
        await ApiToken.filter(id=token.id).update(revoked_at=token.revoked_at)
        await principals_changed()
    return token


def tokens_query(principal: Principal):
    qs = ApiToken.filter(user__organization_id=principal.org_id)
    if not principal.is_owner:
        qs = qs.filter(user_id=principal.user_id)
    return qs


async def zone_create(principal: Principal, name: str) -> Zone:
    principal.require(Role.OWNER)
    name = check_name(name)
    try:
        return await Zone.create(organization_id=principal.org_id, name=name)
    except IntegrityError:
        raise DomainError(ErrorCode.DUPLICATE, "a zone with this name exists", "name") from None


async def center_create(principal: Principal, zone_id: int, name: str) -> Center:
    principal.require(Role.OWNER)
    name = check_name(name)
    zone = await Zone.get_or_none(id=zone_id, organization_id=principal.org_id)
    if zone is None:
        raise NotFound("zone", "zoneId")
    try:
        return await Center.create(organization_id=principal.org_id, zone=zone, name=name)
    except IntegrityError:
        raise DomainError(ErrorCode.DUPLICATE, "a center with this name exists", "name") from None


async def find_organization(ref: str) -> Organization | None:
    if ref.isdigit():
        org = await Organization.get_or_none(id=int(ref))
        if org:
            return org
    return await Organization.get_or_none(name=ref)
