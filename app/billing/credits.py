"""Credit wallets, the ledger and the consumption report (SPEC §8).

A wallet's balance only moves by a ledger entry written in the same
transaction, with a conditional update (`balance >= amount`) or a row lock,
so a wallet never goes below zero and balance == sum(ledger) always.

Wallets are consumed by the messages Campaign Pulse's own sender queues.
Sends reported by integrators carry credits in the counters but do not touch
wallets (the integrator's own system already sent them). SOCIAL messages of
SCHEDULED campaigns have no wallet and are not metered.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from tortoise.transactions import in_transaction

from app.campaigns.service import campaigns_query
from app.core.errors import DomainError, ErrorCode
from app.db import execute, fetch, lock_rows, param_date
from app.tenancy.access import Principal, Unit
from models.campaigns import Campaign
from models.credits import CreditEntry, CreditWallet
from models.enums import (
    CampaignStatus,
    CampaignType,
    Channel,
    CreditEntryKind,
    CreditSource,
    Role,
)
from models.tenancy import Organization

MAX_TOPUP = 10**12


def source_for(campaign_type: CampaignType, channel: Channel) -> CreditSource | None:
    if campaign_type == CampaignType.ALWAYS_ON:
        return CreditSource.ALWAYS_ON
    try:
        return CreditSource(channel.value)
    except ValueError:
        return None  # SOCIAL


async def ensure_wallets(org_id: int) -> dict[CreditSource, CreditWallet]:
    existing = {CreditSource(w.source): w for w in await CreditWallet.filter(organization_id=org_id)}
    missing = [s for s in CreditSource if s not in existing]
    if missing:
        await CreditWallet.bulk_create([CreditWallet(organization_id=org_id, source=s) for s in missing],
                                       ignore_conflicts=True)
        existing = {CreditSource(w.source): w for w in await CreditWallet.filter(organization_id=org_id)}
    return existing


async def top_up(principal: Principal, source: CreditSource, amount: int, reason: str | None) -> CreditWallet:
    principal.require(Role.OWNER)
    if amount is None or not 0 < amount <= MAX_TOPUP:
        raise DomainError(ErrorCode.OUT_OF_RANGE, f"amount must be between 1 and {MAX_TOPUP}", "amount")
    reason = (reason or "").strip()
    if len(reason) > 500:
        raise DomainError(ErrorCode.TOO_LONG, "at most 500 characters", "reason")
    wallets = await ensure_wallets(principal.org_id)
    wallet = wallets[source]
    org = await Organization.get(id=principal.org_id)
    async with in_transaction():
        await lock_rows("credit_wallet", [wallet.id])
        await CreditEntry.create(organization_id=principal.org_id, wallet_id=wallet.id, kind=CreditEntryKind.TOPUP,
                                 amount=amount, day=datetime.now(ZoneInfo(org.timezone)).date(),
                                 reason=reason or "top-up", user_id=principal.user_id)
        await _move(wallet.id, amount)
    from subscriptions import bus

    await bus.publish(bus.topics.organization(principal.org_id), {"what": "credits", "organizationId": principal.org_id})
    return await CreditWallet.get(id=wallet.id)


async def _move(wallet_id: int, amount: int) -> None:
    await execute("UPDATE credit_wallet SET balance = balance + ? WHERE id = ?", [amount, wallet_id])


# ---------------------------------------------------------------- report


@dataclass
class ConsumptionRow:
    campaign: Campaign
    channel: Channel
    source: CreditSource | None
    targeted: int
    processed: int
    credits: int
    reported: int = 0  # credits the sends carry (provider-reported or per-message), in the range
    skipped: int = 0  # sends the sender skipped in the range (issue 12 item 8)
    skipped_by_reason: dict = field(default_factory=dict)  # SkipReason value -> count


@dataclass
class ConsumptionReport:
    rows: list[ConsumptionRow]
    by_center: list[tuple[int, int]]  # (center id or 0, credits)
    by_day: list[tuple[date, int, int]]  # (day, credits charged, credits reported) by the sends' queue day
    total_credits: int
    total_processed: int
    total_targeted: int
    total_reported: int = 0
    total_skipped: int = 0


@dataclass
class ConsumptionFilter:
    date_from: date | None = None
    date_to: date | None = None
    campaign_ids: list[int] | None = None
    channel: Channel | None = None
    unit: Unit | None = None
    statuses: list[CampaignStatus] = field(default_factory=list)


async def consumption_report(principal: Principal, flt: ConsumptionFilter) -> ConsumptionReport:
    """Credits consumed (consumption − refunds) per campaign and channel over a day range,
    with per-center and per-day drilldowns. Read from the ledger; targeted and processed
    from the send jobs and the send counters of the same days."""
    unit = flt.unit or principal.scope
    campaigns = campaigns_query(principal, unit)
    if flt.campaign_ids is not None:
        campaigns = campaigns.filter(id__in=flt.campaign_ids)
    if flt.statuses:
        campaigns = campaigns.filter(status__in=flt.statuses)
    by_id = {c.id: c for c in await campaigns}
    if not by_id:
        return ConsumptionReport([], [], [], 0, 0, 0)
    ids = sorted(by_id)
    marks = ",".join("?" for _ in ids)
    where, params = [f"campaign_id IN ({marks})"], list(ids)
    if flt.date_from:
        where.append("day >= ?")
        params.append(flt.date_from.isoformat())
    if flt.date_to:
        where.append("day <= ?")
        params.append(flt.date_to.isoformat())
    if flt.channel:
        where.append("channel = ?")
        params.append(flt.channel.value)
    clause = " AND ".join(where)
    pg_params = [_date_param(p) for p in params]
    # Charged credits count on the day their send was queued (organization time zone) — the send's own
    # day, which follows its events — not on the day the ledger entry was written; an entry whose send
    # is gone keeps its own day.
    entry_day = "COALESCE(s.day, e.day)"
    entry_clause = clause.replace("campaign_id IN", "e.campaign_id IN").replace("day >=", f"{entry_day} >=") \
        .replace("day <=", f"{entry_day} <=").replace("channel =", "e.channel =")
    credits_rows = await fetch(
        f"SELECT e.campaign_id, e.channel, e.center_key, {entry_day} AS day, -SUM(e.amount) AS credits "
        "FROM credit_entry e LEFT JOIN send s ON s.id = e.send_id "
        f"WHERE e.kind IN ('CONSUMPTION','REFUND') AND {entry_clause} "
        f"GROUP BY e.campaign_id, e.channel, e.center_key, {entry_day}", pg_params)
    counter_rows = await fetch(
        f"SELECT campaign_id, channel, day, SUM(sent) AS processed, SUM(credits) AS reported FROM send_counter "
        f"WHERE {clause} GROUP BY campaign_id, channel, day", pg_params)
    skip_rows = await fetch(
        f"SELECT campaign_id, channel, reason, SUM(skipped) AS n FROM skip_counter "
        f"WHERE {clause} GROUP BY campaign_id, channel, reason", pg_params)
    job_where = [f"campaign_id IN ({marks})"]
    job_params: list = list(ids)
    if flt.channel:
        job_where.append("channel = ?")
        job_params.append(flt.channel.value)
    target_rows = await fetch(
        f"SELECT campaign_id, channel, COUNT(*) AS n FROM send_job WHERE {' AND '.join(job_where)} "
        "GROUP BY campaign_id, channel", job_params)
    credits: dict[tuple, int] = defaultdict(int)
    centers: dict[int, int] = defaultdict(int)
    days: dict[date, int] = defaultdict(int)
    for r in credits_rows:
        n = int(r["credits"] or 0)
        credits[(r["campaign_id"], r["channel"])] += n
        centers[int(r["center_key"])] += n
        day = r["day"] if isinstance(r["day"], date) else date.fromisoformat(str(r["day"]))
        days[day] += n
    processed: dict[tuple, int] = defaultdict(int)
    reported: dict[tuple, int] = defaultdict(int)
    reported_days: dict[date, int] = defaultdict(int)
    for r in counter_rows:
        processed[(r["campaign_id"], r["channel"])] += int(r["processed"] or 0)
        reported[(r["campaign_id"], r["channel"])] += int(r["reported"] or 0)
        day = r["day"] if isinstance(r["day"], date) else date.fromisoformat(str(r["day"]))
        reported_days[day] += int(r["reported"] or 0)
    targeted = {(r["campaign_id"], r["channel"]): int(r["n"]) for r in target_rows}
    skips: dict[tuple, dict[str, int]] = defaultdict(dict)
    for r in skip_rows:
        if int(r["n"] or 0):
            skips[(r["campaign_id"], r["channel"])][r["reason"]] = int(r["n"])
    keys = sorted(set(credits) | set(processed) | set(targeted) | set(skips), key=lambda k: (-k[0], list(Channel).index(Channel(k[1]))))
    rows = [ConsumptionRow(by_id[cid], Channel(ch), source_for(by_id[cid].type, Channel(ch)),
                           targeted.get((cid, ch), 0), processed.get((cid, ch), 0), credits.get((cid, ch), 0),
                           reported.get((cid, ch), 0), sum(skips.get((cid, ch), {}).values()),
                           skips.get((cid, ch), {}))
            for cid, ch in keys]
    return ConsumptionReport(
        rows=rows,
        by_center=sorted(((k, v) for k, v in centers.items() if v), key=lambda kv: -kv[1]),
        by_day=[(d, days.get(d, 0), reported_days.get(d, 0)) for d in sorted(set(days) | set(reported_days))
                if days.get(d, 0) or reported_days.get(d, 0)],
        total_credits=sum(r.credits for r in rows),
        total_processed=sum(r.processed for r in rows),
        total_targeted=sum(r.targeted for r in rows),
        total_reported=sum(r.reported for r in rows),
        total_skipped=sum(r.skipped for r in rows),
    )


def _date_param(value):
    if isinstance(value, (str, date)) and len(str(value)) == 10 and str(value)[4] == "-":
        return param_date(value)
    return value


def report_status(status: CampaignStatus) -> str:
    return "PROCESSED" if status == CampaignStatus.COMPLETED else status.value

