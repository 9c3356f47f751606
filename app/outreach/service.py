"""Outreach operations: steps, marking steps done (and undo), outreach events, the scheduler
tick, leads/campaign KPIs and the rebuild. Each write is one transaction; bus messages after
the commit (`what: "outreach"`)."""

from __future__ import annotations

import asyncio
import hashlib
import random
from calendar import monthrange
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import orjson
from tortoise.expressions import Subquery
from tortoise.transactions import in_transaction

from app.db import db_date, execute, fetch, for_update, in_list, is_retryable
from app.outreach import state
from app.outreach.rules import (ACTIONS_OF, MANUAL, OutreachEventType, StepAction, StepCondition, StepKind)
from app.tenancy.access import Principal, Unit
from app.campaigns.service import campaigns_query, get_campaign
from app.core.errors import DomainError, ErrorCode, NotFound, has_nul
from app.audience.leads import leads_query
from models.campaigns import Campaign
from models.enums import CampaignStatus, RecipientGroup, Role
from models.outreach import (KPI_COLUMNS, OutreachAction, OutreachStep, RecipientStep)
from subscriptions import bus

UNDO_WINDOW = timedelta(minutes=10)
MAX_STEPS = 20


async def publish(org_id: int, campaign_ids) -> None:
    for cid in sorted(campaign_ids):
        await bus.campaign_changed(org_id, cid, "outreach")
    await bus.publish(bus.topics.organization(org_id), {"what": "outreach", "organizationId": org_id})


async def _retrying(fn):
    for attempt in range(8):
        try:
            return await fn()
        except Exception as exc:  # noqa: BLE001 - only races are retried
            if attempt == 7 or not is_retryable(exc):
                raise
            await asyncio.sleep(random.uniform(0.005, 0.03) * (attempt + 1))


# ---------------------------------------------------------------- steps


@dataclass
class StepData:
    kind: StepKind
    day_offset: int = 0
    condition: StepCondition = StepCondition.NONE
    note: str = ""
    id: int | None = None


async def steps_of(campaign_id: int) -> list[OutreachStep]:
    return await OutreachStep.filter(campaign_id=campaign_id).order_by("position")


async def set_steps(principal: Principal, campaign_id: int, items: list[StepData]) -> list[OutreachStep]:
    """Replace a campaign's steps. Before launch: anything. After launch: a step that is due for a
    recipient (or done) is kept as it is (same id, kind, day and condition, CAMPAIGN_LOCKED
    otherwise); future steps may change, move or go; a step added after launch applies to the
    recipients whose day for it is today or later (those already past it skip it)."""
    principal.require_write()
    if len(items) > MAX_STEPS:
        raise DomainError(ErrorCode.OUT_OF_RANGE, f"at most {MAX_STEPS} steps", "steps")
    emails = 0
    for i, s in enumerate(items):
        if not 0 <= s.day_offset <= 365:
            raise DomainError(ErrorCode.OUT_OF_RANGE, "dayOffset must be between 0 and 365", ["steps", str(i), "dayOffset"])
        if len(s.note or "") > 500:
            raise DomainError(ErrorCode.TOO_LONG, "note: at most 500 characters", ["steps", str(i), "note"])
        if s.kind == StepKind.EMAIL:
            emails += 1
            if s.condition != StepCondition.NONE:
                raise DomainError(ErrorCode.INVALID, "an email step has no condition", ["steps", str(i), "condition"])
        if i and s.day_offset < items[i - 1].day_offset:
            raise DomainError(ErrorCode.INVALID, "steps are ordered: dayOffset never decreases",
                              ["steps", str(i), "dayOffset"])
    if emails > 1:
        raise DomainError(ErrorCode.INVALID, "one email step per campaign (the sender sends one email per recipient "
                                             "and campaign)", "steps")

    async def go():
        async with in_transaction():
            campaign = await get_campaign(principal, campaign_id, "campaignId", for_update=True)
            org_id = campaign.organization_id
            today = await state.org_today(org_id)
            current = {s.id: s for s in await steps_of(campaign.id)}
            launched = campaign.status != CampaignStatus.DRAFT
            locked: set[int] = set()
            if launched and current:
                sin, sparams = in_list("step_id", sorted(current))
                locked = {r["step_id"] for r in await fetch(
                    f"SELECT DISTINCT step_id FROM outreach_recipient_step WHERE {sin} AND (due_day <= ? OR touched = ?)",
                    [*sparams, today, True])}
            if launched and any(s.kind == StepKind.EMAIL for s in items) and not any(
                    c.kind == StepKind.EMAIL for c in current.values()):
                raise DomainError(ErrorCode.CAMPAIGN_LOCKED, "an email step cannot be added after launch", "steps")
            kept: set[int] = set()
            for i, s in enumerate(items):
                if s.id is not None:
                    if s.id not in current:
                        raise NotFound("step", ["steps", str(i), "id"])
                    if s.id in kept:
                        raise DomainError(ErrorCode.DUPLICATE, "step listed twice", ["steps", str(i), "id"])
                    kept.add(s.id)
                    old = current[s.id]
                    if s.id in locked and (old.kind != s.kind.value or old.day_offset != s.day_offset
                                           or old.condition != s.condition.value):
                        raise DomainError(ErrorCode.CAMPAIGN_LOCKED, "this step is already due or done for some "
                                          "recipients: it cannot change", ["steps", str(i)])
            for sid in locked - kept:
                raise DomainError(ErrorCode.CAMPAIGN_LOCKED, "a step already due or done cannot be removed", "steps")
            removed = [sid for sid in current if sid not in kept]
            out = []
            for position, s in enumerate(items):
                if s.id is not None:
                    await OutreachStep.filter(id=s.id).update(position=position, kind=s.kind.value,
                                                              day_offset=s.day_offset, condition=s.condition.value,
                                                              note=s.note or "")
                else:
                    await OutreachStep.create(organization_id=org_id, campaign_id=campaign.id, position=position,
                                              kind=s.kind.value, day_offset=s.day_offset, condition=s.condition.value,
                                              note=s.note or "", applies_from=today if launched else None)
            pairs = set()
            if launched:
                pairs = {(campaign.id, lead) for lead in await fetch_recipient_leads(campaign.id)}
            # Rows of removed steps go through the diff (the counters move), then the steps go.
            moved = await state.recompute(org_id, pairs, today=today, hidden_steps=set(removed)) if pairs else set()
            if removed:
                await OutreachStep.filter(id__in=removed).delete()
            out = await steps_of(campaign.id)
            return org_id, out, moved

    org_id, out, moved = await _retrying(go)
    await publish(org_id, moved | {campaign_id})
    return out


async def fetch_recipient_leads(campaign_id: int) -> list[int]:
    return [r["lead_id"] for r in await fetch("SELECT lead_id FROM outreach_recipient WHERE campaign_id = ?",
                                              [campaign_id])]


# ---------------------------------------------------------------- recipients, live campaigns


async def add_recipients(campaign_id: int, lead_ids: list[int] | None) -> set[str]:
    """The sender is creating jobs for these treatment recipients (inside the launch or growth
    transaction): they start the sequence, and count as active if the campaign counts as live.
    Returns the channels outreach sends itself (EMAIL when the campaign has an email step)."""
    campaign = await Campaign.get(id=campaign_id)
    org_id = campaign.organization_id
    if lead_ids is None:
        leads = [r["lead_id"] for r in await fetch(
            'SELECT lead_id FROM recipient WHERE campaign_id = ? AND "group" = ?',
            [campaign_id, RecipientGroup.TREATMENT.value])]
    else:
        leads = sorted(set(lead_ids))
    await state.ensure_leads(org_id, leads)
    counted = await fetch("SELECT counted_live FROM outreach_campaign WHERE campaign_id = ?"
                          + for_update(), [campaign_id])
    if counted and counted[0]["counted_live"]:
        await state.change_leads(org_id, {lead: {"live": ("+", 1)} for lead in leads})
    steps = await steps_of(campaign_id)
    if not steps:
        return set()
    tz = ZoneInfo((await fetch("SELECT timezone FROM organization WHERE id = ?", [org_id]))[0]["timezone"])
    now = datetime.now(timezone.utc)
    start = max(now, campaign.start_at or now).astimezone(tz).date()
    for lead in leads:
        await execute("INSERT INTO outreach_recipient (organization_id, campaign_id, lead_id, start_day) "
                      "VALUES (?, ?, ?, ?) ON CONFLICT (campaign_id, lead_id) DO NOTHING",
                      [org_id, campaign_id, lead, start])
    await state.recompute(org_id, {(campaign_id, lead) for lead in leads})
    return {"EMAIL"} if any(s.kind == StepKind.EMAIL.value for s in steps) else set()


async def sync_live(campaign_id: int) -> bool:
    """Make the leads' `live` figures agree with the campaign's status (under its outreach row
    lock); re-derive its recipients (action required needs a LIVE campaign). True if it moved."""
    rows = await fetch("SELECT organization_id, status FROM campaign WHERE id = ?", [campaign_id])
    if not rows:
        return False
    org_id, is_live = rows[0]["organization_id"], rows[0]["status"] == CampaignStatus.LIVE.value
    await execute("INSERT INTO outreach_campaign (campaign_id, organization_id, counted_live) VALUES (?, ?, ?) "
                  "ON CONFLICT (campaign_id) DO NOTHING", [campaign_id, org_id, False])
    counted = bool((await fetch("SELECT counted_live FROM outreach_campaign WHERE campaign_id = ?"
                                + for_update(), [campaign_id]))[0]["counted_live"])
    if counted == is_live:
        return False
    await execute("UPDATE outreach_campaign SET counted_live = ? WHERE campaign_id = ?", [is_live, campaign_id])
    leads = [r["lead_id"] for r in await fetch('SELECT lead_id FROM recipient WHERE campaign_id = ? AND "group" = ?',
                                               [campaign_id, RecipientGroup.TREATMENT.value])]
    await state.change_leads(org_id, {lead: {"live": ("+", 1 if is_live else -1)} for lead in leads})
    seq = await fetch_recipient_leads(campaign_id)
    if seq:
        await state.recompute(org_id, {(campaign_id, lead) for lead in seq})
    return True


# ---------------------------------------------------------------- manual actions


def visible_steps(principal: Principal, unit: Unit | None = None):
    """Recipient steps of the leads the principal sees (access: the leads' scope)."""
    return RecipientStep.filter(organization_id=principal.org_id,
                                lead_id__in=Subquery(leads_query(principal, unit=unit).values("id")))


@dataclass
class DoneResult:
    recipient_step: RecipientStep
    action: OutreachAction
    already: bool = False


async def mark_done(principal: Principal, recipient_step_id: int, action: StepAction,
                    now: datetime | None = None) -> DoneResult:
    """Record that a person did a manual step. Idempotent: a step already done (by anyone, at
    the same time included) returns the recorded action and counts once."""
    principal.require_write()
    now = now or datetime.now(timezone.utc)

    async def go():
        async with in_transaction():
            qs = visible_steps(principal).filter(id=recipient_step_id)
            rs = await qs.select_for_update(no_key=True).first()
            if rs is None:
                raise NotFound("recipient step", "recipientStepId")
            step = await OutreachStep.get(id=rs.step_id)
            kind = StepKind(step.kind)
            if kind not in MANUAL:
                raise DomainError(ErrorCode.INVALID, "email steps are sent by the sender, not marked done", "action")
            if action not in ACTIONS_OF[kind]:
                raise DomainError(ErrorCode.INVALID, f"{action.value} is not an action of a {kind.value} step", "action")
            current = await OutreachAction.filter(recipient_step_id=rs.id, undone_at=None).first()
            if current is not None:
                return rs, current, True, set()
            a = await OutreachAction.create(organization_id=rs.organization_id, recipient_step_id=rs.id,
                                            action=action.value, done_by_id=principal.user_id or None, done_at=now)
            await RecipientStep.filter(id=rs.id).update(done_at=now, done_by_id=principal.user_id or None)
            moved = await state.recompute(rs.organization_id, {(rs.campaign_id, rs.lead_id)})
            return await RecipientStep.get(id=rs.id), a, False, moved | {rs.campaign_id}

    rs, a, already, moved = await _retrying(go)
    if moved:
        await publish(principal.org_id, moved)
    return DoneResult(rs, a, already)


async def undo(principal: Principal, action_id: int, now: datetime | None = None) -> RecipientStep:
    """Undo a mark-done within the undo window (10 minutes)."""
    principal.require_write()
    now = now or datetime.now(timezone.utc)

    async def go():
        async with in_transaction():
            a = await OutreachAction.filter(
                id=action_id, organization_id=principal.org_id,
                recipient_step_id__in=Subquery(visible_steps(principal).values("id"))).first()
            if a is None:
                raise NotFound("action", "actionId")
            rs_q = RecipientStep.filter(id=a.recipient_step_id)
            rs = await rs_q.select_for_update(no_key=True).first()
            a = await OutreachAction.get(id=action_id)
            if a.undone_at is not None:
                return rs, set()  # already undone: nothing more to do
            if now - a.done_at > UNDO_WINDOW:
                raise DomainError(ErrorCode.ILLEGAL_TRANSITION, "the undo window (10 minutes) has passed", "actionId")
            await OutreachAction.filter(id=a.id, undone_at=None).update(undone_at=now,
                                                                       undone_by_id=principal.user_id or None)
            await RecipientStep.filter(id=rs.id).update(done_at=None, done_by_id=None)
            moved = await state.recompute(rs.organization_id, {(rs.campaign_id, rs.lead_id)})
            return await RecipientStep.get(id=rs.id), moved | {rs.campaign_id}

    rs, moved = await _retrying(go)
    if moved:
        await publish(principal.org_id, moved)
    return rs


# ---------------------------------------------------------------- outreach events


@dataclass
class OutreachEventData:
    idempotency_key: str
    type: OutreachEventType
    campaign_id: int | None
    occurred_at: datetime
    lead_id: int | None = None
    lead_external_id: str | None = None
    invalid: str | None = None


@dataclass
class EventsResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: list = field(default_factory=list)  # (index, code, message)


def _hash(d: OutreachEventData) -> str:
    return hashlib.sha256(orjson.dumps({
        "type": d.type.value, "campaignId": d.campaign_id, "leadId": d.lead_id, "leadExternalId": d.lead_external_id,
        "occurredAt": d.occurred_at.isoformat()}, option=orjson.OPT_SORT_KEYS)).hexdigest()


async def ingest_events(principal: Principal, events: list[OutreachEventData], max_batch: int = 1000) -> EventsResult:
    principal.require_ingest()
    if len(events) > max_batch:
        raise DomainError(ErrorCode.BATCH_TOO_LARGE, f"at most {max_batch} events per call", "events")
    out = EventsResult()
    valid: list[tuple[int, OutreachEventData, str]] = []
    seen: dict[str, str] = {}
    for i, d in enumerate(events):
        if d.invalid:
            out.rejected.append((i, ErrorCode.NOT_FOUND, d.invalid))
            continue
        nul = [name for name, v in (("idempotencyKey", d.idempotency_key), ("leadExternalId", d.lead_external_id))
               if has_nul(v)]
        if nul:  # PostgreSQL text cannot hold it
            out.rejected.append((i, ErrorCode.INVALID, f"{nul[0]} must not contain NUL characters"))
            continue
        if not d.idempotency_key or not d.idempotency_key.strip() or len(d.idempotency_key) > 200:
            out.rejected.append((i, ErrorCode.INVALID, "idempotencyKey: 1 to 200 characters"))
            continue
        if d.occurred_at.tzinfo is None:
            out.rejected.append((i, ErrorCode.INVALID, "occurredAt must carry a time zone offset"))
            continue
        d.occurred_at = d.occurred_at.astimezone(timezone.utc)
        if d.occurred_at.year < 2000 or d.occurred_at > datetime.now(timezone.utc) + timedelta(days=1):
            out.rejected.append((i, ErrorCode.OUT_OF_RANGE, "occurredAt is out of range"))
            continue
        if d.campaign_id is None or (d.lead_id is None and not d.lead_external_id):
            out.rejected.append((i, ErrorCode.INVALID, "campaignId and leadId or leadExternalId are required"))
            continue
        h = _hash(d)
        if d.idempotency_key in seen:
            if seen[d.idempotency_key] == h:
                out.duplicates += 1
            else:
                out.rejected.append((i, ErrorCode.IDEMPOTENCY_CONFLICT, "idempotencyKey reused with a different payload"))
            continue
        seen[d.idempotency_key] = h
        valid.append((i, d, h))
    if not valid:
        return out

    async def go():
        res = EventsResult()
        async with in_transaction():
            org_id = principal.org_id
            cids = {d.campaign_id for _, d, _ in valid}
            campaigns = set(await campaigns_query(principal).filter(id__in=list(cids)).values_list("id", flat=True))
            ids = {d.lead_id for _, d, _ in valid if d.lead_id}
            exts = {d.lead_external_id for _, d, _ in valid if d.lead_external_id}
            by_id = set(await leads_query(principal).filter(id__in=list(ids)).values_list("id", flat=True)) if ids else set()
            by_ext = dict(await leads_query(principal).filter(external_id__in=list(exts)).values_list(
                "external_id", "id")) if exts else {}
            pairs = set()
            for i, d, h in valid:
                lead = d.lead_id if d.lead_id in by_id else by_ext.get(d.lead_external_id) if d.lead_external_id else None
                if d.campaign_id not in campaigns:
                    res.rejected.append((i, ErrorCode.NOT_FOUND, "campaign not found"))
                    continue
                if lead is None:
                    res.rejected.append((i, ErrorCode.NOT_FOUND, "lead not found"))
                    continue
                if not await fetch("SELECT 1 FROM outreach_recipient WHERE campaign_id = ? AND lead_id = ?",
                                   [d.campaign_id, lead]):
                    res.rejected.append((i, ErrorCode.NOT_FOUND, "the lead is not in the campaign's sequence"))
                    continue
                rows = await fetch(
                    "INSERT INTO outreach_event (organization_id, campaign_id, lead_id, idempotency_key, payload_hash, "
                    "type, occurred_at, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (organization_id, idempotency_key) DO NOTHING RETURNING id",
                    [org_id, d.campaign_id, lead, d.idempotency_key, h, d.type.value, d.occurred_at,
                     datetime.now(timezone.utc)])
                if rows:
                    res.accepted += 1
                    pairs.add((d.campaign_id, lead))
                    continue
                stored = await fetch("SELECT payload_hash FROM outreach_event WHERE organization_id = ? AND "
                                     "idempotency_key = ?", [org_id, d.idempotency_key])
                if stored and stored[0]["payload_hash"] == h:
                    res.duplicates += 1
                else:
                    res.rejected.append((i, ErrorCode.IDEMPOTENCY_CONFLICT,
                                         "idempotencyKey reused with a different payload"))
            moved = await state.recompute(org_id, pairs) if pairs else set()
        return res, moved

    res, moved = await _retrying(go)
    out.accepted, out.duplicates = res.accepted, out.duplicates + res.duplicates
    out.rejected = sorted(out.rejected + res.rejected, key=lambda r: r[0])
    if moved:
        await publish(principal.org_id, moved)
    return out


# ---------------------------------------------------------------- scheduler tick


async def tick(now: datetime | None = None) -> dict[int, date]:
    """Move each organization to its local day: at local midnight the counters of the day that
    ended are snapshotted, and the steps whose day has come become action required (those of the
    day before, not done, overdue). Also makes the leads' `live` figures follow status changes the
    system made (start at startAt, budget pause, completion). Returns the organizations moved."""
    now = now or datetime.now(timezone.utc)
    moved_orgs: dict[int, date] = {}
    for campaign in await fetch(
            "SELECT c.id FROM campaign c LEFT JOIN outreach_campaign oc ON oc.campaign_id = c.id "
            "WHERE (c.status = 'LIVE') <> COALESCE(oc.counted_live, ?) ORDER BY c.id", [False]):
        async def sync(cid=campaign["id"]):
            async with in_transaction():
                return await sync_live(cid)
        if await _retrying(sync):
            org = (await fetch("SELECT organization_id FROM campaign WHERE id = ?", [campaign["id"]]))[0]
            await publish(org["organization_id"], {campaign["id"]})
    for org in await fetch("SELECT id, timezone FROM organization ORDER BY id"):
        local = now.astimezone(ZoneInfo(org["timezone"])).date()

        async def go(org_id=org["id"], local=local):
            async with in_transaction():
                rows = await fetch("SELECT day FROM outreach_clock WHERE organization_id = ?"
                                   + for_update(), [org_id])
                if not rows:
                    await execute("INSERT INTO outreach_clock (organization_id, day) VALUES (?, ?) "
                                  "ON CONFLICT (organization_id) DO NOTHING", [org_id, local])
                    previous = None
                else:
                    previous = db_date(rows[0]["day"])
                    if local <= previous:
                        return None
                    await execute("UPDATE outreach_clock SET day = ? WHERE organization_id = ?", [local, org_id])
                    # The counters now are the figures at the end of each day since the last move.
                    day = previous
                    while day < local:
                        await snapshot(org_id, day)
                        day += timedelta(days=1)
                pairs = {(r["campaign_id"], r["lead_id"]) for r in await fetch(
                    "SELECT DISTINCT rs.campaign_id, rs.lead_id FROM outreach_recipient_step rs "
                    "WHERE rs.organization_id = ? AND rs.due_day <= ? AND rs.touched = ? AND "
                    "(rs.state = 'SCHEDULED' AND (rs.action_required = ? OR rs.overdue = ?))",
                    [org_id, local, False, False, False])}
                moved = await state.recompute(org_id, pairs, today=local) if pairs else set()
                return moved

        moved = await _retrying(go)
        if moved is not None:
            moved_orgs[org["id"]] = local
            await publish(org["id"], moved)
    return moved_orgs


async def snapshot(org_id: int, day: date) -> None:
    cols = ", ".join(KPI_COLUMNS)
    await execute("DELETE FROM lead_kpi_snapshot WHERE organization_id = ? AND day = ?", [org_id, day])
    await execute(f"INSERT INTO lead_kpi_snapshot (organization_id, day, zone_id, center_id, {cols}) "
                  f"SELECT organization_id, ?, zone_id, center_id, {cols} FROM lead_kpi_counter WHERE organization_id = ?",
                  [day, org_id])


# ---------------------------------------------------------------- KPIs


KPI_NAMES = ("total", "active", "inactive", "verified", "social_only", "engaged", "on_track", "off_track",
             "action_required")


def _named(sums: dict[str, int]) -> dict[str, int]:
    return {"total": sums["total"], "active": sums["active"], "inactive": sums["total"] - sums["active"],
            "verified": sums["verified"], "social_only": sums["social_only"], "engaged": sums["engaged"],
            "on_track": sums["in_sequence"] - sums["off_track"], "off_track": sums["off_track"],
            "action_required": sums["action_required"]}


def months_back(day: date, months: int) -> date:
    y, m = divmod(day.year * 12 + day.month - 1 - months, 12)
    return date(y, m + 1, min(day.day, monthrange(y, m + 1)[1]))


@dataclass
class LeadsKpis:
    unit: Unit
    today: date
    values: dict[str, int]
    previous: dict[str, dict[str, int] | None]  # period -> values at its reference day (None: no snapshot)
    reference: dict[str, date]


async def leads_kpis(unit: Unit) -> LeadsKpis:
    """The leads KPIs of a scope from the counters (one row per center), and the comparison
    values from the daily snapshots: a week, a month, a quarter and a year before today."""
    where, params = unit.sql_filter("k")
    cols = ", ".join(f"COALESCE(SUM(k.{c}), 0) AS {c}" for c in KPI_COLUMNS)
    row = (await fetch(f"SELECT {cols} FROM lead_kpi_counter k WHERE {where}", params))[0]
    today = await state.org_today(unit.org_id)
    refs = {"week": today - timedelta(days=7), "month": months_back(today, 1), "quarter": months_back(today, 3),
            "year": months_back(today, 12)}
    previous: dict = {}
    for period, ref in refs.items():
        day = await fetch("SELECT MAX(day) AS day FROM lead_kpi_snapshot WHERE organization_id = ? AND day <= ?",
                          [unit.org_id, ref])
        if not day or day[0]["day"] is None:
            previous[period] = None
            continue
        snap = (await fetch(f"SELECT {cols} FROM lead_kpi_snapshot k WHERE k.day = ? AND {where}",
                            [db_date(day[0]["day"]), *params]))[0]
        previous[period] = _named({c: int(snap[c]) for c in KPI_COLUMNS})
    return LeadsKpis(unit, today, _named({c: int(row[c]) for c in KPI_COLUMNS}), previous, refs)


@dataclass
class StepKpis:
    step: OutreachStep
    recipients: int = 0
    scheduled: int = 0
    engaged: int = 0
    replied: int = 0
    rsvp: int = 0
    action_required: int = 0
    off_track: int = 0


@dataclass
class CampaignOutreachKpis:
    campaign_id: int
    recipients: int
    scheduled: int
    engaged: int
    replied: int
    rsvp: int
    action_required: int
    off_track: int
    steps: list[StepKpis]


async def campaign_kpis(principal: Principal, campaign_id: int) -> CampaignOutreachKpis | None:
    """Per campaign and per step, over the recipient steps the caller sees."""
    campaign = await campaigns_query(principal).filter(id=campaign_id).first()
    if campaign is None:
        return None
    steps = await steps_of(campaign_id)
    lead_where, lead_params = principal.scope.sql_filter("rs")
    rows = await fetch(
        "SELECT rs.step_id, rs.state, rs.touched, rs.action_required, rs.overdue, COUNT(*) AS n "
        f"FROM outreach_recipient_step rs WHERE rs.campaign_id = ? AND {lead_where} "
        "GROUP BY rs.step_id, rs.state, rs.touched, rs.action_required, rs.overdue", [campaign_id, *lead_params])
    by_step = {s.id: StepKpis(s) for s in steps}
    for r in rows:
        k = by_step.get(r["step_id"])
        if k is None:
            continue
        n = r["n"]
        k.recipients += n
        k.scheduled += n if r["state"] == "SCHEDULED" else 0
        k.engaged += n if r["touched"] else 0
        k.replied += n if r["state"] == "REPLIED" else 0
        k.rsvp += n if r["state"] == "RSVP" else 0
        k.action_required += n if r["action_required"] else 0
        k.off_track += n if r["overdue"] else 0
    recipients = (await fetch(
        f"SELECT COUNT(DISTINCT rs.lead_id) AS n FROM outreach_recipient_step rs WHERE rs.campaign_id = ? AND {lead_where}",
        [campaign_id, *lead_params]))[0]["n"]
    ks = list(by_step.values())
    return CampaignOutreachKpis(
        campaign_id, recipients, scheduled=sum(k.scheduled for k in ks), engaged=sum(k.engaged for k in ks),
        replied=sum(k.replied for k in ks), rsvp=sum(k.rsvp for k in ks),
        action_required=sum(k.action_required for k in ks), off_track=sum(k.off_track for k in ks), steps=ks)


# ---------------------------------------------------------------- rebuild


async def rebuild(org_id: int | None = None) -> dict[str, int]:
    """Recompute every derived figure from the facts (recipients, steps, sends, actions, events,
    campaign statuses, the clock's day): recipient steps, lead figures, counters. Snapshots are
    history and stay."""
    orgs = [org_id] if org_id else [r["id"] for r in await fetch("SELECT id FROM organization ORDER BY id")]
    stats = {"organizations": 0, "leads": 0, "recipientSteps": 0}
    for oid in orgs:
        async with in_transaction():
            await execute("DELETE FROM lead_kpi_counter WHERE organization_id = ?", [oid])
            await execute("DELETE FROM lead_outreach WHERE organization_id = ?", [oid])
            await execute("UPDATE outreach_recipient_step SET state = 'SCHEDULED', action_required = ?, overdue = ?, "
                          "touched = ? WHERE organization_id = ?", [False, False, False, oid])
            leads = [r["id"] for r in await fetch("SELECT id FROM lead WHERE organization_id = ?", [oid])]
            await state.ensure_leads(oid, leads)
            for c in await fetch("SELECT id, status FROM campaign WHERE organization_id = ?", [oid]):
                await execute("INSERT INTO outreach_campaign (campaign_id, organization_id, counted_live) VALUES "
                              "(?, ?, ?) ON CONFLICT (campaign_id) DO UPDATE SET counted_live = excluded.counted_live",
                              [c["id"], oid, c["status"] == "LIVE"])
            live: dict[int, int] = defaultdict(int)
            for r in await fetch('SELECT r.lead_id, COUNT(*) AS n FROM recipient r JOIN campaign c ON c.id = r.campaign_id '
                                 'WHERE c.organization_id = ? AND c.status = ? AND r."group" = ? GROUP BY r.lead_id',
                                 [oid, "LIVE", RecipientGroup.TREATMENT.value]):
                live[r["lead_id"]] = r["n"]
            touches: dict[int, int] = defaultdict(int)
            for r in await fetch("SELECT lead_id, COUNT(*) AS n FROM send WHERE organization_id = ? AND channel = 'EMAIL' "
                                 "AND was_sent = ? GROUP BY lead_id", [oid, True]):
                touches[r["lead_id"]] = r["n"]
            # recipient steps: counted again by the re-derivation (steps, overdue, actions, LinkedIn messages)
            counts: dict[int, int] = defaultdict(int)
            for r in await fetch("SELECT lead_id, COUNT(*) AS n FROM outreach_recipient_step WHERE organization_id = ? "
                                 "GROUP BY lead_id", [oid]):
                counts[r["lead_id"]] = r["n"]
            await state.change_leads(oid, {lead: {"live": ("=", live[lead]), "touches": ("=", touches[lead]),
                                                  "steps": ("=", counts[lead])}
                                           for lead in set(live) | set(touches) | set(counts)})
            pairs = {(r["campaign_id"], r["lead_id"]) for r in await fetch(
                "SELECT campaign_id, lead_id FROM outreach_recipient WHERE organization_id = ?", [oid])}
            await state.recompute(oid, pairs)
            stats["organizations"] += 1
            stats["leads"] += len(leads)
            stats["recipientSteps"] += sum(counts.values())
    return stats


def allowed_scope(principal: Principal, unit: Unit) -> bool:
    return principal.scope.contains(unit)


__all__ = ["Role"]
