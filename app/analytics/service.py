"""Engagement analytics, goals, attribution and lift (SPEC §9).

Attribution windows (per campaign; defaults 168 h / 720 h / 168 h):
- a read counts only within `view_window_hours` of the send (a click is a read);
- a goal counts for a TREATMENT recipient when it happened within
  `goal_window_hours` of a send, after a counted read of that send and within
  `goal_after_view_window_hours` of that read;
- for a CONTROL recipient the same goal window runs from the moment it would
  have been messaged (when it became a recipient); it has no read to wait for.

Attribution is decided when a goal event arrives, re-decided when a read of the
recipient's sends changes, and recomputed for a whole campaign when its windows
or goal change; `rebuild()` recomputes everything. Everything the API reads is
a rollup kept in the same transaction: `campaign_day_stat` (sent, viewed,
clicked, goals, revenue per day), `campaign_outcome` (per group: exposed,
engaged, converters, conversions, revenue) and the recipients' funnel flags.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import orjson
from tortoise.expressions import Subquery
from tortoise.transactions import in_transaction

from app.audience.leads import leads_query
from app.core.errors import DomainError, ErrorCode, check_no_nul, check_range, has_nul
from app.core.money import to_micros
from app.db import (
    Rows,
    db_datetime,
    execute,
    fetch,
    in_list,
    in_pairs,
    insert_together,
    is_retryable,
    lock_rows,
    param_date,
    update_rows,
)
from app.delivery.ingest import Rejection
from app.tenancy.access import Principal
from models.campaigns import Campaign, CampaignChannel, Recipient
from models.enums import CampaignStatus, Channel, GoalType, RecipientGroup
from models.goals import Attribution, CampaignChannelDayStat, CampaignDayStat, CampaignOutcome, GoalEvent
from models.sends import Send
from models.tenancy import Organization

BUSINESS_GOALS = {GoalType.SALE, GoalType.LEAD}
STAT_FIELDS = ("sent", "viewed", "clicked", "goals", "revenue_micros", "exposures", "engagements", "control_goals",
               "goals_after_click", "revenue_after_click_micros")
CHANNEL_FIELDS = ("exposures", "conversions")
OUTCOME_FIELDS = ("exposed", "engaged", "converters", "conversions", "revenue_micros")
MIN_SAMPLE = 100  # per group, below which lift is flagged as not meaningful
LEAD_CHUNK = 5000


# ---------------------------------------------------------------- pure rules


def send_time(s) -> datetime:
    return s.sent_at or s.delivered_at or s.queued_at


def counted_read(s, campaign: Campaign) -> datetime | None:
    """The read of a send, if it counts (within the view window of the send)."""
    if s.read_at is None:
        return None
    if s.read_at - send_time(s) > timedelta(hours=campaign.view_window_hours):
        return None
    return s.read_at


def counted_click(s, campaign: Campaign) -> datetime | None:
    if s.clicked_at is None or counted_read(s, campaign) is None:
        return None
    return s.clicked_at


def matches_goal(campaign: Campaign, goal_type: GoalType, key: str | None) -> bool:
    return campaign.goal_type is not None and GoalType(goal_type) == GoalType(campaign.goal_type) and (
        not campaign.goal_key or campaign.goal_key == key)


def would_be_messaged_at(campaign: Campaign, added_at: datetime) -> datetime:
    """A control recipient's virtual send time: when it joined, but not before the campaign went live."""
    return max(t for t in (added_at, campaign.live_since, campaign.start_at) if t is not None)


def attributed(campaign: Campaign, group: RecipientGroup, added_at: datetime, sends: list, goal_at: datetime) -> bool:
    if group == RecipientGroup.CONTROL:
        t0 = would_be_messaged_at(campaign, added_at)
        return t0 <= goal_at <= t0 + timedelta(hours=campaign.goal_window_hours)
    return attributing_send(campaign, sends, goal_at) is not None


def attributing_send(campaign: Campaign, sends: list, goal_at: datetime):
    """The treatment send a goal is attributed through: among the recipient's sends of the campaign whose
    counted read and send time put the goal inside the windows, the one read last at or before the goal
    (last touch; equal read times: the highest send id). None: the goal is not attributed."""
    window = timedelta(hours=campaign.goal_window_hours)
    after_view = timedelta(hours=campaign.goal_after_view_window_hours)
    best = None
    for s in sends:
        read = counted_read(s, campaign)
        t0 = send_time(s)
        if read is not None and t0 <= goal_at <= t0 + window and read <= goal_at <= read + after_view:
            if best is None or (read, s.id) > best[0]:
                best = ((read, s.id), s)
    return best[1] if best else None


def clicked_before(campaign: Campaign, group: RecipientGroup, sends: list, goal_at: datetime) -> bool:
    """An attributed treatment goal "after a click": the recipient has a counted click (its read within the
    view window) on one of its sends of the campaign at or before the goal."""
    if RecipientGroup(group) != RecipientGroup.TREATMENT:
        return False
    return any((click := counted_click(s, campaign)) is not None and click <= goal_at for s in sends)


def stat_contribution(s, campaign: Campaign, tz: ZoneInfo) -> dict[date, dict[str, int]]:
    out: dict[date, dict[str, int]] = defaultdict(lambda: dict.fromkeys(STAT_FIELDS, 0))
    if s.was_sent:
        out[send_time(s).astimezone(tz).date()]["sent"] += 1
    read = counted_read(s, campaign)
    if read is not None:
        out[read.astimezone(tz).date()]["viewed"] += 1
    click = counted_click(s, campaign)
    if click is not None:
        out[click.astimezone(tz).date()]["clicked"] += 1
    return out


# ---------------------------------------------------------------- rollup writes


class Rollups:
    """Deltas of one transaction for campaign_day_stat and campaign_outcome."""

    def __init__(self) -> None:
        self.days: dict[tuple[int, int, date], dict[str, int]] = defaultdict(lambda: dict.fromkeys(STAT_FIELDS, 0))
        self.outcomes: dict[tuple[int, int, str], dict[str, int]] = defaultdict(
            lambda: dict.fromkeys(OUTCOME_FIELDS, 0))
        self.channel_days: dict[tuple[int, int, str, date], dict[str, int]] = defaultdict(
            lambda: dict.fromkeys(CHANNEL_FIELDS, 0))

    def day(self, org_id: int, campaign_id: int, day: date, values: dict[str, int], sign: int = 1) -> None:
        row = self.days[(org_id, campaign_id, day)]
        for k, v in values.items():
            row[k] += sign * v

    def channel_day(self, org_id: int, campaign_id: int, channel, day: date, values: dict[str, int],
                    sign: int = 1) -> None:
        row = self.channel_days[(org_id, campaign_id, Channel(channel).value, day)]
        for k, v in values.items():
            row[k] += sign * v

    def outcome(self, org_id: int, campaign_id: int, group: RecipientGroup, **values: int) -> None:
        row = self.outcomes[(org_id, campaign_id, RecipientGroup(group).value)]
        for k, v in values.items():
            row[k] += v

    def writes(self) -> list[Rows]:
        """The three rollup upserts (`x = x + excluded.x`, rows in key order, rows of zeros left out),
        for `db.insert_together`."""
        return [
            _upsert("campaign_day_stat", {"organization_id": "int8", "campaign_id": "int8", "day": "date"},
                    ("campaign_id", "day"), STAT_FIELDS,
                    [(k[0], k[1], param_date(k[2]), v) for k, v in sorted(self.days.items())]),
            _upsert("campaign_outcome", {"organization_id": "int8", "campaign_id": "int8", '"group"': "text"},
                    ("campaign_id", '"group"'), OUTCOME_FIELDS,
                    [(k[0], k[1], k[2], v) for k, v in sorted(self.outcomes.items())]),
            _upsert("campaign_channel_day_stat",
                    {"organization_id": "int8", "campaign_id": "int8", "channel": "text", "day": "date"},
                    ("campaign_id", "channel", "day"), CHANNEL_FIELDS,
                    [(k[0], k[1], k[2], param_date(k[3]), v) for k, v in sorted(self.channel_days.items())]),
        ]

    async def apply(self) -> None:
        await insert_together(*self.writes())


def _upsert(table: str, keys: dict, conflict: tuple, fields: tuple, rows: list) -> Rows:
    updates = ", ".join(f"{f} = {table}.{f} + excluded.{f}" for f in fields)
    return Rows(table, {**keys, **{f: "int8" for f in fields}},
                [(*r[:-1], *(r[-1][f] for f in fields)) for r in rows if any(r[-1].values())],
                f"ON CONFLICT ({', '.join(conflict)}) DO UPDATE SET {updates}")


# ---------------------------------------------------------------- ingestion hook


async def on_sends_changed(changed: list, old: dict[int, dict], tz: ZoneInfo,
                           campaigns: dict[int, Campaign] | None = None, writes: list | None = None) -> None:
    """Called by send ingestion inside its transaction (campaign rows already locked).

    `changed` are the sends in their new state (models or rows with the same attributes),
    `old` their previous state by send id (absent for a send created in this batch);
    `campaigns` the campaigns read under their lock, if the caller has them; `writes`: when given,
    the rollup upserts are appended to it (the caller writes them before its commit, with its own)
    instead of being written here."""
    if not changed:
        return
    campaigns = dict(campaigns or {})
    missing = list({s.campaign_id for s in changed} - set(campaigns))
    if missing:
        campaigns.update({c.id: c for c in await Campaign.filter(id__in=missing)})
    rollups = Rollups()
    for s in changed:
        campaign = campaigns[s.campaign_id]
        before = old.get(s.id)
        if before is not None:
            for day, values in stat_contribution(_Snap(before), campaign, tz).items():
                rollups.day(s.organization_id, s.campaign_id, day, values, -1)
        for day, values in stat_contribution(s, campaign, tz).items():
            rollups.day(s.organization_id, s.campaign_id, day, values)
    # Recipient flags, per-channel exposures and goal attribution read a send only through its
    # times (`FLAG_TIMES`): a pair none of whose sends moved one of them (a new send that is only
    # SENT, a cost correction …) has nothing to recompute, and its sends are not read.
    pairs = {(s.campaign_id, s.lead_id) for s in changed if _moves_flags(s, old.get(s.id))}
    if not pairs:
        await _write(rollups, writes)
        return
    await _refresh_flags(pairs, campaigns, rollups, tz, known=changed, old=old)
    org_ids = list({s.organization_id for s in changed})
    org_in, org_params = in_list("organization_id", org_ids)
    lead_in, lead_params = in_list("lead_id", {p[1] for p in pairs})
    leads_with_goals = {r["lead_id"] for r in await fetch(
        f"SELECT DISTINCT lead_id FROM goal_event WHERE {org_in} AND {lead_in}", [*org_params, *lead_params])}
    goal_pairs = {p for p in pairs if p[1] in leads_with_goals}
    if goal_pairs:
        await _reattribute(goal_pairs, campaigns, tz, rollups)
    await _write(rollups, writes)


async def _write(rollups: Rollups, writes: list | None) -> None:
    if writes is None:
        await rollups.apply()
    else:
        writes.extend(rollups.writes())


#: The send times that recipient flags (exposed: delivered; engaged: a counted click, a reply), the
#: per-channel first delivery and goal attribution (a counted read, the send time, a counted click)
#: depend on. `counted_read`/`counted_click` measure from `send_time` (sent, delivered or queued).
FLAG_TIMES = ("queued_at", "sent_at", "delivered_at", "read_at", "clicked_at", "replied_at")
#: Of those, the ones a send must hold to count at all (without a delivery, read, click or reply a
#: send exposes, engages and attributes nothing, whatever its send time).
_COUNTING_TIMES = ("delivered_at", "read_at", "clicked_at", "replied_at")


def _moves_flags(s, before: dict | None) -> bool:
    """Whether this change of a send can move its recipient's flags, per-channel exposures or
    attribution: a new send holding a delivery, read, click or reply; an existing one whose times moved."""
    if before is None:
        return any(getattr(s, f) is not None for f in _COUNTING_TIMES)
    return any(getattr(s, f) != before[f] for f in FLAG_TIMES)


class _Snap:
    def __init__(self, d: dict) -> None:
        self.__dict__.update(d)


_FLAG_SEND_FIELDS = ("id", "campaign_id", "lead_id", "channel", "queued_at", "sent_at", "delivered_at", "read_at", "clicked_at",
                     "replied_at")


async def _refresh_flags(pairs: set[tuple[int, int]], campaigns: dict[int, Campaign], rollups: Rollups,
                         tz: ZoneInfo, known: list | None = None, old: dict[int, dict] | None = None) -> None:
    """Recipients' exposed/engaged flags from all their sends of the campaign, and the daily
    exposures/engagements (a treatment recipient counted once, on the day it was first exposed/engaged)
    and per channel (once per channel, on the day its first send on that channel was delivered).

    `known`: sends the caller holds in their current state (not read again); `old`: the previous state of
    those of them that existed before (ingestion). Without `old` the per-channel rollup holds nothing for
    these pairs yet (a recompute cleared it).

    Every send of each pair is read (one exact-pairs lookup, `in_pairs`): the per-channel first
    delivery needs them all, so the flags are not moved incrementally from the stored times."""
    if not pairs:
        return
    pair_in, pair_params = in_pairs(("campaign_id", "lead_id"), pairs)
    recips = await fetch(f'SELECT id, campaign_id, lead_id, "group", exposed_at, engaged_at FROM recipient '
                         f"WHERE {pair_in}", pair_params)
    missing = {r["campaign_id"] for r in recips} - set(campaigns)
    if missing:
        campaigns = {**campaigns, **{c.id: c for c in await Campaign.filter(id__in=list(missing))}}
    sends = defaultdict(list)
    known_ids = set()
    for s in known or ():
        known_ids.add(s.id)
        if (s.campaign_id, s.lead_id) in pairs:
            sends[(s.campaign_id, s.lead_id)].append(s)
    others = f"SELECT {', '.join(_FLAG_SEND_FIELDS)} FROM send WHERE {pair_in}"
    params = list(pair_params)
    if known_ids:
        id_in, id_params = in_list("id", sorted(known_ids))
        others += f" AND NOT ({id_in})"
        params += id_params
    for row in await fetch(others, params):
        key = (row["campaign_id"], row["lead_id"])
        if key in pairs:
            sends[key].append(_Snap({f: db_datetime(row[f]) if f.endswith("_at") else row[f]
                                     for f in _FLAG_SEND_FIELDS}))

    def delivered_before(s) -> datetime | None:
        """A send's delivered_at before this change (ingestion): its old state, none for a new send."""
        if s.id in old:
            return old[s.id]["delivered_at"]
        return None if s.id in known_ids else s.delivered_at

    moved: list[tuple] = []
    for r in recips:
        key = (r["campaign_id"], r["lead_id"])
        if key not in pairs:
            continue
        was_exposed, was_engaged = db_datetime(r["exposed_at"]), db_datetime(r["engaged_at"])
        mine = sends.get(key, [])
        campaign = campaigns[r["campaign_id"]]
        exposed = min((s.delivered_at for s in mine if s.delivered_at), default=None)
        engaged = min((t for s in mine for t in (counted_click(s, campaign), s.replied_at) if t), default=None)
        org_id = campaign.organization_id
        if RecipientGroup(r["group"]) == RecipientGroup.TREATMENT:
            now_first = _first_delivered(mine, lambda s: s.delivered_at)
            was_first = _first_delivered(mine, delivered_before) if old is not None else {}
            for channel in sorted(set(now_first) | set(was_first)):
                was, now = was_first.get(channel), now_first.get(channel)
                if was != now:
                    if was is not None:
                        rollups.channel_day(org_id, r["campaign_id"], channel, was.astimezone(tz).date(),
                                            {"exposures": 1}, -1)
                    if now is not None:
                        rollups.channel_day(org_id, r["campaign_id"], channel, now.astimezone(tz).date(),
                                            {"exposures": 1})
        if exposed == was_exposed and engaged == was_engaged:
            continue
        rollups.outcome(org_id, r["campaign_id"], r["group"],
                        exposed=int(exposed is not None) - int(was_exposed is not None),
                        engaged=int(engaged is not None) - int(was_engaged is not None))
        if RecipientGroup(r["group"]) == RecipientGroup.TREATMENT:
            for name, was, now in (("exposures", was_exposed, exposed), ("engagements", was_engaged, engaged)):
                if was != now:
                    if was is not None:
                        rollups.day(org_id, r["campaign_id"], was.astimezone(tz).date(), {name: 1}, -1)
                    if now is not None:
                        rollups.day(org_id, r["campaign_id"], now.astimezone(tz).date(), {name: 1})
        moved.append((r["id"], exposed, engaged))
    await update_rows("recipient", ("id", "int8"), {"exposed_at": "timestamptz", "engaged_at": "timestamptz"}, moved)


def _first_delivered(sends: list, delivered) -> dict[str, datetime]:
    """Per channel: the earliest delivery among these sends (`delivered(send)` gives a send's time)."""
    out: dict[str, datetime] = {}
    for s in sends:
        t = delivered(s)
        if t is not None:
            channel = Channel(s.channel).value
            if channel not in out or t < out[channel]:
                out[channel] = t
    return out


# ---------------------------------------------------------------- attribution


async def _reattribute(pairs: set[tuple[int, int]], campaigns: dict[int, Campaign], tz: ZoneInfo,
                       rollups: Rollups) -> None:
    """Recompute the attribution of these (campaign, lead) pairs from sends and goal events."""
    campaign_ids = list({p[0] for p in pairs})
    lead_ids = list({p[1] for p in pairs})
    for cid in campaign_ids:
        if cid not in campaigns:
            campaigns[cid] = await Campaign.get(id=cid)
    recips = {(r.campaign_id, r.lead_id): r for r in
              await Recipient.filter(campaign_id__in=campaign_ids, lead_id__in=lead_ids) if (r.campaign_id, r.lead_id) in pairs}
    sends = defaultdict(list)
    for s in await Send.filter(campaign_id__in=campaign_ids, lead_id__in=lead_ids):
        sends[(s.campaign_id, s.lead_id)].append(s)
    goals = defaultdict(list)
    org_ids = list({c.organization_id for c in campaigns.values() if c.id in campaign_ids})
    for g in await GoalEvent.filter(organization_id__in=org_ids, lead_id__in=lead_ids).order_by("occurred_at", "id"):
        goals[g.lead_id].append(g)
    existing = defaultdict(dict)
    for a in await Attribution.filter(campaign_id__in=campaign_ids, lead_id__in=lead_ids):
        if (a.campaign_id, a.lead_id) in pairs:
            existing[(a.campaign_id, a.lead_id)][a.goal_event_id] = a
    to_create: list[Attribution] = []
    to_delete: list[int] = []
    converted_rows: list[tuple] = []
    for key in sorted(pairs):
        cid, lead_id = key
        campaign, recipient = campaigns[cid], recips.get(key)
        want: dict[int, tuple[GoalEvent, bool, bool, str | None]] = {}
        if recipient is not None and campaign.status != CampaignStatus.DRAFT:
            mine = sends.get(key, [])
            control = RecipientGroup(recipient.group) == RecipientGroup.CONTROL
            for g in goals.get(lead_id, []):
                if control:
                    if not attributed(campaign, recipient.group, recipient.added_at, mine, g.occurred_at):
                        continue
                    channel = None
                else:
                    through = attributing_send(campaign, mine, g.occurred_at)
                    if through is None:
                        continue
                    channel = Channel(through.channel).value
                want[g.id] = (g, matches_goal(campaign, g.goal_type, g.key),
                              clicked_before(campaign, recipient.group, mine, g.occurred_at), channel)
        have = existing.get(key, {})
        org_id = campaign.organization_id

        def same(a: Attribution, wanted: tuple) -> bool:
            return (wanted[1] == a.matches and wanted[2] == a.after_click
                    and wanted[3] == (Channel(a.channel).value if a.channel else None))

        for gid, a in have.items():
            if gid not in want or not same(a, want[gid]):
                to_delete.append(a.id)
                _count(rollups, campaign, a.group, a.matches, a.goal_type, a.value_micros, a.day, -1, a.after_click,
                       a.channel)
        for gid, (g, match, after_click, channel) in want.items():
            if gid in have and same(have[gid], want[gid]):
                continue
            day = g.occurred_at.astimezone(tz).date()
            group = recipient.group
            to_create.append(Attribution(organization_id=org_id, campaign_id=cid, lead_id=lead_id, goal_event_id=gid,
                                         group=group, matches=match, goal_type=g.goal_type,
                                         value_micros=g.value_micros, occurred_at=g.occurred_at, day=day,
                                         after_click=after_click, channel=channel))
            _count(rollups, campaign, group, match, g.goal_type, g.value_micros, day, +1, after_click, channel)
        converted = min((g.occurred_at for g, match, _, _ in want.values() if match), default=None)
        if recipient is not None and converted != recipient.converted_at:
            rollups.outcome(org_id, cid, recipient.group,
                            converters=int(converted is not None) - int(recipient.converted_at is not None))
            converted_rows.append((recipient.id, converted))
    # One statement for every recipient whose conversion moved (it was one per recipient).
    await update_rows("recipient", ("id", "int8"), {"converted_at": "timestamptz"}, converted_rows)
    if to_delete:
        await Attribution.filter(id__in=to_delete).delete()
    if to_create:
        await Attribution.bulk_create(to_create, batch_size=1000)


def _count(rollups: Rollups, campaign: Campaign, group, match: bool, goal_type, value: int, day: date, sign: int,
           after_click: bool = False, channel=None):
    if not match:
        return
    revenue = value if GoalType(goal_type) == GoalType.SALE else 0
    rollups.outcome(campaign.organization_id, campaign.id, group, conversions=sign, revenue_micros=sign * revenue)
    if RecipientGroup(group) == RecipientGroup.TREATMENT:
        values = {"goals": 1, "revenue_micros": revenue}
        if after_click:
            values.update(goals_after_click=1, revenue_after_click_micros=revenue)
        rollups.day(campaign.organization_id, campaign.id, day, values, sign)
        if channel is not None:
            rollups.channel_day(campaign.organization_id, campaign.id, channel, day, {"conversions": 1}, sign)
    else:
        rollups.day(campaign.organization_id, campaign.id, day, {"control_goals": 1}, sign)


async def attribute_new_recipients(campaign: Campaign, lead_ids: list[int] | None = None) -> None:
    """New recipients (launch, ALWAYS_ON growth): goals they reached before joining the
    campaign's recipients count exactly as a rebuild would count them."""
    qs = GoalEvent.filter(organization_id=campaign.organization_id)
    if lead_ids is not None:
        qs = qs.filter(lead_id__in=lead_ids)
    else:
        qs = qs.filter(lead_id__in=Subquery(Recipient.filter(campaign_id=campaign.id).values("lead_id")))
    goal_leads = set(await qs.values_list("lead_id", flat=True))
    if not goal_leads:
        return
    tz = ZoneInfo((await Organization.get(id=campaign.organization_id)).timezone)
    rollups = Rollups()
    await _reattribute({(campaign.id, lead_id) for lead_id in goal_leads}, {campaign.id: campaign}, tz, rollups)
    await rollups.apply()


# ---------------------------------------------------------------- goal events


@dataclass
class GoalEventData:
    idempotency_key: str
    goal_type: GoalType
    occurred_at: datetime
    lead_id: int | None = None
    lead_external_id: str | None = None
    key: str | None = None
    value: object = None
    invalid: str | None = None


@dataclass
class GoalIngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: list = field(default_factory=list)
    campaign_ids: set[int] = field(default_factory=set)


async def ingest_goal_events(principal: Principal, events: list[GoalEventData], max_batch: int = 5000) -> GoalIngestResult:

    principal.require_ingest()
    if len(events) > max_batch:
        raise DomainError(ErrorCode.BATCH_TOO_LARGE, f"at most {max_batch} events per call", "events")
    out = GoalIngestResult()
    valid = []
    by_key: dict[str, set[str]] = {}
    lead_ids = {e.lead_id for e in events if e.lead_id}
    exts = {e.lead_external_id for e in events if e.lead_external_id and not has_nul(e.lead_external_id)}
    visible = leads_query(principal)
    leads = {lead.id: lead.id for lead in await visible.filter(id__in=list(lead_ids))}
    by_ext = dict(await visible.filter(external_id__in=list(exts)).values_list("external_id", "id")) if exts else {}
    for i, e in enumerate(events):
        try:
            if e.invalid:
                raise DomainError(ErrorCode.NOT_FOUND, e.invalid)
            check_no_nul(idempotencyKey=e.idempotency_key, key=e.key, leadExternalId=e.lead_external_id)
            if not e.idempotency_key or not e.idempotency_key.strip() or len(e.idempotency_key) > 200:
                raise DomainError(ErrorCode.INVALID, "idempotencyKey must be 1 to 200 characters")
            if e.occurred_at.tzinfo is None:
                raise DomainError(ErrorCode.INVALID, "occurredAt must carry a time zone offset")
            e.occurred_at = e.occurred_at.astimezone(timezone.utc)
            if e.occurred_at.year < 2000 or e.occurred_at > datetime.now(timezone.utc) + timedelta(days=366):
                raise DomainError(ErrorCode.OUT_OF_RANGE, "occurredAt is out of range")
            if e.key is not None and len(e.key) > 200:
                raise DomainError(ErrorCode.TOO_LONG, "key: at most 200 characters")
            lead_id = leads.get(e.lead_id) if e.lead_id else by_ext.get(e.lead_external_id)
            if lead_id is None:
                raise DomainError(ErrorCode.NOT_FOUND if (e.lead_id or e.lead_external_id) else ErrorCode.INVALID,
                                  "lead not found" if (e.lead_id or e.lead_external_id) else "leadId or leadExternalId is required")
            value = to_micros(e.value, "value") if e.value is not None else 0
        except DomainError as exc:
            out.rejected.append(Rejection(i, exc.code, exc.message))
            continue
        digest = hashlib.sha256(orjson.dumps({
            "lead": lead_id, "type": GoalType(e.goal_type).value, "key": e.key, "value": value,
            "at": e.occurred_at.isoformat()}, option=orjson.OPT_SORT_KEYS)).hexdigest()
        digests = by_key.setdefault(e.idempotency_key, set())
        if digest in digests:
            out.duplicates += 1
            continue
        digests.add(digest)  # another payload for a key: _store_goals decides, whatever the order
        valid.append((i, e, lead_id, value, digest))
    if valid:
        for attempt in range(6):
            try:
                applied = await _store_goals(principal.org_id, valid)
                break
            except Exception as exc:  # noqa: BLE001 - only races are retried
                if attempt == 5 or not is_retryable(exc):
                    raise
        out.accepted, out.duplicates = applied.accepted, out.duplicates + applied.duplicates
        out.rejected += applied.rejected
        out.campaign_ids = applied.campaign_ids
    out.rejected.sort(key=lambda r: r.index)
    from subscriptions import bus

    for cid in sorted(out.campaign_ids):
        await bus.campaign_changed(principal.org_id, cid, "goals")
    return out


def _repeated(index: int, key: str, digest: str, known: dict[str, str], out: GoalIngestResult) -> bool:
    """A key seen before: a duplicate (same payload) or a conflict (different payload)."""

    if key not in known:
        return False
    if known[key] == digest:
        out.duplicates += 1
    else:
        out.rejected.append(Rejection(index, ErrorCode.IDEMPOTENCY_CONFLICT, "idempotencyKey reused with a different payload"))
    return True


async def _store_goals(org_id: int, valid: list) -> GoalIngestResult:
    out = GoalIngestResult()
    tz = ZoneInfo((await Organization.get(id=org_id)).timezone)
    async with in_transaction():
        seen = dict(await GoalEvent.filter(organization_id=org_id, idempotency_key__in=[v[1].idempotency_key for v in valid])
                    .values_list("idempotency_key", "payload_hash"))
        fresh = []
        # A stored payload decides which repeats of a key are duplicates, in any order; with
        # nothing stored, the earliest in the batch wins and other payloads are conflicts.
        for i, e, lead_id, value, digest in sorted(valid, key=lambda v: v[0]):
            if _repeated(i, e.idempotency_key, digest, seen, out):
                continue
            seen[e.idempotency_key] = digest
            fresh.append(GoalEvent(organization_id=org_id, lead_id=lead_id, goal_type=e.goal_type, key=e.key,
                                   value_micros=value, occurred_at=e.occurred_at, idempotency_key=e.idempotency_key,
                                   payload_hash=digest))
        if not fresh:
            return out
        await GoalEvent.bulk_create(fresh, batch_size=1000)
        out.accepted = len(fresh)
        leads = list({g.lead_id for g in fresh})
        pairs = {(r["campaign_id"], r["lead_id"]) for r in
                 await Recipient.filter(lead_id__in=leads).values("campaign_id", "lead_id")}
        if pairs:
            await lock_rows("campaign", {p[0] for p in pairs})
            rollups = Rollups()
            await _reattribute(pairs, {}, tz, rollups)
            await rollups.apply()
            out.campaign_ids = {p[0] for p in pairs}
    return out


# ---------------------------------------------------------------- recompute


RECOMPUTE_ON = {"view_window_hours", "goal_window_hours", "goal_after_view_window_hours", "goal_type", "goal_key"}


async def on_sends_changed_hook(batch) -> None:
    """`delivery.sends_changed` handler."""
    await on_sends_changed(batch.changed, batch.old_states, batch.tz, batch.campaigns, batch.writes)


async def on_recipients_added(campaign: Campaign, lead_ids: list[int] | None) -> None:
    """`campaigns.recipients_added` handler: goals the new recipients already reached count."""
    await attribute_new_recipients(campaign, lead_ids)


async def on_settings_changed(campaign: Campaign, keys: set[str]) -> None:
    """`campaigns.settings_changed` handler: the numbers follow new windows or a new goal."""
    if campaign.status != CampaignStatus.DRAFT and keys & RECOMPUTE_ON:
        await recompute_campaign(campaign.id)


async def recompute_campaign(campaign_id: int) -> None:
    """Rebuild one campaign's analytics from its sends and the goal events (windows or goal changed)."""
    campaign = await Campaign.get(id=campaign_id)
    tz = ZoneInfo((await Organization.get(id=campaign.organization_id)).timezone)
    async with in_transaction():
        # Ingestion takes the campaign row lock before it touches these rollups: no delta
        # can land between the deletes below and the recomputed rows.
        await lock_rows("campaign", [campaign_id])
        campaign = await Campaign.get(id=campaign_id)
        await execute("DELETE FROM campaign_day_stat WHERE campaign_id = ?", [campaign_id])
        await execute("DELETE FROM campaign_outcome WHERE campaign_id = ?", [campaign_id])
        await execute("DELETE FROM campaign_channel_day_stat WHERE campaign_id = ?", [campaign_id])
        await execute("DELETE FROM attribution WHERE campaign_id = ?", [campaign_id])
        await Recipient.filter(campaign_id=campaign_id).update(exposed_at=None, engaged_at=None, converted_at=None)
        rollups = Rollups()
        lead_ids: set[int] = set()
        async for chunk in _chunks(Send.filter(campaign_id=campaign_id).order_by("id")):
            for s in chunk:
                lead_ids.add(s.lead_id)
                for day, values in stat_contribution(s, campaign, tz).items():
                    rollups.day(campaign.organization_id, campaign_id, day, values)
        ordered = sorted(lead_ids)
        for i in range(0, len(ordered), LEAD_CHUNK):  # bounded IN lists (PostgreSQL: ≤ 32767 parameters)
            await _refresh_flags({(campaign_id, lead_id) for lead_id in ordered[i:i + LEAD_CHUNK]},
                                 {campaign_id: campaign}, rollups, tz)
        goal_leads = sorted(set(await GoalEvent.filter(
            organization_id=campaign.organization_id,
            lead_id__in=Subquery(Recipient.filter(campaign_id=campaign_id).values("lead_id")),
        ).values_list("lead_id", flat=True)))
        for i in range(0, len(goal_leads), LEAD_CHUNK):
            await _reattribute({(campaign_id, lead_id) for lead_id in goal_leads[i:i + LEAD_CHUNK]},
                               {campaign_id: campaign}, tz, rollups)
        await rollups.apply()


async def _chunks(qs, size: int = 2000):
    """Keyset pages by id (OFFSET would make a big campaign's rebuild quadratic)."""
    last = 0
    while True:
        rows = await qs.filter(id__gt=last).limit(size)
        if not rows:
            return
        yield rows
        last = rows[-1].id


async def rebuild(campaign_ids: list[int] | None = None) -> int:
    ids = campaign_ids if campaign_ids is not None else await Campaign.all().values_list("id", flat=True)
    for cid in ids:
        await recompute_campaign(cid)
    return len(ids)


# ---------------------------------------------------------------- reads


PERIODS = ("TODAY", "LAST_7_DAYS", "LAST_30_DAYS", "THIS_WEEK", "LAST_WEEK", "THIS_MONTH", "LAST_MONTH",
           "THIS_QUARTER", "LAST_QUARTER", "THIS_YEAR", "LAST_YEAR", "LIFETIME")


def preset_range(period: str | None, today: date) -> tuple[date | None, date | None]:
    """A preset's first and last day, given today's date in the organization's time zone.

    Rolling presets end today; calendar presets are whole calendar periods (weeks start on
    Monday, ISO 8601; quarters are Jan–Mar, Apr–Jun, Jul–Sep, Oct–Dec): THIS_* runs from the
    period's first day to today (to date), LAST_* is the whole previous period.
    LIFETIME (or no preset) is (None, None)."""
    if period == "TODAY":
        return today, today
    if period == "LAST_7_DAYS":
        return today - timedelta(days=6), today
    if period == "LAST_30_DAYS":
        return today - timedelta(days=29), today
    if period in ("THIS_WEEK", "LAST_WEEK"):
        monday = today - timedelta(days=today.weekday())
        return (monday, today) if period == "THIS_WEEK" else (monday - timedelta(days=7), monday - timedelta(days=1))
    if period in ("THIS_MONTH", "LAST_MONTH"):
        first = today.replace(day=1)
        if period == "THIS_MONTH":
            return first, today
        end = first - timedelta(days=1)
        return end.replace(day=1), end
    if period in ("THIS_QUARTER", "LAST_QUARTER"):
        first = today.replace(month=3 * ((today.month - 1) // 3) + 1, day=1)
        if period == "THIS_QUARTER":
            return first, today
        end = first - timedelta(days=1)
        return end.replace(month=3 * ((end.month - 1) // 3) + 1, day=1), end
    if period in ("THIS_YEAR", "LAST_YEAR"):
        if period == "THIS_YEAR":
            return today.replace(month=1, day=1), today
        return date(today.year - 1, 1, 1), date(today.year - 1, 12, 31)
    return None, None


async def period_range(campaign: Campaign, period: str | None, date_from: date | None, date_to: date | None
                       ) -> tuple[date | None, date | None, ZoneInfo]:
    tz = ZoneInfo((await Organization.get(id=campaign.organization_id)).timezone)
    today = datetime.now(tz).date()
    if date_from or date_to:
        check_range(date_from, date_to, "to")
        return date_from, date_to, tz
    start, end = preset_range(period, today)
    return start, end, tz


MAX_SERIES_DAYS = 3660


def lifetime_days(campaign: Campaign, tz: ZoneInfo, now: datetime | None = None) -> tuple[date, date]:
    """The campaign's life in days (as the export's stats sheet): from its start (startAt, launch or
    going live, whichever came first; its creation for a draft) to its end (ended, or endAt once
    passed) or today."""
    now = now or datetime.now(timezone.utc)
    first = min((t for t in (campaign.start_at, campaign.launched_at, campaign.live_since) if t), default=None) \
        or campaign.created_at
    finished = campaign.ended_at or (campaign.end_at if campaign.end_at and campaign.end_at <= now else None)
    return first.astimezone(tz).date(), (finished or now).astimezone(tz).date()


async def daily_series(campaign: Campaign, start: date | None, end: date | None, tz: ZoneInfo) -> list[dict]:
    """One row per day of the range, days without activity as zeros. An open end is the campaign's life
    (see lifetime_days), widened to any day that holds figures (a goal after the end, a back-dated event)."""
    rows = await daily(campaign.id, start, end)
    life_start, life_end = lifetime_days(campaign, tz)
    first = start or min([life_start, *(r["day"] for r in rows[:1])])
    last = end or max([life_end, *(r["day"] for r in rows[-1:])])
    if (last - first).days + 1 > MAX_SERIES_DAYS:
        raise DomainError(ErrorCode.INVALID_RANGE, f"a daily series covers at most {MAX_SERIES_DAYS} days", "to")
    by_day = {r["day"]: r for r in rows}
    out = []
    day = first
    while day <= last:
        out.append(by_day.get(day) or {"day": day, **dict.fromkeys(STAT_FIELDS, 0)})
        day += timedelta(days=1)
    return out


async def channel_series(campaign: Campaign, rows: list[dict]) -> list[dict]:
    """Per channel the campaign uses (its configured channels in Channel order, as metrics.byChannel, then any
    other channel holding figures):
    one point per day of `rows` (the campaign's daily series, every day) with the treatment recipients first
    reached (delivered) on that channel that day, those reached so far (every earlier day counted, before the
    range too), the goals attributed through a send on that channel, their rate (conversions / reached so far)
    and the control group's conversion rate of the same day (control goals / control size) beside it."""
    if not rows:
        return []
    first, last = rows[0]["day"], rows[-1]["day"]
    order = [c.value for c in Channel]
    configured = sorted({Channel(c).value for c in await CampaignChannel.filter(campaign_id=campaign.id)
                         .values_list("channel", flat=True)}, key=order.index)
    before: dict[str, int] = defaultdict(int)
    by_day: dict[tuple[str, date], CampaignChannelDayStat] = {}
    for r in await CampaignChannelDayStat.filter(campaign_id=campaign.id, day__lte=last):
        channel = Channel(r.channel).value
        if r.day < first:
            before[channel] += r.exposures
        else:
            by_day[(channel, r.day)] = r
        if channel not in configured and (r.exposures or r.conversions):
            configured.append(channel)
    nc = campaign.control_size
    out = []
    for channel in configured:
        reached = before[channel]
        points = []
        for row in rows:
            r = by_day.get((channel, row["day"]))
            exposures, conversions = (r.exposures, r.conversions) if r else (0, 0)
            reached += exposures
            points.append({"day": row["day"], "exposures": exposures, "reached": reached, "conversions": conversions,
                           "conversion_rate": conversions / reached if reached else 0.0,
                           "control_conversion_rate": row["control_goals"] / nc if nc else 0.0})
        out.append({"channel": Channel(channel), "daily": points})
    return out


async def daily(campaign_id: int, start: date | None, end: date | None) -> list[dict]:
    qs = CampaignDayStat.filter(campaign_id=campaign_id)
    if start:
        qs = qs.filter(day__gte=start)
    if end:
        qs = qs.filter(day__lte=end)
    return [{"day": r.day, **{f: getattr(r, f) for f in STAT_FIELDS}} for r in await qs.order_by("day")
            if any(getattr(r, f) for f in STAT_FIELDS)]


async def outcomes(campaign_id: int) -> dict[RecipientGroup, dict[str, int]]:
    found = {RecipientGroup(r.group): {f: getattr(r, f) for f in OUTCOME_FIELDS}
             for r in await CampaignOutcome.filter(campaign_id=campaign_id)}
    return {g: found.get(g, dict.fromkeys(OUTCOME_FIELDS, 0)) for g in RecipientGroup}


@dataclass
class Lift:
    available: bool
    reason: str | None
    treatment_size: int
    control_size: int
    treatment_conversions: int
    control_conversions: int
    treatment_converters: int
    control_converters: int
    treatment_rate: float
    control_rate: float
    treatment_revenue: int
    control_revenue: int
    treatment_aov: float
    control_aov: float
    baseline_revenue: float
    actual_revenue: int
    incremental_revenue: float
    incremental_conversions: float
    difference: float
    ci_low: float
    ci_high: float
    too_small: bool


async def lift(campaign: Campaign) -> Lift:
    o = await outcomes(campaign.id)
    t, c = o[RecipientGroup.TREATMENT], o[RecipientGroup.CONTROL]
    nt, nc = campaign.reach, campaign.control_size
    rt = t["converters"] / nt if nt else 0.0
    rc = c["converters"] / nc if nc else 0.0
    # Per converting recipient throughout (rates, AOV, incremental conversions), so that the
    # baseline compares like with like even when recipients buy more than once.
    aov_t = t["revenue_micros"] / t["converters"] if t["converters"] else 0.0
    aov_c = c["revenue_micros"] / c["converters"] if c["converters"] else 0.0
    baseline = (nt + nc) * rc * aov_c
    actual = t["revenue_micros"] + c["revenue_micros"]
    se = math.sqrt(rt * (1 - rt) / nt + rc * (1 - rc) / nc) if nt and nc else 0.0
    reason = None
    if campaign.control_group_percent == 0:
        reason = "the campaign has no control group: lift cannot be measured"
    elif campaign.status == CampaignStatus.DRAFT:
        reason = ("the campaign is not launched yet: its control group "
                  f"({campaign.control_group_percent} %) is drawn from the audience at launch")
    elif nc == 0:
        reason = (f"the control group is empty: {campaign.control_group_percent} % of "
                  f"{nt} recipients rounds to nobody, so lift cannot be measured")
    elif campaign.goal_type is None:
        reason = "the campaign has no goal: there is nothing to convert"
    return Lift(
        available=reason is None, reason=reason, treatment_size=nt, control_size=nc,
        treatment_conversions=t["conversions"], control_conversions=c["conversions"],
        treatment_converters=t["converters"], control_converters=c["converters"],
        treatment_rate=rt, control_rate=rc, treatment_revenue=t["revenue_micros"], control_revenue=c["revenue_micros"],
        treatment_aov=aov_t, control_aov=aov_c, baseline_revenue=baseline, actual_revenue=actual,
        incremental_revenue=actual - baseline,
        incremental_conversions=(t["converters"] + c["converters"]) - (nt + nc) * rc,
        difference=rt - rc, ci_low=(rt - rc) - 1.96 * se, ci_high=(rt - rc) + 1.96 * se,
        too_small=reason is None and (nt < MIN_SAMPLE or nc < MIN_SAMPLE or t["converters"] + c["converters"] < 10),
    )


async def peer_rates(campaign: Campaign) -> list[dict]:
    """Conversion rate per day: this campaign vs the average of the organization's
    campaigns with the same goal type (goals of the day / treatment size)."""
    if campaign.goal_type is None:
        return []
    peers = await Campaign.filter(organization_id=campaign.organization_id, goal_type=campaign.goal_type) \
        .exclude(status=CampaignStatus.DRAFT).values("id", "reach")
    reach = {p["id"]: p["reach"] for p in peers}
    rows = await fetch(
        f"SELECT campaign_id, day, goals FROM campaign_day_stat WHERE campaign_id IN ({','.join('?' for _ in reach)}) "
        "AND goals <> 0 ORDER BY day", list(reach)) if reach else []
    per_day: dict[date, list[float]] = defaultdict(list)
    own: dict[date, float] = {}
    for r in rows:
        day = r["day"] if isinstance(r["day"], date) else date.fromisoformat(str(r["day"]))
        rate = r["goals"] / reach[r["campaign_id"]] if reach[r["campaign_id"]] else 0.0
        per_day[day].append(rate)
        if r["campaign_id"] == campaign.id:
            own[day] = rate
    n = max(len(reach), 1)
    return [{"day": d, "rate": own.get(d, 0.0), "average": sum(v) / n} for d, v in sorted(per_day.items())]


async def other_goals(campaign: Campaign) -> list[dict]:
    rows = await fetch(
        "SELECT goal_type, COUNT(*) AS n, COUNT(DISTINCT lead_id) AS leads, SUM(value_micros) AS value FROM attribution "
        "WHERE campaign_id = ? AND matches = ? AND \"group\" = 'TREATMENT' GROUP BY goal_type ORDER BY goal_type",
        [campaign.id, False])
    return [{"goal_type": GoalType(r["goal_type"]), "count": int(r["n"]), "recipients": int(r["leads"]),
             "value_micros": int(r["value"] or 0)} for r in rows]

