"""The workbook of one campaign: four sheets, streamed from the database in keyset chunks.

The figures are the API's own (SPEC §9, app/analytics/service.py):
- Campaign: one row; sent/view/click/goal/revenue = `Campaign.stats(period: LIFETIME).totals`
  (the `campaign_day_stat` rollup summed over the whole life).
- CampaignStat: one row per day (organization time zone) from the first day of the campaign to
  its last (today while it runs), days without activity as zeros; the non-zero rows are
  `Campaign.stats(period: LIFETIME).daily`.
- CampaignUser: one row per recipient, oldest first; the times are those of
  `Campaign.stats.recipients` (first send accepted, first counted read and click within the
  view window, first attributed goal of the campaign's goal).
- User: the recipients' profile fields (the push token itself is not exported, only whether
  there is one).

Ids are the API's global ids; times are ISO-8601 UTC text as the API shows them. XlsxWriter in
constant-memory mode flushes every row to its sheet's temp file: memory does not grow with rows.
"""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Awaitable, Callable
from zoneinfo import ZoneInfo

import orjson
import xlsxwriter

from app.db import db_date, db_datetime, fetch, in_list
from app.analytics import service as analytics
from app.core.money import from_micros
from models.campaigns import Campaign
from models.tenancy import Organization

CHUNK = 2000

CAMPAIGN_COLUMNS = ("id", "name", "type", "state", "recipients", "reach", "sent", "view", "click", "goal", "revenue",
                    "currency", "startAt", "endAt", "createdAt", "updatedAt")
STAT_COLUMNS = ("date", "sent", "view", "click", "goal", "revenue")
RECIPIENT_COLUMNS = ("campaignId", "userId", "group", "addedAt", "sentAt", "viewedAt", "clickedAt", "goalAt")
USER_COLUMNS = ("id", "externalId", "name", "email", "emailVerified", "phone", "whatsapp", "hasPushToken",
                "linkedinUrl", "twitterUrl", "tags", "centerId", "unsubscribed", "createdAt")


def global_id(type_name: str, pk: int | None) -> str | None:
    """The API's Relay global id (the same encoding as graph.core.to_global_id)."""
    return None if pk is None else base64.b64encode(f"{type_name}:{pk}".encode()).decode()


def iso(value) -> str | None:
    value = db_datetime(value)
    if value is None:
        return None
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


@dataclass
class Counts:
    campaign: int = 0
    stat: int = 0
    recipient: int = 0
    user: int = 0

    @property
    def rows(self) -> int:
        return self.campaign + self.stat + self.recipient + self.user


@dataclass
class Plan:
    """What the workbook will hold, known before writing (for progress)."""

    campaign: Campaign
    tz: ZoneInfo
    currency: str
    days: list[dict]
    first_day: date
    last_day: date
    recipients: int
    totals: dict = field(default_factory=dict)

    @property
    def total_rows(self) -> int:
        return 1 + ((self.last_day - self.first_day).days + 1) + 2 * self.recipients


async def plan(campaign_id: int, now: datetime | None = None) -> Plan:
    campaign = await Campaign.get(id=campaign_id)
    org = await Organization.get(id=campaign.organization_id)
    tz = ZoneInfo(org.timezone)
    now = now or datetime.now(timezone.utc)
    days = await analytics.daily(campaign_id, None, None)
    totals = {f: sum(d[f] for d in days) for f in analytics.STAT_FIELDS}
    first = min((t for t in (campaign.start_at, campaign.launched_at, campaign.live_since) if t), default=None) \
        or campaign.created_at
    first_day = first.astimezone(tz).date()
    finished = campaign.ended_at or (campaign.end_at if campaign.end_at and campaign.end_at <= now else None)
    last_day = (finished or now).astimezone(tz).date()
    if days:  # activity outside the schedule (late events) is still the campaign's
        first_day, last_day = min(first_day, days[0]["day"]), max(last_day, days[-1]["day"])
    last_day = max(last_day, first_day)
    recipients = (await fetch("SELECT COUNT(*) AS n FROM recipient WHERE campaign_id = ?", [campaign_id]))[0]["n"]
    return Plan(campaign, tz, org.currency, days, first_day, last_day, int(recipients), totals)


class _Snap:
    def __init__(self, row: dict) -> None:
        for k, v in row.items():
            setattr(self, k, db_datetime(v) if k.endswith("_at") else v)


def _first(values):
    values = [v for v in values if v]
    return min(values) if values else None


async def recipient_chunks(campaign: Campaign, size: int = CHUNK):
    """(recipient rows, user rows) per chunk of recipients, oldest first (keyset by id)."""
    last = 0
    cid = campaign.id
    while True:
        recips = await fetch('SELECT id, lead_id, "group", added_at FROM recipient WHERE campaign_id = ? AND id > ? '
                             "ORDER BY id LIMIT ?", [cid, last, size])
        if not recips:
            return
        last = recips[-1]["id"]
        lead_ids = [r["lead_id"] for r in recips]
        lead_in, lead_params = in_list("lead_id", lead_ids)
        sends: dict[int, list] = {}
        for s in await fetch(f"SELECT lead_id, queued_at, sent_at, delivered_at, read_at, clicked_at FROM send "
                             f"WHERE campaign_id = ? AND {lead_in}", [cid, *lead_params]):
            sends.setdefault(s["lead_id"], []).append(_Snap(s))
        goals: dict[int, datetime] = {}
        for a in await fetch(f"SELECT lead_id, occurred_at FROM attribution WHERE campaign_id = ? AND matches = ? "
                             f"AND {lead_in}", [cid, True, *lead_params]):
            at = db_datetime(a["occurred_at"])
            if a["lead_id"] not in goals or at < goals[a["lead_id"]]:
                goals[a["lead_id"]] = at
        id_in, id_params = in_list("id", lead_ids)
        leads = {r["id"]: r for r in await fetch(
            "SELECT id, external_id, name, email, email_verified, phone, whatsapp, push_token, linkedin_url, "
            f"twitter_url, tags, center_id, unsubscribed, created_at FROM lead WHERE {id_in}", id_params)}
        recipient_rows, user_rows = [], []
        campaign_gid = global_id("Campaign", cid)
        for r in recips:
            mine = sends.get(r["lead_id"], [])
            recipient_rows.append((
                campaign_gid, global_id("Lead", r["lead_id"]), r["group"], iso(r["added_at"]),
                iso(_first(s.sent_at for s in mine)),
                iso(_first(analytics.counted_read(s, campaign) for s in mine)),
                iso(_first(analytics.counted_click(s, campaign) for s in mine)),
                iso(goals.get(r["lead_id"]))))
            lead = leads.get(r["lead_id"])
            if lead is not None:
                user_rows.append((
                    global_id("Lead", lead["id"]), lead["external_id"], lead["name"], lead["email"],
                    bool(lead["email_verified"]), lead["phone"], lead["whatsapp"], lead["push_token"] is not None,
                    lead["linkedin_url"], lead["twitter_url"], ", ".join(_json_list(lead["tags"])),
                    global_id("Center", lead["center_id"]), ", ".join(_json_list(lead["unsubscribed"])),
                    iso(lead["created_at"])))
        yield recipient_rows, user_rows


def _json_list(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (str, bytes)):
        value = orjson.loads(value)
    return [str(v) for v in value]


class _Writer:
    """XlsxWriter in constant-memory mode (one temp file per sheet, rows flushed as written)."""

    def __init__(self, path: str, tmpdir: str) -> None:
        self.book = xlsxwriter.Workbook(path, {"constant_memory": True, "tmpdir": tmpdir,
                                               "strings_to_numbers": False, "strings_to_formulas": False,
                                               "strings_to_urls": False})
        self.sheets = {}
        self.next_row = {}

    def sheet(self, name: str, columns) -> None:
        ws = self.book.add_worksheet(name)
        ws.write_row(0, 0, columns)
        self.sheets[name] = ws
        self.next_row[name] = 1

    def rows(self, name: str, rows) -> None:
        """Typed writes, empty cells skipped (twice as fast as write_row's type dispatch)."""
        ws, r = self.sheets[name], self.next_row[name]
        text, number, boolean = ws.write_string, ws.write_number, ws.write_boolean
        for row in rows:
            for col, value in enumerate(row):
                if value is None:
                    continue
                if isinstance(value, str):
                    text(r, col, value)
                elif isinstance(value, bool):
                    boolean(r, col, value)
                else:
                    number(r, col, value)
            r += 1
        self.next_row[name] = r

    def close(self) -> None:
        self.book.close()


async def write_workbook(campaign_id: int, path: str, tmpdir: str,
                         on_progress: Callable[[int, int], Awaitable[None]] | None = None,
                         chunk: int = CHUNK) -> Counts:
    """Write the campaign's workbook (plain XLSX) to `path`. `on_progress(done, total)` runs after
    every chunk (it may raise to stop the export, e.g. when it was cancelled)."""
    p = await plan(campaign_id)
    c = p.campaign
    counts = Counts()
    w = _Writer(path, tmpdir)
    try:
        for name, cols in (("Campaign", CAMPAIGN_COLUMNS), ("CampaignStat", STAT_COLUMNS),
                           ("CampaignUser", RECIPIENT_COLUMNS), ("User", USER_COLUMNS)):
            w.sheet(name, cols)
        t = p.totals
        w.rows("Campaign", [(
            global_id("Campaign", c.id), c.name, _value(c.type), _value(c.status), c.audience_size, c.reach,
            t["sent"], t["viewed"], t["clicked"], t["goals"], str(from_micros(t["revenue_micros"])), p.currency,
            iso(c.start_at), iso(c.end_at), iso(c.created_at), iso(c.updated_at))])
        counts.campaign = 1
        by_day = {db_date(d["day"]): d for d in p.days}
        day, stat_rows = p.first_day, []
        while day <= p.last_day:
            d = by_day.get(day)
            stat_rows.append((day.isoformat(), *(d[f] if d else 0 for f in ("sent", "viewed", "clicked", "goals")),
                              str(from_micros(d["revenue_micros"] if d else 0))))
            day += timedelta(days=1)
        await asyncio.to_thread(w.rows, "CampaignStat", stat_rows)
        counts.stat = len(stat_rows)
        total = p.total_rows
        if on_progress:
            await on_progress(counts.rows, total)
        async for recipient_rows, user_rows in recipient_chunks(c, chunk):
            def write(rr=recipient_rows, ur=user_rows):
                w.rows("CampaignUser", rr)
                w.rows("User", ur)
            await asyncio.to_thread(write)
            counts.recipient += len(recipient_rows)
            counts.user += len(user_rows)
            if on_progress:
                await on_progress(counts.rows, max(total, counts.rows))
    finally:
        await asyncio.to_thread(w.close)
    return counts


def _value(v):
    return getattr(v, "value", v)
