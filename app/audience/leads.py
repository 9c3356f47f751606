"""Leads: upsert by external id, filters (also used by campaign audiences)."""

from __future__ import annotations

from dataclasses import dataclass, field

from tortoise.expressions import Q
from app.db import transaction

from app.tenancy.access import Principal, Unit
from app.core.errors import DomainError, ErrorCode, NotFound
from app.core.hooks import Hook
from app.tenancy.service import EMAIL_RE
from models.enums import Channel, Role, UnitKind
from models.leads import Lead
from models.tenancy import Center
from subscriptions import bus

MAX_LEADS_PER_BATCH = 5000

#: (organization id, lead ids) -> campaign ids that grew — leads were created or changed, in the
#: upsert's transaction (ALWAYS_ON campaigns add the ones that now match; registered by app.wiring).
leads_upserted = Hook("audience.leads_upserted")
#: (outreach filter dict) -> Q — extra conditions of a leads filter by KPI names (status, track,
#: actionRequired, engaged, socialOnly), contributed by outreach, which keeps those figures.
lead_filter = Hook("audience.lead_filter")
# Before any lead row is locked: the higher domains lock, in the global order (app.db), the rows that
# leads_upserted will lock (the running ALWAYS_ON campaigns) — a lead is always locked after them.
leads_locking = Hook("audience.leads_locking")

CHANNEL_ADDRESS = {
    Channel.EMAIL: "email",
    Channel.SMS: "phone",
    Channel.WHATSAPP: "whatsapp",
    Channel.PUSH: "push_token",
}


@dataclass
class LeadData:
    external_id: str
    name: str | None = None
    email: str | None = None
    email_verified: bool | None = None
    phone: str | None = None
    whatsapp: str | None = None
    push_token: str | None = None
    linkedin_url: str | None = None
    twitter_url: str | None = None
    tags: list[str] | None = None
    center_id: int | None = None
    center_given: bool = False


@dataclass
class LeadFilterData:
    center_ids: list[int] | None = None
    zone_ids: list[int] | None = None
    tags: list[str] | None = None
    verified_only: bool = False
    has_channel: list[Channel] = field(default_factory=list)
    search: str | None = None
    outreach: dict | None = None  # KPI names (status, track, actionRequired, …): see `lead_filter`


def tags_text(tags: list[str]) -> str:
    return "," + ",".join(tags) + "," if tags else ""


def filter_q(flt: LeadFilterData | None) -> Q:
    q = Q()
    if flt is None:
        return q
    if flt.center_ids is not None:
        q &= Q(center_id__in=flt.center_ids)
    if flt.zone_ids is not None:
        q &= Q(zone_id__in=flt.zone_ids)
    if flt.tags:
        tag_q = Q()
        for tag in flt.tags:
            tag_q |= Q(tags_text__contains=f",{tag},")
        q &= tag_q
    if flt.verified_only:
        q &= Q(email_verified=True) & Q(email__not_isnull=True)
    for ch in flt.has_channel or []:
        if ch == Channel.SOCIAL:
            q &= Q(linkedin_url__not_isnull=True) | Q(twitter_url__not_isnull=True)
        else:
            q &= Q(**{f"{CHANNEL_ADDRESS[ch]}__not_isnull": True})
    if flt.search:
        s = flt.search.strip()
        q &= Q(name__icontains=s) | Q(email__icontains=s) | Q(phone__icontains=s) | Q(external_id=s)
    if flt.outreach:
        for extra in lead_filter.call(flt.outreach):
            q &= extra
    return q


def leads_query(principal: Principal, flt: LeadFilterData | None = None, unit: Unit | None = None):
    return Lead.filter((unit or principal.scope).lead_q()).filter(filter_q(flt))


def _clean(value: str | None, fieldname: str, index: int, max_len: int) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if len(value) > max_len:
        raise DomainError(ErrorCode.TOO_LONG, f"at most {max_len} characters", ["leads", str(index), fieldname])
    return value


async def upsert_leads(principal: Principal, items: list[LeadData]) -> list[Lead]:
    """Create or update leads by external id, all or nothing."""
    principal.require(Role.OWNER, Role.MANAGER, Role.INTEGRATION)
    if len(items) > MAX_LEADS_PER_BATCH:
        raise DomainError(ErrorCode.BATCH_TOO_LARGE, f"at most {MAX_LEADS_PER_BATCH} leads per call", "leads")
    seen: set[str] = set()
    center_ids = {i.center_id for i in items if i.center_id is not None}
    centers = {c.id: c for c in await Center.filter(id__in=center_ids, organization_id=principal.org_id)}
    rows: list[dict] = []
    for index, item in enumerate(items):
        ext = _clean(item.external_id, "externalId", index, 200)
        if not ext:
            raise DomainError(ErrorCode.INVALID, "externalId must not be blank", ["leads", str(index), "externalId"])
        if ext in seen:
            raise DomainError(ErrorCode.DUPLICATE, "externalId repeated in the batch", ["leads", str(index), "externalId"])
        seen.add(ext)
        row: dict = {"external_id": ext}
        for attr, name, max_len in (
            ("name", "name", 200), ("phone", "phone", 40), ("whatsapp", "whatsapp", 40),
            ("push_token", "pushToken", 500), ("linkedin_url", "linkedinUrl", 500), ("twitter_url", "twitterUrl", 500),
        ):
            value = getattr(item, attr)
            if value is not None:
                row[attr] = _clean(value, name, index, max_len) or (None if attr != "name" else "")
        if item.email is not None:
            email = _clean(item.email, "email", index, 320)
            if email is not None and not EMAIL_RE.match(email):
                raise DomainError(ErrorCode.INVALID, "not a valid email address", ["leads", str(index), "email"])
            row["email"] = email.lower() if email else None
        if item.email_verified is not None:
            row["email_verified"] = item.email_verified
        if item.tags is not None:
            tags = sorted({t.strip() for t in item.tags if t and t.strip()})
            if any(len(t) > 64 or "," in t for t in tags) or len(tags) > 100:
                raise DomainError(ErrorCode.INVALID, "tags: at most 100, each ≤ 64 characters without commas", ["leads", str(index), "tags"])
            row["tags"] = tags
            row["tags_text"] = tags_text(tags)
        if item.center_given:
            if item.center_id is None:
                # A lead with no home center lies at organization level: a zone- or center-scoped caller can
                # neither create one nor move one of its leads there (out of its own scope).
                if principal.scope.kind != UnitKind.ORGANIZATION:
                    raise DomainError(ErrorCode.SCOPE_OUTSIDE, "a lead without a home center lies outside your "
                                      "scope: name a center inside it", ["leads", str(index), "centerId"])
                row["center_id"], row["zone_id"] = None, None
            else:
                center = centers.get(item.center_id)
                unit = center and Unit(UnitKind.CENTER, principal.org_id, center.id, center.zone_id)
                if unit is None or not principal.scope.contains(unit):
                    raise NotFound("center", ["leads", str(index), "centerId"])
                row["center_id"], row["zone_id"] = center.id, center.zone_id
        rows.append(row)

    async def write():
        await leads_locking.run(principal.org_id)
        existing = {
            lead.external_id: lead
            for lead in await Lead.filter(organization_id=principal.org_id, external_id__in=list(seen)).select_for_update(no_key=True)
        }
        out: list[Lead] = []
        to_create: list[Lead] = []
        for index, row in enumerate(rows):
            lead = existing.get(row["external_id"])
            if lead is not None:
                # A scoped principal may only change leads it can see.
                if principal.scope.kind != UnitKind.ORGANIZATION and not await Lead.filter(
                    principal.scope.lead_q(), id=lead.id
                ).exists():
                    raise DomainError(ErrorCode.DUPLICATE, "externalId belongs to a lead outside your scope",
                                      ["leads", str(index), "externalId"])
                for k, v in row.items():
                    setattr(lead, k, v)
                await lead.save()
                out.append(lead)
            else:
                if principal.scope.kind != UnitKind.ORGANIZATION and "center_id" not in row:
                    # A scoped principal's new leads live in its scope.
                    if principal.scope.kind == UnitKind.CENTER:
                        row["center_id"], row["zone_id"] = principal.scope.id, principal.scope.zone_id
                    else:
                        raise DomainError(ErrorCode.INVALID, "centerId is required for a zone-scoped caller",
                                          ["leads", str(index), "centerId"])
                lead = Lead(organization_id=principal.org_id, **row)
                to_create.append(lead)
                out.append(lead)
        if to_create:
            await Lead.bulk_create(to_create)
            created = {
                lead.external_id: lead
                for lead in await Lead.filter(
                    organization_id=principal.org_id, external_id__in=[lead.external_id for lead in to_create]
                )
            }
            out = [created.get(lead.external_id, lead) for lead in out]
        grown = sorted({cid for found in await leads_upserted.run(principal.org_id, [lead.id for lead in out])
                        for cid in found})
        return out, grown

    out, grown = await transaction(write)
    for campaign_id in grown:
        await bus.campaign_changed(principal.org_id, campaign_id, "recipients")
    return out
