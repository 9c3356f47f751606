"""Export requests, cancel, download history, downloads and the sweeper (SPEC §11).

Who may export: owners, and any member with `canExport`, for campaigns inside their scope (the
campaign is looked up through campaigns' `get_campaign`, i.e. tenancy's scope rules: a campaign
of another scope or organization is "not found"). Every refusal — no export right, a campaign
not visible, a one-time campaign already downloaded, and at download time a wrong token, a link
used twice, expired, cancelled or not ready — is recorded in the history.

One-time campaigns: a SCHEDULED campaign runs once over its audience, so its data can be
downloaded once. After a successful download, `exportCreate` for it is refused with
ALREADY_DOWNLOADED (recorded), and any other link of it still pending is refused at download
time. The database guarantees it (a unique column set by the download). ALWAYS_ON campaigns keep
changing: each export is a new snapshot, without limit.

The password is checked against the rules, used once to derive the file's key envelope
(crypto.derive_key_material, in a thread) and dropped; it is never stored, logged or returned.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import orjson
from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q, Subquery

from app.exports.crypto import derive_key_material
from app.exports.storage import store_for
from app.tenancy.access import Principal
from app.campaigns.service import campaigns_query, get_campaign
from app.core.errors import DomainError, ErrorCode, Forbidden, NotFound
from models.campaigns import Campaign
from models.enums import CampaignType
from models.exports import Export, ExportAttempt

ACTIVE = ("PENDING", "RUNNING")
FINAL = ("DOWNLOADED", "EXPIRED", "CANCELLED", "FAILED", "REFUSED")
PASSWORD_MIN, PASSWORD_MAX = 12, 128
REASON_MIN, REASON_MAX = 3, 500
DOWNLOADED_GRACE = timedelta(minutes=10)


def now() -> datetime:
    return datetime.now(timezone.utc)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_password(password: str) -> None:
    """12 to 128 characters, with at least one letter and one digit or symbol, not only spaces
    at either end. (Length matters most; ECMA-376 stretches it with 100 000 SHA-512 rounds.)"""
    def weak(message: str) -> DomainError:
        return DomainError(ErrorCode.WEAK_PASSWORD, message, "password")

    if len(password) < PASSWORD_MIN:
        raise weak(f"the password needs at least {PASSWORD_MIN} characters")
    if len(password) > PASSWORD_MAX:
        raise weak(f"the password may have at most {PASSWORD_MAX} characters")
    if password != password.strip():
        raise weak("the password may not start or end with a space")
    if "\x00" in password:
        raise weak("the password may not contain NUL characters")
    if not any(ch.isalpha() for ch in password) or all(ch.isalpha() for ch in password):
        raise weak("the password needs letters and at least one digit or symbol")
    if len(set(password)) < 5:
        raise weak("the password repeats too few distinct characters")


def check_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if len(reason) < REASON_MIN:
        raise DomainError(ErrorCode.INVALID, f"a reason of at least {REASON_MIN} characters is required", "reason")
    if len(reason) > REASON_MAX:
        raise DomainError(ErrorCode.TOO_LONG, f"reason: at most {REASON_MAX} characters", "reason")
    if "\x00" in reason:
        raise DomainError(ErrorCode.INVALID, "reason: NUL characters are not allowed", "reason")
    return reason


async def _refuse(principal: Principal, reason: str, code: str, campaign: Campaign | None = None) -> None:
    await Export.create(organization_id=principal.org_id, campaign_id=campaign.id if campaign else None,
                        campaign_name=campaign.name if campaign else "",
                        campaign_type=campaign.type.value if campaign else None,
                        user_id=principal.user_id, user_email=principal.email, reason=reason, status="REFUSED",
                        refusal=code, finished_at=now())


@dataclass
class Created:
    export: Export
    token: str


async def create_export(principal: Principal, campaign_id: int | None, reason: str, password: str) -> Created:
    """Record the request and queue it; returns the export and the link token (shown once)."""
    reason = check_reason(reason)
    check_password(password)
    if not principal.can_export:
        await _refuse(principal, reason, "FORBIDDEN")
        raise Forbidden("exporting needs the export right (canExport)", "campaignId")
    try:
        if campaign_id is None:
            raise NotFound("campaign", "campaignId")
        campaign = await get_campaign(principal, campaign_id, "campaignId")
    except NotFound:
        await _refuse(principal, reason, "NOT_FOUND")
        raise
    if campaign.type == CampaignType.SCHEDULED:
        done = await Export.filter(once_campaign_id=campaign.id).first()
        if done is not None:
            await _refuse(principal, reason, "ALREADY_DOWNLOADED", campaign)
            raise DomainError(ErrorCode.ALREADY_DOWNLOADED,
                              f"this one-time campaign's data was already downloaded "
                              f"(by {done.user_email} at {done.downloaded_at:%Y-%m-%d %H:%M} UTC)", "campaignId")
    material = await asyncio.to_thread(derive_key_material, password)
    del password
    token = secrets.token_urlsafe(32)
    export = await Export.create(
        organization_id=principal.org_id, campaign_id=campaign.id, campaign_name=campaign.name,
        campaign_type=campaign.type.value, user_id=principal.user_id, user_email=principal.email, reason=reason,
        status="PENDING", key_material=orjson.dumps(material).decode(), token_hash=hash_token(token))
    return Created(export, token)


def history_query(principal: Principal):
    """The download history a principal may read: owners the organization's; members with the
    export right the exports of campaigns in their scope (tenancy's campaign visibility) and
    their own attempts; anybody else only their own attempts."""
    qs = Export.filter(organization_id=principal.org_id)
    if principal.is_owner:
        return qs
    mine = Q(user_id=principal.user_id)
    if principal.can_export:
        return qs.filter(mine | Q(campaign_id__in=Subquery(campaigns_query(principal).values("id"))))
    return qs.filter(mine)


async def get_export(principal: Principal, export_id: int | None, field: str = "id") -> Export:
    found = await history_query(principal).filter(id=export_id).first() if export_id else None
    if found is None:
        raise NotFound("export", field)
    return found


async def cancel_export(principal: Principal, export_id: int | None, settings) -> Export:
    """The requester or an owner stops an export that is queued, running or waiting for its
    download; its file (if any) is deleted and its link refused from then on."""
    export = await get_export(principal, export_id)
    if not (principal.is_owner or export.user_id == principal.user_id):
        raise Forbidden("only the requester or an owner may cancel an export", "id")
    updated = await Export.filter(id=export.id, status__in=[*ACTIVE, "READY"]).update(
        status="CANCELLED", key_material=None, finished_at=now(), lease_owner=None)
    if not updated:
        raise DomainError(ErrorCode.ILLEGAL_TRANSITION, f"the export is already {export.status.lower()}", "id")
    await delete_file(await Export.get(id=export.id), settings)
    return await Export.get(id=export.id)


async def attempts_of(export_ids: list[int]) -> dict[int, list[ExportAttempt]]:
    out: dict[int, list[ExportAttempt]] = {i: [] for i in export_ids}
    for a in await ExportAttempt.filter(export_id__in=export_ids).order_by("id"):
        out[a.export_id].append(a)
    return out


# ---------------------------------------------------------------- download


class DownloadRefused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class Download:
    export: Export
    chunks: object  # async iterator of bytes
    filename: str


async def _record(export: Export, code: str, ip: str | None, user_agent: str | None) -> None:
    await ExportAttempt.create(organization_id=export.organization_id, export_id=export.id, code=code,
                               ip=(ip or "")[:64] or None, user_agent=(user_agent or "")[:500] or None)


async def open_download(export_id: int | None, token: str | None, ip: str | None, user_agent: str | None,
                        settings) -> Download:
    """Check the link and spend it (single use). Refusals raise DownloadRefused and are recorded."""
    export = await Export.get_or_none(id=export_id) if export_id and 0 < export_id < 2**62 else None
    if export is None or export.token_hash is None:
        raise DownloadRefused(404, "NOT_FOUND", "no such export link")
    if not token or not hmac.compare_digest(hash_token(token), export.token_hash):
        await _record(export, "WRONG_TOKEN", ip, user_agent)
        raise DownloadRefused(403, "WRONG_TOKEN", "this link's token is not valid")
    t = now()
    refusal = _link_refusal(export, t)
    if refusal is None:
        try:
            spent = await Export.filter(id=export.id, status="READY", expires_at__gt=t).update(
                status="DOWNLOADED", downloaded_at=t, download_ip=(ip or "")[:64] or None,
                download_user_agent=(user_agent or "")[:500] or None,
                once_campaign_id=export.campaign_id if export.campaign_type == CampaignType.SCHEDULED.value else None)
        except IntegrityError:
            refusal = (410, "ALREADY_DOWNLOADED", "this one-time campaign's data was already downloaded")
        else:
            if not spent:
                refusal = _link_refusal(await Export.get(id=export.id), t) or (410, "LINK_USED", "this link was used")
    if refusal is not None:
        await _record(export, refusal[1], ip, user_agent)
        raise DownloadRefused(*refusal)
    export = await Export.get(id=export.id)
    store = store_for(settings, export.storage)
    filename = _filename(export)

    async def chunks():
        try:
            async for chunk in store.open(export.file_key):
                yield chunk
        finally:
            await delete_file(export, settings)

    return Download(export, chunks(), filename)


def _link_refusal(export: Export, t: datetime) -> tuple[int, str, str] | None:
    if export.status in ACTIVE:
        return 409, "NOT_READY", "the export is still being built"
    if export.status == "DOWNLOADED":
        return 410, "LINK_USED", "this link was already used: links are single-use"
    if export.status == "EXPIRED" or (export.status == "READY" and export.expires_at and export.expires_at <= t):
        return 410, "LINK_EXPIRED", "this link has expired"
    if export.status != "READY":
        return 410, "LINK_REVOKED", f"the export was {export.status.lower()}"
    return None


def _filename(export: Export) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in export.campaign_name)[:60].strip("-")
    return f"campaign-{export.campaign_id}-{safe or 'export'}-{export.id}.xlsx"


# ---------------------------------------------------------------- files and the sweeper


async def delete_file(export: Export, settings) -> None:
    if not export.file_key or export.deleted_at is not None:
        return
    try:
        await store_for(settings, export.storage).delete(export.file_key)
    finally:
        await Export.filter(id=export.id, deleted_at=None).update(deleted_at=now())


async def sweep(settings, at: datetime | None = None) -> dict[str, int]:
    """Expire unused links, delete files that were downloaded or are no longer wanted, fail jobs
    whose workers died too often. Safe to run on every instance at once."""
    t = at or now()
    out = {"expired": 0, "deleted": 0, "failed": 0}
    out["expired"] = await Export.filter(status="READY", expires_at__lte=t).update(status="EXPIRED")
    out["failed"] = await Export.filter(status="RUNNING", lease_until__lt=t, attempts__gte=3).update(
        status="FAILED", error="the export job stopped three times", key_material=None, finished_at=t)
    await Export.filter(status__in=FINAL, key_material__isnull=False).update(key_material=None)
    stale = await Export.filter(
        Q(status__in=("EXPIRED", "CANCELLED", "FAILED")) | Q(status="DOWNLOADED", downloaded_at__lt=t - DOWNLOADED_GRACE),
        file_key__isnull=False, deleted_at=None).limit(200)
    for export in stale:
        await delete_file(export, settings)
        out["deleted"] += 1
    return out
