"""Organizations, zones, centers, members and API tokens."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from app.core.errors import DomainError, ErrorCode, Forbidden, NotFound
from app.tenancy.access import (
    Principal,
    Unit,
    check_owner_scope,
    hash_token,
    new_token,
    principal_for_user,
    principals_changed,
    resolve_unit,
)
from models.enums import Role, UnitKind
from models.tenancy import ApiToken, Center, MemberChange, Organization, User, Zone

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
    if "\x00" in value:
        raise DomainError(ErrorCode.INVALID, "must not contain NUL characters", field)
    return value


def check_email(email: str | None, field: str = "email") -> str:
    email = (email or "").strip().lower()
    if not EMAIL_RE.match(email) or len(email) > 320:
        raise DomainError(ErrorCode.INVALID, "not a valid email address", field)
    return email


def check_timezone(tz: str, field: str = "timezone") -> str:
    if len(tz) > 64:  # IANA names are at most ~32 characters; a file-system lookup must not see more
        raise DomainError(ErrorCode.TOO_LONG, "a time zone name has at most 64 characters", field)
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError):
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
    issuer: Principal | None = None,
) -> IssuedToken:
    """Issue a new token: to a new member created with this role and scope, or to the existing member with
    this email. Issuing a token never changes an existing member (that is memberUpdate): if the request
    names another role, scope or export permission than the member has, it is refused (MEMBER_EXISTS).
    `issuer`: the principal asking (None for the CLI); an existing member outside its scope is not found."""
    email = check_email(email)
    name = check_name(name, "name", required=False)
    scope = scope or Unit(UnitKind.ORGANIZATION, org_id, org_id)
    check_owner_scope(role, scope, "scopeUnitId")
    async with in_transaction():
        user = await User.get_or_none(organization_id=org_id, email=email)
        if user is None:
            fields = _grant_columns(role, scope)
            if can_export is not None:
                fields["can_export"] = can_export
            if user_name is not None:
                fields["name"] = check_name(user_name, "userName", required=False)
            user = await User.create(organization_id=org_id, email=email, **fields)
            return await _issue(user, name)
        if issuer is not None and not await User.filter(id=user.id).filter(issuer.members_q()).exists():
            raise NotFound("member", "email")
        current = (await principal_for_user(user)).scope
        if (Role(user.role) != role or (current.kind, current.id) != (scope.kind, scope.id)
                or (can_export is not None and bool(user.can_export) != can_export)):
            raise DomainError(ErrorCode.MEMBER_EXISTS,
                              "a member with this email exists with another role, scope or export permission; "
                              "a token never changes a member: change it with memberUpdate first", "email")
        return await _issue(user, name)


async def token_create(principal: Principal, email: str, role: Role, scope_kind, scope_id, **kw) -> IssuedToken:
    principal.require(Role.OWNER)
    scope = await resolve_unit(principal, scope_kind, scope_id, "scopeUnitId")
    principal.check_grant(role, scope, "scopeUnitId")
    return await create_token(principal.org_id, email, role, scope, issuer=principal, **kw)


def _grant_columns(role: Role, scope: Unit) -> dict:
    """A member's role and scope as User columns."""
    return {"role": role, "scope_kind": scope.kind,
            "scope_zone_id": scope.id if scope.kind == UnitKind.ZONE else None,
            "scope_center_id": scope.id if scope.kind == UnitKind.CENTER else None}


def _grant(user: User, scope: Unit) -> dict:
    return {"role": Role(user.role).value, "scopeKind": scope.kind.value, "scopeId": scope.id,
            "canExport": bool(user.can_export)}


async def member_update(principal: Principal, member_id: int, *, role: Role | None = None,
                        scope_kind=None, scope_id=None, can_export: bool | None = None) -> User:
    """Change a member's role, scope and/or export permission. Allowed only to an owner who could create
    both the member as it is and the member as it becomes; the organization keeps at least one
    organization-wide owner; every change is recorded (MemberChange)."""
    principal.require(Role.OWNER)
    async with in_transaction():
        # One member change per organization at a time (the last-owner rule reads the other owners).
        await Organization.filter(id=principal.org_id).select_for_update(no_key=True).first()
        user = await User.filter(id=member_id).filter(principal.members_q()).first()
        if user is None:
            raise NotFound("member", "id")
        current = (await principal_for_user(user)).scope
        principal.check_grant(Role(user.role), current, "id")
        new_role = role or Role(user.role)
        new_scope = (await resolve_unit(principal, scope_kind, scope_id, "scopeUnitId")
                     if scope_kind is not None else current)
        principal.check_grant(new_role, new_scope, "scopeUnitId" if scope_kind is not None else "role")
        before = _grant(user, current)
        if user.role == Role.OWNER and new_role != Role.OWNER:
            others = await User.filter(organization_id=principal.org_id, role=Role.OWNER,
                                       scope_kind=UnitKind.ORGANIZATION).exclude(id=user.id).count()
            if others == 0:
                raise DomainError(ErrorCode.LAST_OWNER, "the organization must keep an owner", "role")
        fields = _grant_columns(new_role, new_scope)
        if can_export is not None:
            fields["can_export"] = can_export
        await User.filter(id=user.id).update(**fields)
        await user.refresh_from_db()
        after = _grant(user, new_scope)
        if after != before:
            await MemberChange.create(organization_id=principal.org_id, member_id=user.id,
                                      changed_by_id=principal.user_id, token_id=principal.token_id,
                                      before=before, after=after)
    if after != before:  # cached principals of this member's tokens are stale on every instance
        await principals_changed()
    return user


async def token_revoke(principal: Principal, token_id: int) -> ApiToken:
    # Another member's token is as invisible to a non-owner (or to an owner whose scope does not hold
    # that member) as a missing one.
    token = await tokens_query(principal).filter(id=token_id).first()
    if token is None:
        raise NotFound("token", "id")
    if token.revoked_at is None:
        token.revoked_at = datetime.now(timezone.utc)
        await ApiToken.filter(id=token.id).update(revoked_at=token.revoked_at)
        await principals_changed()
    return token


def tokens_query(principal: Principal):
    return ApiToken.filter(user__organization_id=principal.org_id).filter(principal.members_q("user__"))


def members_query(principal: Principal):
    """Members the principal sees: those inside an owner's scope; oneself for anyone else."""
    return User.filter(organization_id=principal.org_id).filter(principal.members_q())


async def zone_create(principal: Principal, name: str) -> Zone:
    principal.require(Role.OWNER)
    if principal.scope.kind != UnitKind.ORGANIZATION:
        raise Forbidden("only an organization-wide owner creates zones")
    name = check_name(name)
    try:
        return await Zone.create(organization_id=principal.org_id, name=name)
    except IntegrityError:
        raise DomainError(ErrorCode.DUPLICATE, "a zone with this name exists", "name") from None


async def center_create(principal: Principal, zone_id: int, name: str) -> Center:
    principal.require(Role.OWNER)
    name = check_name(name)
    zone = await Zone.get_or_none(id=zone_id, organization_id=principal.org_id)
    if zone is None or not principal.scope.contains(Unit(UnitKind.ZONE, principal.org_id, zone.id, zone.id)):
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
