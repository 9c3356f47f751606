"""Campaigns: settings, audience, state machine, clone (SPEC §2, §3)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timezone

from tortoise.expressions import Q, Subquery
from tortoise.transactions import in_transaction

from app import db
from app.audience.leads import LeadFilterData, filter_q
from app.core.errors import (
    Checks,
    DomainError,
    DomainErrors,
    ErrorCode,
    NotFound,
)
from app.core.hooks import Hook
from app.core.money import to_micros
from app.tenancy.access import Principal, Unit, resolve_unit
from app.tenancy.service import check_name
from models.campaigns import AudienceMember, Campaign, CampaignChannel, Recipient
from models.enums import (
    CampaignStatus,
    CampaignType,
    Channel,
    GoalType,
    RecipientGroup,
    StatusReason,
    UnitKind,
)
from models.leads import Lead
from models.tenancy import Center
from subscriptions import bus

S = CampaignStatus
FINAL = {S.COMPLETED, S.CANCELLED}

# action -> (allowed from, to). Launch's target depends on startAt.
TRANSITIONS: dict[str, tuple[set[CampaignStatus], CampaignStatus | None]] = {
    "launch": ({S.DRAFT}, None),
    "pause": ({S.LIVE}, S.PAUSED),
    "resume": ({S.PAUSED}, S.LIVE),
    "complete": ({S.LIVE, S.PAUSED}, S.COMPLETED),
    "cancel": ({S.DRAFT, S.SCHEDULED, S.LIVE, S.PAUSED}, S.CANCELLED),
}

# Hooks: higher domains register their in-transaction work here at start-up (app.wiring).
#: (campaign, lead_ids | None) — recipients joined the campaign (None: all of them, at launch);
#: runs after the campaign row holds its new status and sizes. The sender creates jobs, analytics
#: attributes the goal events these recipients already have.
recipients_added = Hook("campaigns.recipients_added")
#: (campaign) -> list of alerts raised — the allocated budget changed (billing raises alerts).
budget_changed = Hook("campaigns.budget_changed")
#: (campaign, old status) — inside `transition`, once the campaign holds its new status (outreach
#: follows which recipients are in a live campaign).
status_changed = Hook("campaigns.status_changed")
#: (campaign, changed setting names) — after the update's transaction (analytics recomputes the
#: campaign's figures when its goal or attribution windows changed).
settings_changed = Hook("campaigns.settings_changed")

# Settings that may change once a campaign has been launched.
EDITABLE_AFTER_LAUNCH = {"name", "description", "budget", "end_at", "attribution", "goal"}


@dataclass
class ChannelData:
    channel: Channel
    enabled: bool = True
    unit_cost: object = "0"
    credits_per_message: int = 0
    provider: str = "simulated"


@dataclass
class CampaignData:
    """Values given by the caller; `given` lists which ones (for updates)."""

    name: str | None = None
    description: str | None = None
    type: CampaignType | None = None
    owner_unit: tuple[UnitKind, int] | None = None
    channels: list[ChannelData] | None = None
    budget: object = None
    control_group_percent: int | None = None
    goal_type: GoalType | None = None
    goal_key: str | None = None
    start_at: datetime | None = None
    end_at: datetime | None = None
    view_window_hours: int | None = None
    goal_window_hours: int | None = None
    goal_after_view_window_hours: int | None = None
    given: set[str] = field(default_factory=set)


def campaigns_query(principal: Principal, unit: Unit | None = None):
    return Campaign.filter((unit or principal.scope).campaign_q())


async def visible_campaign(principal: Principal, campaign_id: int) -> Campaign | None:
    """One campaign the principal sees (None when missing or outside its scope): the same rows as
    `campaigns_query(principal).filter(id=campaign_id).first()`, read by one fixed statement (the
    hot read of `campaign(id)` and `node(id)`; issue 15 item 2). The scope predicate is
    `Unit.sql_filter`, the raw-SQL twin of `Unit.campaign_q`."""
    where, params = principal.scope.sql_filter("c")
    found = await db.fetch_models(
        Campaign, f"SELECT {db.select_columns(Campaign, 'c')} FROM \"campaign\" c WHERE c.id = ? AND {where} LIMIT 1",
        [campaign_id, *params])
    return found[0] if found else None


async def visible_campaigns_page(principal: Principal, limit: int, before_id: int | None = None, *,
                                 names: tuple[str, ...] | None = None) -> list:
    """The newest `limit` campaigns the principal sees (id < before_id): the same rows as
    `campaigns_query(principal).filter(id__lt=before_id).order_by("-id").limit(limit)`, by one fixed
    statement (the unfiltered `campaigns` list; issue 15 item 2). With `names` (attribute names, `id`
    among them), `db.partial_row_type` rows holding only those attributes, with the same values: for
    a caller that reads nothing else (read only, no model)."""
    query, params = visible_campaigns_page_sql(principal, limit, before_id, names)
    if names is not None:
        return await db.fetch_partial(Campaign, names, query, params)
    return await db.fetch_models(Campaign, query, params)


def visible_campaigns_page_sql(principal: Principal, limit: int, before_id: int | None = None,
                               names: tuple[str, ...] | None = None) -> tuple[str, list]:
    """The statement of `visible_campaigns_page` (the columns of `db.select_columns(Campaign, 'c')`, or
    of `db.select_columns_of(Campaign, 'c', names)`; newest first) and its parameters: for a higher
    domain that reads the page with more (kpis)."""
    where, params = principal.scope.sql_filter("c")
    if before_id is not None:
        where, params = f"{where} AND c.id < ?", [*params, before_id]
    columns = db.select_columns(Campaign, "c") if names is None else db.select_columns_of(Campaign, "c", names)
    return (f"SELECT {columns} FROM \"campaign\" c WHERE {where} ORDER BY c.id DESC LIMIT ?",
            [*params, int(limit)])


def in_visible_campaigns(model, principal: Principal, unit: Unit | None = None):
    """Rows of `model` (with a campaign_id) whose campaign the principal sees."""
    return model.filter(campaign_id__in=Subquery(campaigns_query(principal, unit).values("id")))


async def get_campaign(principal: Principal, campaign_id: int, field: str = "id", *, for_update: bool = False) -> Campaign:
    qs = campaigns_query(principal).filter(id=campaign_id)
    if for_update:
        qs = qs.select_for_update(no_key=True)
    campaign = await qs.first()
    if campaign is None:
        raise NotFound("campaign", field)
    return campaign


def _utc(value: datetime | None, fieldname: str) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise DomainError(ErrorCode.INVALID, "must carry a time zone offset (ISO-8601 with Z or +hh:mm)", fieldname)
    return value.astimezone(timezone.utc)


def _validate(data: CampaignData, current: Campaign | None, checks: Checks | None = None) -> dict:
    """Turn caller data into model fields, checking every value (every failure is reported)."""
    own = checks is None
    checks = checks or Checks()
    out: dict = {}
    g = data.given
    if "name" in g:
        out["name"] = checks(check_name, data.name, "name")
    if "description" in g:
        desc = (data.description or "").strip()
        if len(desc) > 5000:
            checks.fail(ErrorCode.TOO_LONG, "at most 5000 characters", "description")
        out["description"] = desc
    if "type" in g and data.type is not None:
        out["type"] = data.type
    if "budget" in g:
        out["budget_micros"] = checks(to_micros, data.budget, "budget")
    if "control_group_percent" in g and data.control_group_percent is not None:
        if not 0 <= data.control_group_percent <= 50:
            checks.fail(ErrorCode.OUT_OF_RANGE, "must be between 0 and 50", "controlGroupPercent")
        out["control_group_percent"] = data.control_group_percent
    if "goal" in g:
        out["goal_type"] = data.goal_type
        key = (data.goal_key or "").strip() or None
        if key and len(key) > 200:
            checks.fail(ErrorCode.TOO_LONG, "at most 200 characters", ["goal", "key"])
        out["goal_key"] = key
    if "start_at" in g:
        out["start_at"] = checks(_utc, data.start_at, "startAt")
    if "end_at" in g:
        out["end_at"] = checks(_utc, data.end_at, "endAt")
    if "attribution" in g:
        for attr, name in (("view_window_hours", "viewWindowHours"), ("goal_window_hours", "goalWindowHours"),
                           ("goal_after_view_window_hours", "goalAfterViewWindowHours")):
            value = getattr(data, attr)
            if value is not None:
                if not 1 <= value <= 24 * 366:
                    checks.fail(ErrorCode.OUT_OF_RANGE, "must be between 1 and 8784 hours", ["attribution", name])
                out[attr] = value
    start = out.get("start_at", current.start_at if current else None)
    end = out.get("end_at", current.end_at if current else None)
    if start and end and end <= start:
        checks.fail(ErrorCode.INVALID_RANGE, "`endAt` must be after the start of the range", "endAt")
    if own:
        checks.done()
    return out


def _channel_rows(channels: list[ChannelData]) -> list[dict]:
    seen: set[Channel] = set()
    rows = []
    for i, ch in enumerate(channels):
        if ch.channel in seen:
            raise DomainError(ErrorCode.DUPLICATE, "channel listed twice", ["channels", str(i), "channel"])
        seen.add(ch.channel)
        if ch.credits_per_message is None or not 0 <= ch.credits_per_message <= 1_000_000:
            raise DomainError(ErrorCode.OUT_OF_RANGE, "must be between 0 and 1000000", ["channels", str(i), "creditsPerMessage"])
        provider = check_name(ch.provider or "simulated", "provider", 64)
        rows.append({
            "channel": ch.channel,
            "enabled": bool(ch.enabled),
            "unit_cost_micros": to_micros(ch.unit_cost, f"channels.{i}.unitCost"),
            "credits_per_message": ch.credits_per_message,
            "provider": provider,
        })
    return rows


def _owner_fields(unit: Unit) -> dict:
    return {
        "owner_kind": unit.kind,
        "zone_id": unit.zone_id if unit.kind != UnitKind.ORGANIZATION else None,
        "center_id": unit.id if unit.kind == UnitKind.CENTER else None,
    }


async def create_campaign(principal: Principal, data: CampaignData) -> Campaign:
    principal.require_write()
    data.given |= {"name", "description", "type", "budget", "control_group_percent", "goal", "start_at", "end_at", "attribution"}
    checks = Checks()
    values = _validate(data, None, checks)
    if data.channels is None or not data.channels:
        checks.fail(ErrorCode.INVALID, "at least one channel is required", "channels")
    else:
        channel_rows = checks(_channel_rows, data.channels)
    checks.done()
    unit = await resolve_unit(principal, *(data.owner_unit or (None, None)), field="ownerUnitId")
    async with in_transaction():
        campaign = await Campaign.create(
            organization_id=principal.org_id, created_by_id=principal.user_id, **_owner_fields(unit), **values
        )
        await CampaignChannel.bulk_create([CampaignChannel(campaign=campaign, **row) for row in channel_rows])
    return campaign


async def update_campaign(principal: Principal, campaign_id: int, data: CampaignData) -> tuple[Campaign, list]:
    principal.require_write()
    values = _validate(data, None)
    async with in_transaction():
        campaign = await get_campaign(principal, campaign_id, for_update=True)
        if campaign.status in FINAL:
            raise DomainError(ErrorCode.CAMPAIGN_LOCKED, f"a {campaign.status.value} campaign cannot change", "id")
        values = _validate(data, campaign)
        if campaign.status != S.DRAFT:
            locked = data.given - EDITABLE_AFTER_LAUNCH - ({"channels"} if data.channels is None else set())
            if data.owner_unit is not None:
                locked.add("ownerUnitId")
            if locked:
                message = f"only {', '.join(sorted(EDITABLE_AFTER_LAUNCH))} can change after launch"
                raise DomainErrors([DomainError(ErrorCode.CAMPAIGN_LOCKED, message, name) for name in sorted(locked)])
        if data.owner_unit is not None:
            unit = await resolve_unit(principal, *data.owner_unit, field="ownerUnitId")
            values.update(_owner_fields(unit))
        for k, v in values.items():
            setattr(campaign, k, v)
        await campaign.save()
        if data.channels is not None:
            rows = _channel_rows(data.channels)
            await CampaignChannel.filter(campaign_id=campaign.id).delete()
            await CampaignChannel.bulk_create([CampaignChannel(campaign=campaign, **row) for row in rows])
        alerts = [a for found in await budget_changed.run(campaign) for a in found] \
            if "budget_micros" in values else []
    await settings_changed.run(campaign, set(values))
    await bus.campaign_changed(campaign.organization_id, campaign.id, "settings")
    await bus.budget_alerts_raised(alerts)
    return campaign, alerts


# ---------------------------------------------------------------- audience


async def set_audience(principal: Principal, campaign_id: int, lead_ids: list[int] | None,
                       lead_external_ids: list[str] | None, flt: LeadFilterData | None) -> Campaign:
    principal.require_write()
    ids = set(lead_ids or [])
    if len(ids) + len(lead_external_ids or []) > 100_000:
        raise DomainError(ErrorCode.BATCH_TOO_LARGE, "at most 100000 listed leads", "leadIds")
    async with in_transaction():
        campaign = await get_campaign(principal, campaign_id, "campaignId", for_update=True)
        if campaign.status != S.DRAFT:
            raise DomainError(ErrorCode.CAMPAIGN_LOCKED, "the audience can only change on a draft", "campaignId")
        owner = campaign_unit(campaign)
        visible = Lead.filter(owner.lead_q())
        found = set(await visible.filter(id__in=list(ids)).values_list("id", flat=True)) if ids else set()
        if ids - found:
            raise NotFound("lead", "leadIds")
        if lead_external_ids:
            by_ext = dict(await visible.filter(external_id__in=list(lead_external_ids)).values_list("external_id", "id"))
            missing = [e for e in lead_external_ids if e not in by_ext]
            if missing:
                raise DomainError(ErrorCode.NOT_FOUND, f"lead not found: {missing[0]}", "leadExternalIds")
            found |= set(by_ext.values())
        if flt and flt.center_ids:
            centers = await Center.filter(id__in=flt.center_ids, organization_id=principal.org_id)
            if len(centers) != len(set(flt.center_ids)) or any(
                not owner.contains(Unit(UnitKind.CENTER, principal.org_id, c.id, c.zone_id)) for c in centers
            ):
                raise NotFound("center", ["filter", "centerIds"])
        campaign.audience_filter = _filter_to_json(flt) if flt else None
        await AudienceMember.filter(campaign_id=campaign.id).delete()
        await AudienceMember.bulk_create([AudienceMember(campaign_id=campaign.id, lead_id=i) for i in sorted(found)])
        campaign.audience_size = len(await _audience_lead_ids(campaign))
        await campaign.save(update_fields=["audience_filter", "audience_size", "updated_at"])
    return campaign


def _filter_to_json(flt: LeadFilterData) -> dict:
    return {
        "center_ids": flt.center_ids, "zone_ids": flt.zone_ids, "tags": flt.tags,
        "verified_only": flt.verified_only, "has_channel": [c.value for c in flt.has_channel or []],
        "search": flt.search, "outreach": flt.outreach,
    }


def filter_from_json(data: dict | None) -> LeadFilterData | None:
    if not data:
        return None
    return LeadFilterData(
        center_ids=data.get("center_ids"), zone_ids=data.get("zone_ids"), tags=data.get("tags"),
        verified_only=bool(data.get("verified_only")), has_channel=[Channel(c) for c in data.get("has_channel") or []],
        search=data.get("search"), outreach=data.get("outreach") or None,
    )


def campaign_unit(campaign: Campaign) -> Unit:
    if campaign.owner_kind == UnitKind.CENTER:
        return Unit(UnitKind.CENTER, campaign.organization_id, campaign.center_id, campaign.zone_id)
    if campaign.owner_kind == UnitKind.ZONE:
        return Unit(UnitKind.ZONE, campaign.organization_id, campaign.zone_id, campaign.zone_id)
    return Unit(UnitKind.ORGANIZATION, campaign.organization_id, campaign.organization_id)



async def _audience_lead_ids(campaign: Campaign) -> list[int]:
    """The audience: filter matches ∪ listed leads, inside the owner unit."""
    owner = campaign_unit(campaign)
    ids: set[int] = set(await AudienceMember.filter(campaign_id=campaign.id).values_list("lead_id", flat=True))
    flt = filter_from_json(campaign.audience_filter)
    if flt is not None:
        ids |= set(await Lead.filter(owner.lead_q()).filter(filter_q(flt)).values_list("id", flat=True))
    return sorted(ids)


def assignment_hash(campaign_id: int, lead_id: int) -> str:
    return hashlib.sha256(f"{campaign_id}:{lead_id}".encode()).hexdigest()


def assign_groups(campaign_id: int, lead_ids: list[int], control_percent: int) -> dict[int, RecipientGroup]:
    """Deterministic split: order by a stable hash, the first round(n·p) are control."""
    ordered = sorted(lead_ids, key=lambda lead_id: assignment_hash(campaign_id, lead_id))
    n_control = round(len(ordered) * control_percent / 100)
    return {lead_id: (RecipientGroup.CONTROL if i < n_control else RecipientGroup.TREATMENT)
            for i, lead_id in enumerate(ordered)}


async def _resolve_recipients(campaign: Campaign) -> None:
    lead_ids = await _audience_lead_ids(campaign)
    groups = assign_groups(campaign.id, lead_ids, campaign.control_group_percent)
    await Recipient.bulk_create(
        [Recipient(campaign_id=campaign.id, lead_id=lead_id, group=group) for lead_id, group in groups.items()],
        batch_size=1000,
    )
    campaign.audience_size = len(groups)
    campaign.control_size = sum(1 for g in groups.values() if g == RecipientGroup.CONTROL)
    campaign.reach = campaign.audience_size - campaign.control_size


async def _growing_campaigns(org_id: int) -> list[Campaign]:
    """The running ALWAYS_ON campaigns of an organization, locked in id order (the global lock order:
    campaigns before leads, see app.db)."""
    return await Campaign.filter(
        organization_id=org_id, type=CampaignType.ALWAYS_ON, status__in=[S.SCHEDULED, S.LIVE, S.PAUSED],
    ).order_by("id").select_for_update(no_key=True)


async def lock_growing_campaigns(org_id: int) -> None:
    """audience.leads_locking: take the campaign locks a lead upsert will need before it locks any lead."""
    await _growing_campaigns(org_id)


async def add_matching_recipients(org_id: int, lead_ids: list[int]) -> list[int]:
    """ALWAYS_ON campaigns keep adding leads that match their audience filter.

    Runs in the transaction that created or changed the leads. The control
    share is kept exact: a newcomer joins CONTROL while the control group is
    below round(n × percent) for the new size n. Returns the campaigns changed.
    """
    if not lead_ids:
        return []
    changed = []
    running = await _growing_campaigns(org_id)
    for campaign in running:
        flt = filter_from_json(campaign.audience_filter)
        if flt is None:
            continue  # an explicit list does not grow by itself
        owner = campaign_unit(campaign)
        matching = await Lead.filter(owner.lead_q()).filter(filter_q(flt)).filter(id__in=lead_ids).values_list("id", flat=True)
        existing = set(await Recipient.filter(campaign_id=campaign.id, lead_id__in=list(matching)).values_list("lead_id", flat=True))
        new_ids = sorted(set(matching) - existing, key=lambda lead_id: assignment_hash(campaign.id, lead_id))
        if not new_ids:
            continue
        rows = []
        size, control = campaign.audience_size, campaign.control_size
        for lead_id in new_ids:
            size += 1
            group = RecipientGroup.TREATMENT
            if control < round(size * campaign.control_group_percent / 100):
                group, control = RecipientGroup.CONTROL, control + 1
            rows.append(Recipient(campaign_id=campaign.id, lead_id=lead_id, group=group))
        await Recipient.bulk_create(rows, batch_size=1000)
        await Campaign.filter(id=campaign.id).update(audience_size=size, control_size=control, reach=size - control)
        campaign.audience_size, campaign.control_size, campaign.reach = size, control, size - control
        await recipients_added.run(campaign, [r.lead_id for r in rows])
        changed.append(campaign.id)
    return changed


# ---------------------------------------------------------------- state machine


async def transition(principal: Principal, campaign_id: int, action: str) -> Campaign:
    principal.require_write()
    allowed, target = TRANSITIONS[action]
    now = datetime.now(timezone.utc)
    async with in_transaction():
        campaign = await get_campaign(principal, campaign_id, for_update=True)
        if campaign.status not in allowed:
            raise DomainError(
                ErrorCode.ILLEGAL_TRANSITION,
                f"cannot {action} a {campaign.status.value} campaign", "id",
            )
        update: dict = {}
        if action == "launch":
            channels = await CampaignChannel.filter(campaign_id=campaign.id, enabled=True).count()
            if not channels:
                raise DomainError(ErrorCode.NO_ENABLED_CHANNEL, "enable at least one channel before launch", "id")
            if campaign.end_at and campaign.end_at <= now:
                raise DomainError(ErrorCode.INVALID, "endAt is in the past", "id")
            await _resolve_recipients(campaign)
            if campaign.type == CampaignType.SCHEDULED and campaign.audience_size == 0:
                raise DomainError(ErrorCode.EMPTY_AUDIENCE, "the audience is empty; set one with audienceSet", "id")
            target = S.SCHEDULED if campaign.start_at and campaign.start_at > now else S.LIVE
            update.update(launched_at=now, audience_size=campaign.audience_size,
                          reach=campaign.reach, control_size=campaign.control_size)
        update["status"] = target
        update["status_reason"] = StatusReason.MANUAL if target == S.PAUSED else None
        if target == S.LIVE and campaign.live_since is None:
            update["live_since"] = now
        if target in FINAL:
            update["ended_at"] = now
        # Conditional update: a concurrent transition cannot slip in between.
        changed = await Campaign.filter(id=campaign.id, status=campaign.status).update(**update, updated_at=now)
        if not changed:
            raise DomainError(ErrorCode.ILLEGAL_TRANSITION, "the campaign changed concurrently; retry", "id")
        old_status = campaign.status
        for k, v in update.items():
            setattr(campaign, k, v)
        await status_changed.run(campaign, old_status)
        if action == "launch":
            await recipients_added.run(campaign, None)
    await bus.campaign_changed(campaign.organization_id, campaign.id, "status")
    return campaign


async def pause_for_reason(campaign_id: int, reason: StatusReason) -> bool:
    """The system pauses a live campaign by itself (budget or credits); call inside the transaction."""
    return bool(await Campaign.filter(id=campaign_id, status=S.LIVE).update(
        status=S.PAUSED, status_reason=reason, updated_at=datetime.now(timezone.utc)))


async def promote_due(now: datetime | None = None) -> list[int]:
    """SCHEDULED campaigns whose startAt has come go LIVE; LIVE/PAUSED past endAt complete."""
    now = now or datetime.now(timezone.utc)
    changed: list[int] = []
    due = await Campaign.filter(status=S.SCHEDULED, start_at__lte=now).values_list("id", flat=True)
    for cid in due:
        if await Campaign.filter(id=cid, status=S.SCHEDULED).update(status=S.LIVE, live_since=now, updated_at=now):
            changed.append(cid)
    ended = await Campaign.filter(Q(status=S.LIVE) | Q(status=S.PAUSED) | Q(status=S.SCHEDULED),
                                  end_at__lte=now).values_list("id", flat=True)
    for cid in ended:
        if await Campaign.filter(id=cid, status__in=[S.LIVE, S.PAUSED, S.SCHEDULED]).update(
                status=S.COMPLETED, ended_at=now, updated_at=now):
            changed.append(cid)
    for cid in changed:
        org_id = await Campaign.filter(id=cid).values_list("organization_id", flat=True)
        await bus.campaign_changed(org_id[0], cid, "status")
    return changed


async def clone_campaign(principal: Principal, campaign_id: int, name: str | None) -> Campaign:
    principal.require_write()
    source = await get_campaign(principal, campaign_id)
    new_name = check_name(name, "name") if name is not None else f"{source.name} (copy)"[:200]
    copied = {
        f: getattr(source, f) for f in (
            "organization_id", "description", "type", "owner_kind", "zone_id", "center_id", "control_group_percent",
            "goal_type", "goal_key", "view_window_hours", "goal_window_hours", "goal_after_view_window_hours",
            "start_at", "end_at", "budget_micros", "audience_filter",
        )
    }
    async with in_transaction():
        clone = await Campaign.create(name=new_name, status=S.DRAFT, cloned_from_id=source.id,
                                      created_by_id=principal.user_id, **copied)
        channels = await CampaignChannel.filter(campaign_id=source.id)
        await CampaignChannel.bulk_create([
            CampaignChannel(campaign_id=clone.id, channel=c.channel, enabled=c.enabled, unit_cost_micros=c.unit_cost_micros,
                            credits_per_message=c.credits_per_message, provider=c.provider) for c in channels
        ])
        members = await AudienceMember.filter(campaign_id=source.id).values_list("lead_id", flat=True)
        if not members and source.status != S.DRAFT and source.audience_filter is None:
            # A launched campaign's explicit audience lives in its recipients.
            members = await Recipient.filter(campaign_id=source.id).values_list("lead_id", flat=True)
        await AudienceMember.bulk_create([AudienceMember(campaign_id=clone.id, lead_id=i) for i in members], batch_size=1000)
        clone.audience_size = len(await _audience_lead_ids(clone))
        await clone.save(update_fields=["audience_size"])
    return clone


# ---------------------------------------------------------------- listing


@dataclass
class CampaignFilterData:
    status: list[CampaignStatus] | None = None
    type: CampaignType | None = None
    channel: Channel | None = None
    owner_unit: tuple[UnitKind, int] | None = None
    text: str | None = None


async def campaigns_filtered(principal: Principal, flt: CampaignFilterData | None):
    unit = None
    if flt and flt.owner_unit:
        unit = await resolve_unit(principal, *flt.owner_unit, field="filter.ownerUnitId")
    qs = campaigns_query(principal, unit)
    if flt is None:
        return qs
    if flt.owner_unit and unit is not None:
        # Owner unit filter: exactly campaigns created from that unit.
        qs = qs.filter(**_exact_owner(unit))
    if flt.status:
        qs = qs.filter(status__in=flt.status)
    if flt.type:
        qs = qs.filter(type=flt.type)
    if flt.channel:
        qs = qs.filter(id__in=Subquery(CampaignChannel.filter(channel=flt.channel, enabled=True).values("campaign_id")))
    if flt.text and flt.text.strip():
        t = flt.text.strip()
        qs = qs.filter(Q(name__icontains=t) | Q(description__icontains=t))
    return qs


def _exact_owner(unit: Unit) -> dict:
    if unit.kind == UnitKind.ORGANIZATION:
        return {"owner_kind": UnitKind.ORGANIZATION}
    if unit.kind == UnitKind.ZONE:
        return {"owner_kind": UnitKind.ZONE, "zone_id": unit.id}
    return {"owner_kind": UnitKind.CENTER, "center_id": unit.id}
