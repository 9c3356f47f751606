"""KPIs read from rollups (SPEC §4 counters, §5 dashboard, §6 budget, §7 insights).

Nothing here scans sends: counters and the campaign spend rollup are kept
in the transactions that change them.
"""

from __future__ import annotations

import dataclasses
import functools
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from app.billing.budget import logged_spend_by_campaign, logged_spend_by_channel
from app.campaigns.service import visible_campaigns_page_sql
from app.db import fetch, fetch_objects_and_rows, fetch_positional, in_list, snapshot
from app.tenancy.access import Principal, Unit
from app.core.money import ratio
from models.campaigns import Campaign
from models.enums import CampaignStatus, Channel, UnitKind
from models.stats import COUNTER_FIELDS


@dataclass
class Metrics:
    channel: Channel | None
    generated: int = 0
    pending: int = 0
    sent: int = 0
    delivered: int = 0
    failed: int = 0
    bounced: int = 0
    read: int = 0
    clicked: int = 0
    replied: int = 0
    unsubscribed: int = 0
    cost_micros: int = 0
    credits: int = 0
    skipped: int = 0  # sends the sender skipped (not in `generated`)
    skipped_by_reason: dict = field(default_factory=dict)  # SkipReason value -> count

    def add(self, row: dict) -> None:
        values = self.__dict__
        for f in COUNTER_FIELDS:
            v = row[f]
            if v:
                values[f] += v

    def add_values(self, counters) -> None:
        """`add` of the COUNTER_FIELDS' values in their order."""
        values = self.__dict__
        for f, v in zip(COUNTER_FIELDS, counters):
            if v:
                values[f] += v

    @property
    def bounce_rate(self) -> float:
        return ratio(self.bounced, self.sent)

    @property
    def failure_rate(self) -> float:
        return ratio(self.failed, self.generated)

    @property
    def delivery_rate(self) -> float:
        return ratio(self.delivered, self.sent)

    @property
    def read_rate(self) -> float:
        return ratio(self.read, self.delivered)

    @property
    def click_rate(self) -> float:
        return ratio(self.clicked, self.delivered)


@dataclass
class CampaignMetrics:
    totals: Metrics
    by_channel: list[Metrics] = field(default_factory=list)


async def metrics_for(campaign_ids: list[int],
                      channels_of: dict[int, list[Channel]] | None = None) -> dict[int, CampaignMetrics]:
    """Totals and per-channel counters of many campaigns in one statement: the counters summed per
    (campaign, channel) in SQL, the skips per reason, and (unless `channels_of` gives them) the
    campaigns' configured channels, as three parts of one UNION ALL (one round trip)."""
    out = {cid: CampaignMetrics(Metrics(None)) for cid in campaign_ids}
    if not campaign_ids:
        return out
    read_channels = channels_of is None
    rows = await fetch_positional(_metrics_sql(campaign_ids, read_channels),
                                  _metrics_params(campaign_ids, read_channels))
    per: dict[int, dict[Channel, Metrics]] = defaultdict(dict)
    configured: dict[int, list[Channel]] = defaultdict(list)
    for row in rows:
        # Columns by position (`_metrics_text`): kind, campaign_id, channel, reason, ord, COUNTER_FIELDS.
        row = tuple(row)
        kind, cid, ch = row[0], row[1], _CHANNELS[row[2]]
        if kind == "n":  # one row per (campaign, channel): the channel's counters as they are
            values = [v or 0 for v in row[_FIRST:]]
            m = per[cid].setdefault(ch, Metrics(ch))
            m.__dict__.update(zip(COUNTER_FIELDS, values))
            out[cid].totals.add_values(values)
        elif kind == "s":
            n = int(row[_SKIPPED] or 0)
            if not n:
                continue
            reason = row[3]
            for m in (per[cid].setdefault(ch, Metrics(ch)), out[cid].totals):
                m.skipped_by_reason[reason] = m.skipped_by_reason.get(reason, 0) + n
        else:
            configured[cid].append(ch)
    for cid in campaign_ids:
        chans = list((configured if read_channels else channels_of).get(cid, []))
        chans += [c for c in per[cid] if c not in chans]
        out[cid].by_channel = [per[cid].get(c) or Metrics(c) for c in sorted(chans, key=_ORDER.__getitem__)]
    return out


_CHANNELS = {c.value: c for c in Channel}
_FIRST = 5  # the first counter column of `_metrics_text`
_SKIPPED = _FIRST + COUNTER_FIELDS.index("skipped")
_ORDER = {c: i for i, c in enumerate(Channel)}


def _metrics_params(campaign_ids: list[int], read_channels: bool) -> list:
    return in_list("campaign_id", campaign_ids)[1] * (3 if read_channels else 2)


def _metrics_sql(campaign_ids: list[int], read_channels: bool) -> str:
    return _metrics_text(in_list("campaign_id", campaign_ids)[0], read_channels)


@functools.lru_cache(maxsize=64)
def _metrics_text(ids: str, read_channels: bool) -> str:
    # One column list for every part (NULL where a part has no value): kind, campaign_id, channel,
    # reason, ord (a configured channel's id: their order), then the counters (a skip row: only
    # `skipped`, per reason).
    # Integers from both dialects (PostgreSQL's SUM of a bigint is a numeric: a Decimal in Python).
    sums = ", ".join(f"CAST(SUM({f}) AS BIGINT) AS {f}" for f in COUNTER_FIELDS)
    skips = ", ".join("CAST(SUM(skipped) AS BIGINT)" if f == "skipped" else "NULL" for f in COUNTER_FIELDS)
    nulls = ", ".join("NULL" for _ in COUNTER_FIELDS)
    parts = [f"SELECT 'n' AS kind, campaign_id, channel, NULL AS reason, 0 AS ord, {sums} FROM send_counter "
             f"WHERE {ids} GROUP BY campaign_id, channel",
             f"SELECT 's', campaign_id, channel, reason, 0, {skips} FROM skip_counter WHERE {ids} "
             "GROUP BY campaign_id, channel, reason"]
    if read_channels:
        parts.append(f"SELECT 'c', campaign_id, channel, NULL, id, {nulls} FROM campaign_channel WHERE {ids}")
    return " UNION ALL ".join(parts) + " ORDER BY kind, ord"


async def campaigns_page_with_totals(principal: Principal, limit: int, before_id: int | None = None, *,
                                     names: tuple[str, ...] | None = None,
                                     skips: bool = False) -> tuple[list, dict[int, CampaignMetrics]]:
    """A page of the campaigns list (`campaigns.visible_campaigns_page`: the same rows, models or, with
    `names`, partial rows) and each campaign's metrics totals, read by one statement: the page, and
    the counters summed per campaign in SQL (not per channel and folded in Python). The totals are
    what `metrics_for` answers for them, the skips per reason included when `skips` (one more
    statement: only when they are asked for, else left empty); `by_channel` is None (not read): for a
    list whose selection reads only the totals."""
    page, params = visible_campaigns_page_sql(principal, limit, before_id, names)
    objects, rows = await fetch_objects_and_rows(Campaign, _page_totals_text(page), params, names=names)
    out = {}
    first = len(Campaign._meta.fields_db_projection) if names is None else len(names)
    for obj, row in zip(objects, rows):
        # The columns after the campaign's are the counters, in COUNTER_FIELDS order: Metrics's own
        # field order after `channel` (checked below), given positionally.
        out[obj.id] = CampaignMetrics(Metrics(None, *row[first:]), None)
    if skips and out:
        rows = await fetch_positional(*_skips_sql(list(out)))
        for cid, reason, n in rows:
            n = int(n or 0)
            if n:
                by = out[cid].totals.skipped_by_reason
                by[reason] = by.get(reason, 0) + n
    return objects, out


# `campaigns_page_with_totals` gives a row's counters to Metrics positionally.
assert tuple(f.name for f in dataclasses.fields(Metrics))[1:len(COUNTER_FIELDS) + 1] == COUNTER_FIELDS


@functools.lru_cache(maxsize=16)
def _page_totals_text(page: str) -> str:
    # The page as a CTE (PostgreSQL materializes a CTE read twice: the page is read once), its
    # campaigns' counters summed per campaign (one index probe per campaign), joined back in page
    # order; a campaign without counter rows gets 0 (where the fold starts). Integers on both dialects.
    sums = ", ".join(f"CAST(SUM(s.{f}) AS BIGINT) AS {f}" for f in COUNTER_FIELDS)
    return (f"WITH p AS ({page}) SELECT p.*, "
            f"{', '.join(f'COALESCE(t.{f}, 0)' for f in COUNTER_FIELDS)} FROM p LEFT JOIN "
            f"(SELECT s.campaign_id, {sums} FROM send_counter s WHERE s.campaign_id IN (SELECT id FROM p) "
            "GROUP BY s.campaign_id) t ON t.campaign_id = p.id ORDER BY p.id DESC")


def _skips_sql(campaign_ids: list[int]) -> tuple[str, list]:
    ids, params = in_list("campaign_id", campaign_ids)
    return (f"SELECT campaign_id, reason, CAST(SUM(skipped) AS BIGINT) FROM skip_counter WHERE {ids} "
            "GROUP BY campaign_id, reason", params)


@dataclass
class Dashboard:
    active_campaigns: int
    total_reach: int
    total_spent_micros: int
    total_budget_micros: int
    active_budget_micros: int = 0  # budgets of LIVE campaigns that have one
    budgeted_spent_micros: int = 0  # spend of those same campaigns
    unbudgeted_spent_micros: int = 0  # spend of LIVE campaigns without a budget

    @property
    def budget_utilization(self) -> float:
        """Same set on both sides: LIVE campaigns with a budget (issue 12 item 1)."""
        return ratio(self.budgeted_spent_micros, self.active_budget_micros)


async def dashboard(unit: Unit) -> Dashboard:
    where, params = unit.sql_filter("c")
    rows = await fetch(
        "SELECT "
        "COALESCE(SUM(CASE WHEN c.status = 'LIVE' THEN 1 ELSE 0 END), 0) AS active, "
        "COALESCE(SUM(CASE WHEN c.status = 'LIVE' THEN c.reach ELSE 0 END), 0) AS reach, "
        "COALESCE(SUM(c.spent_micros), 0) AS spent, COALESCE(SUM(c.budget_micros), 0) AS budget, "
        "COALESCE(SUM(CASE WHEN c.status = 'LIVE' AND c.budget_micros > 0 THEN c.budget_micros ELSE 0 END), 0) "
        "AS active_budget, "
        "COALESCE(SUM(CASE WHEN c.status = 'LIVE' AND c.budget_micros > 0 THEN c.spent_micros ELSE 0 END), 0) "
        "AS budgeted_spent, "
        "COALESCE(SUM(CASE WHEN c.status = 'LIVE' AND c.budget_micros <= 0 THEN c.spent_micros ELSE 0 END), 0) "
        "AS unbudgeted_spent "
        f"FROM campaign c WHERE {where}", params)
    r = rows[0]
    return Dashboard(int(r["active"]), int(r["reach"]), int(r["spent"]), int(r["budget"]), int(r["active_budget"]),
                     int(r["budgeted_spent"]), int(r["unbudgeted_spent"]))


CHANNEL_NAMES = {Channel.EMAIL: "Email", Channel.PUSH: "Push", Channel.SMS: "SMS", Channel.WHATSAPP: "WhatsApp",
                 Channel.SOCIAL: "Social"}


@dataclass
class Insight:
    code: str
    severity: str
    message: str
    channel: Channel | None = None


async def lead_totals(org_ids: list[int]) -> dict[tuple, int]:
    """Lead counts of every unit of these organizations (for LOW_REACH), one query."""
    if not org_ids:
        return {}
    rows = await fetch(
        "SELECT organization_id, zone_id, center_id, COUNT(*) AS n FROM lead WHERE organization_id IN "
        f"({','.join('?' for _ in org_ids)}) GROUP BY organization_id, zone_id, center_id", org_ids)
    totals: dict[tuple, int] = defaultdict(int)
    for r in rows:
        n = int(r["n"])
        totals[(UnitKind.ORGANIZATION, r["organization_id"], None, None)] += n
        if r["zone_id"] is not None:
            totals[(UnitKind.ZONE, r["organization_id"], r["zone_id"], None)] += n
        if r["center_id"] is not None:
            totals[(UnitKind.CENTER, r["organization_id"], r["zone_id"], r["center_id"])] += n
    return totals


def unit_key(c: Campaign) -> tuple:
    return (UnitKind(c.owner_kind), c.organization_id, c.zone_id if c.owner_kind != UnitKind.ORGANIZATION else None,
            c.center_id if c.owner_kind == UnitKind.CENTER else None)


def insights(campaign: Campaign, metrics: CampaignMetrics, enabled: list[Channel], unit_leads: int,
             now: datetime | None = None) -> list[Insight]:
    now = now or datetime.now(timezone.utc)
    found: list[Insight] = []
    for m in metrics.by_channel:
        if m.generated >= 20 and m.failure_rate > 0.10:
            found.append(Insight(
                "HIGH_FAILURE_RATE", "CRITICAL" if m.failure_rate > 0.25 else "WARNING",
                f"{CHANNEL_NAMES[m.channel]}: {m.failure_rate:.0%} of {m.generated} messages failed "
                "(over 10 %). Check the provider and the recipients' addresses.", m.channel))
    if campaign.status != CampaignStatus.DRAFT and unit_leads > 0 and campaign.reach < 0.10 * unit_leads:
        found.append(Insight(
            "LOW_REACH", "INFO",
            f"Reach is {campaign.reach} of {unit_leads} leads in the owner unit (under 10 %). "
            "Widen the audience to reach more people."))
    if campaign.budget_micros > 0:
        util = campaign.spent_micros / campaign.budget_micros
        if util >= 0.90:
            found.append(Insight(
                "BUDGET_NEARLY_SPENT", "CRITICAL" if util >= 1 else "WARNING",
                f"{util:.0%} of the budget is spent. Raise the budget or expect the campaign to stop."))
    if campaign.status == CampaignStatus.LIVE and campaign.live_since and now - campaign.live_since > timedelta(hours=1):
        by = {m.channel: m for m in metrics.by_channel}
        for ch in enabled:
            if (by.get(ch) or Metrics(ch)).sent == 0:
                found.append(Insight(
                    "ZERO_SENDS", "WARNING",
                    f"{CHANNEL_NAMES[ch]} is enabled and the campaign has been live for over an hour, "
                    "but nothing was sent on it.", ch))
    return found


@dataclass
class CampaignSnapshot:
    campaign: Campaign
    metrics: CampaignMetrics
    logged_micros: int
    currency: str
    computed_at: datetime
    engagement: dict = field(default_factory=dict)  # lifetime viewed, clicked, conversions, revenue
    logged_by_channel: dict = field(default_factory=dict)  # Channel -> logged spend micros

    def fingerprint(self) -> tuple:
        c = self.campaign
        return (c.status, c.status_reason, c.reach, c.audience_size, c.budget_micros, c.spent_micros,
                self.logged_micros, self.metrics, tuple(sorted(self.engagement.items())),
                tuple(sorted((ch.value, v) for ch, v in self.logged_by_channel.items())))


async def campaign_version(campaign_id: int) -> tuple | None:
    """What `campaignKpis` shows, reduced to one cheap statement: the campaign's rollup columns, the
    head of its send change log (every counter change writes one), its engagement and outcome sums.
    The hub's reconciliation compares it every few seconds and recomputes the snapshot when it moved
    without a bus message (a lost publish)."""
    rows = await fetch(
        "SELECT c.status, c.status_reason, c.reach, c.audience_size, c.budget_micros, c.spent_micros, "
        "(SELECT COALESCE(MAX(id), 0) FROM send_change WHERE campaign_id = c.id) AS head, "
        "(SELECT COALESCE(SUM(viewed), 0) || ':' || COALESCE(SUM(clicked), 0) FROM campaign_day_stat "
        "WHERE campaign_id = c.id) AS engaged, "
        "(SELECT COALESCE(SUM(converters), 0) || ':' || COALESCE(SUM(conversions), 0) || ':' || "
        "COALESCE(SUM(revenue_micros), 0) FROM campaign_outcome WHERE campaign_id = c.id) AS outcome "
        "FROM campaign c WHERE c.id = ?", [campaign_id])
    return tuple(rows[0].values()) if rows else None


async def campaign_snapshot(campaign_id: int) -> CampaignSnapshot | None:
    """Everything `campaignKpis` shows, read from rollups (a handful of queries), all from one
    consistent view (`db.snapshot`): totals, spend and logged spend always agree."""
    async with snapshot():
        return await _campaign_snapshot(campaign_id)


async def _campaign_snapshot(campaign_id: int) -> CampaignSnapshot | None:
    from models.campaigns import CampaignChannel
    from models.tenancy import Organization

    campaign = await Campaign.get_or_none(id=campaign_id)
    if campaign is None:
        return None
    channels = [Channel(c) for c in await CampaignChannel.filter(campaign_id=campaign_id).order_by("id")
                .values_list("channel", flat=True)]
    found = await metrics_for([campaign_id], {campaign_id: channels})
    logged = await logged_spend_by_campaign([campaign_id])
    org = await Organization.get(id=campaign.organization_id)
    rows = await fetch("SELECT COALESCE(SUM(viewed), 0) AS viewed, COALESCE(SUM(clicked), 0) AS clicked "
                       "FROM campaign_day_stat WHERE campaign_id = ?", [campaign_id])
    outcome = await fetch("SELECT COALESCE(SUM(converters), 0) AS converters, COALESCE(SUM(conversions), 0) AS conversions, "
                          "COALESCE(SUM(revenue_micros), 0) AS revenue FROM campaign_outcome "
                          "WHERE campaign_id = ? AND \"group\" = 'TREATMENT'", [campaign_id])
    engagement = {"viewed": int(rows[0]["viewed"]), "clicked": int(rows[0]["clicked"]),
                  "converters": int(outcome[0]["converters"]), "conversions": int(outcome[0]["conversions"]),
                  "revenue_micros": int(outcome[0]["revenue"])}
    return CampaignSnapshot(campaign, found[campaign_id], logged.get(campaign_id, 0), org.currency,
                            datetime.now(timezone.utc), engagement, await logged_spend_by_channel(campaign_id))
