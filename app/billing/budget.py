"""Budget and spend (SPEC §6): logged spend, reversals, alerts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone

from tortoise.transactions import in_transaction

from app.campaigns.service import get_campaign
from app.core.errors import DomainError, ErrorCode, NotFound
from app.core.money import to_micros
from app.db import fetch, param_datetime
from app.tenancy.access import Principal
from app.tenancy.service import check_name
from models.budgets import BudgetAlert, SpendEntry
from models.campaigns import Campaign, CampaignChannel
from models.enums import CampaignStatus, Channel, StatusReason
from subscriptions import bus

THRESHOLDS = (80, 90, 100)


@dataclass
class SpendData:
    campaign_id: int
    amount: object
    category: str
    note: str | None = None
    incurred_on: date | None = None
    channel: Channel | None = None
    reverses: int | None = None


def crossed_thresholds(spent_micros: int, budget_micros: int) -> list[int]:
    if budget_micros <= 0:
        return []
    return [t for t in THRESHOLDS if spent_micros * 100 >= budget_micros * t]


async def raise_alerts(campaign: Campaign) -> list[BudgetAlert]:
    """Record each newly crossed threshold once; returns the new alerts.

    Must run inside the transaction that moved spend or budget; the unique
    (campaign, threshold) index makes it once-only under any concurrency.
    """
    fresh = await Campaign.filter(id=campaign.id).values_list("spent_micros", "budget_micros")
    spent, budget = fresh[0]
    return await raise_alerts_at(campaign.organization_id, campaign.id, spent, budget)


async def raise_alerts_at(org_id: int, campaign_id: int, spent: int, budget: int) -> list[BudgetAlert]:
    """`raise_alerts` for a campaign whose current spend and budget the caller just read
    (in the same transaction, e.g. from `add_spend`)."""
    created: list[BudgetAlert] = []
    for threshold in crossed_thresholds(spent, budget):
        rows = await fetch(
            "INSERT INTO budget_alert (organization_id, campaign_id, threshold, spent_micros, budget_micros, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (campaign_id, threshold) DO NOTHING RETURNING id",
            [org_id, campaign_id, threshold, spent, budget, _now_param()],
        )
        if rows:
            created.append(await BudgetAlert.get(id=rows[0]["id"]))
    return created


def _now_param():
    now = datetime.now(timezone.utc)
    return param_datetime(now)


async def add_spend(campaign_ids_deltas: dict[int, int]) -> dict[int, tuple[int, int, int]]:
    """Move campaigns' spend rollup (sorted by id: no lock-order deadlocks).

    Returns, per moved campaign, `(organization_id, spent_micros, budget_micros)` after the move."""
    out: dict[int, tuple[int, int, int]] = {}
    for cid in sorted(campaign_ids_deltas):
        delta = campaign_ids_deltas[cid]
        if delta:
            rows = await fetch("UPDATE campaign SET spent_micros = spent_micros + ? WHERE id = ? "
                               "RETURNING organization_id, spent_micros, budget_micros", [delta, cid])
            if rows:
                r = rows[0]
                out[cid] = (r["organization_id"], int(r["spent_micros"]), int(r["budget_micros"]))
    return out


async def on_sends_changed(batch) -> None:
    """`delivery.sends_changed` handler: message costs move the spend rollup; crossing a threshold
    raises its alert (campaigns are locked by the ingestion, in id order)."""
    if getattr(batch, "writes", None) is not None:
        moved, elsewhere = _spend_after(batch)
        moved.update(await add_spend(elsewhere))
    else:
        moved = await add_spend(batch.spend)
    for cid in sorted(c for c, d in batch.spend.items() if d > 0 and c in moved):
        campaign_org, spent, budget = moved[cid]
        batch.alerts.extend(await raise_alerts_at(campaign_org, cid, spent, budget))
        # Budget rule for late or costlier receipts: the cost is recorded as reported (a send revived by a
        # late SENT receipt, or a provider's final cost above the reserved unit cost), and the moment
        # spent ≥ budget a LIVE campaign pauses with BUDGET_EXHAUSTED, so nothing new is queued past it.
        if budget > 0 and spent >= budget:
            await Campaign.filter(id=cid, status=CampaignStatus.LIVE).update(
                status=CampaignStatus.PAUSED, status_reason=StatusReason.BUDGET_EXHAUSTED,
                updated_at=datetime.now(timezone.utc))


def _spend_after(batch) -> tuple[dict[int, tuple[int, int, int]], dict[int, int]]:
    """`add_spend(batch.spend)` without its round trip: the campaigns were read under their row lock
    by the ingestion (nothing else moves their spend before it commits), so the spend after the move
    is the spend read plus the delta; the `UPDATE … SET spent_micros = spent_micros + delta` goes into
    the ingestion's deferred writes (`batch.writes`, written before its commit). A campaign it did not
    read (none: every moved cost is a changed send's, whose campaign it locked) is moved at once."""
    from app.db import Added

    out: dict[int, tuple[int, int, int]] = {}
    rows, elsewhere = [], {}
    for cid in sorted(batch.spend):
        delta = batch.spend[cid]
        if not delta:
            continue
        c = batch.campaigns.get(cid)
        if c is None:
            elsewhere[cid] = delta
            continue
        rows.append((cid, delta))
        out[cid] = (c.organization_id, int(c.spent_micros) + delta, int(c.budget_micros))
    if rows:
        batch.writes.append(Added("campaign", ("id", "int8"), {"spent_micros": "int8"}, rows))
    return out, elsewhere


async def log_spend(principal: Principal, data: SpendData) -> tuple[SpendEntry, list[BudgetAlert]]:
    principal.require_write()
    category = check_name(data.category, "category", 100)
    note = (data.note or "").strip()
    if len(note) > 2000:
        raise DomainError(ErrorCode.TOO_LONG, "at most 2000 characters", "note")
    amount = to_micros(data.amount, "amount", allow_negative=True)
    async with in_transaction():
        campaign = await get_campaign(principal, data.campaign_id, "campaignId", for_update=True)
        if data.reverses is not None:
            original = await SpendEntry.get_or_none(id=data.reverses, campaign_id=campaign.id)
            if original is None:
                raise NotFound("spend entry", "reverses")
            if original.reverses_id is not None:
                raise DomainError(ErrorCode.REVERSAL_MISMATCH, "a reversing entry cannot itself be reversed", "reverses")
            if await SpendEntry.filter(reverses_id=original.id).exists():
                raise DomainError(ErrorCode.ALREADY_REVERSED, "this entry was already reversed", "reverses")
            if amount != -original.amount_micros:
                raise DomainError(ErrorCode.REVERSAL_MISMATCH, "a reversal must have the opposite amount of the entry", "amount")
            channel = original.channel
        else:
            if amount <= 0:
                raise DomainError(ErrorCode.OUT_OF_RANGE, "must be positive; correct an entry with `reverses`", "amount")
            channel = data.channel
            if channel is not None and not await CampaignChannel.filter(campaign_id=campaign.id,
                                                                         channel=channel).exists():
                raise DomainError(ErrorCode.CHANNEL_NOT_ON_CAMPAIGN,
                                  f"{Channel(channel).value} is not a channel of this campaign", "channel")
        entry = await SpendEntry.create(
            organization_id=principal.org_id, campaign=campaign, amount_micros=amount, category=category, note=note,
            incurred_on=data.incurred_on or datetime.now(timezone.utc).date(), channel=channel,
            reverses_id=data.reverses, logged_by_id=principal.user_id,
        )
        await add_spend({campaign.id: amount})
        alerts = await raise_alerts(campaign)
    await bus.campaign_changed(campaign.organization_id, campaign.id, "spend")
    await bus.budget_alerts_raised(alerts)
    return entry, alerts


async def logged_spend_by_campaign(campaign_ids: list[int]) -> dict[int, int]:
    if not campaign_ids:
        return {}
    marks = ",".join("?" for _ in campaign_ids)
    rows = await fetch(
        f"SELECT campaign_id, COALESCE(SUM(amount_micros), 0) AS total FROM spend_entry "
        f"WHERE campaign_id IN ({marks}) GROUP BY campaign_id", campaign_ids)
    return {r["campaign_id"]: int(r["total"]) for r in rows}


async def logged_spend_by_channel(campaign_id: int) -> dict[Channel, int]:
    """Logged spend of one campaign per channel (entries logged with a channel; reversals follow
    their entry's channel)."""
    rows = await fetch("SELECT channel, COALESCE(SUM(amount_micros), 0) AS total FROM spend_entry "
                       "WHERE campaign_id = ? AND channel IS NOT NULL GROUP BY channel", [campaign_id])
    return {Channel(r["channel"]): int(r["total"]) for r in rows}
