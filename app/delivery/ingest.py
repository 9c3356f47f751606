"""Send-event ingestion (SPEC §4): batches, idempotency, out-of-order events.

One batch is validated up front and then applied in one transaction:
one query to find repeated keys, one to find (and lock) the sends, one for the
stored history of existing sends; new sends are inserted once, in their
replayed state, with one statement; one insert for the events, one update for
the existing sends that changed, one counter upsert, one spend update per
campaign, one insert for the change log. A unique violation caused by a
concurrent batch rolls back and retries the batch.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from enum import Enum
from zoneinfo import ZoneInfo

import orjson
from tortoise.transactions import in_transaction

from app import metrics
from app.core.errors import DomainError, ErrorCode, check_no_nul
from app.core.hooks import Hook
from app.core.money import to_micros
from app.db import (
    Rows,
    db_date,
    db_datetime,
    execute,
    fetch,
    fetch_models,
    fetch_positional,
    for_update,
    in_list,
    in_pairs,
    insert_rows,
    insert_together,
    insert_with_children,
    is_retryable,
    merge_json_list,
    select_columns,
    takes_row_locks,
    update_rows,
)
from app.delivery.counters import CounterDelta
from app.delivery.sendstate import STATE_FIELDS, Ev, replay
from app.tenancy.access import Principal
from models.campaigns import Campaign
from models.enums import (
    BounceType,
    CampaignStatus,
    Channel,
    CreditEntryKind,
    RecipientGroup,
    SendEventType,
    SendStatus,
)
from subscriptions import bus

log = logging.getLogger("pulse.ingest")
RETRIES = 8
# External ids of the messages the built-in sender queues (`cp-<job id>`): integrators
# report on them but may not create sends under this prefix.
SYSTEM_EXTERNAL_PREFIX = "cp-"


@dataclass
class SendEventData:
    idempotency_key: str
    external_id: str
    channel: Channel
    type: SendEventType
    occurred_at: datetime
    campaign_id: int | None = None
    lead_id: int | None = None
    lead_external_id: str | None = None
    cost: object = None
    credits: int | None = None
    reason: str | None = None
    machine: bool | None = None
    url: str | None = None
    bounce_type: BounceType | None = None
    # set when an id could not be decoded by the API layer
    invalid: str | None = None


@dataclass
class Rejection:
    index: int
    code: ErrorCode
    message: str


@dataclass
class ChangedSend:
    campaign_id: int
    send_id: int
    channel: Channel
    status: str


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    changes: list[ChangedSend] = field(default_factory=list)
    alerts: list = field(default_factory=list)  # budget alerts raised (billing's rows), published after commit
    campaign_ids: set[int] = field(default_factory=set)


@dataclass
class SendsChanged:
    """What `sends_changed` handlers receive, inside the ingestion transaction, campaigns locked."""

    changed: list  # SendRow, in id order, already in their new state
    old_states: dict[int, dict]  # send id -> state before this batch (existing sends only)
    tz: ZoneInfo  # the organization's time zone
    campaigns: dict[int, Campaign]  # the changed sends' campaigns, read under their row lock
    spend: dict[int, int]  # campaign id -> spend delta in micros (cost of sends that moved)
    alerts: list  # handlers append the budget alerts they raise (published after commit)
    # Handlers may append `db.Rows` / `db.Added` here instead of writing them: ingestion writes them,
    # with its counters and change log, in one round trip (`db.insert_together`) before it commits.
    # Only writes nothing later in the transaction reads, each to a table no other write names.
    writes: list = field(default_factory=list)


#: (SendsChanged) — sends changed state in an ingestion batch. Billing moves spend and raises
#: budget alerts; analytics moves its rollups. Registered at start-up (app.wiring).
sends_changed = Hook("delivery.sends_changed")


@dataclass
class _Valid:
    index: int
    data: SendEventData
    cost_micros: int | None
    hash: str


def _payload_hash(d: SendEventData, cost_micros: int | None) -> str:
    # Enum members as they are: orjson writes a str enum as its value (the same bytes as `.value`,
    # without the property lookups, three per event).
    payload = {
        "externalId": d.external_id, "channel": d.channel, "type": d.type,
        "occurredAt": d.occurred_at.isoformat(), "campaignId": d.campaign_id, "leadId": d.lead_id,
        "leadExternalId": d.lead_external_id, "cost": cost_micros, "credits": d.credits, "reason": d.reason,
        "machine": bool(d.machine), "url": d.url, "bounceType": d.bounce_type,
    }
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _validate(index: int, d: SendEventData) -> _Valid:
    if d.invalid:
        raise DomainError(ErrorCode.NOT_FOUND, d.invalid)
    check_no_nul(idempotencyKey=d.idempotency_key, externalId=d.external_id, leadExternalId=d.lead_external_id,
                 reason=d.reason, url=d.url)
    for value, name, max_len in ((d.idempotency_key, "idempotencyKey", 200), (d.external_id, "externalId", 200)):
        if not value or not value.strip():
            raise DomainError(ErrorCode.INVALID, f"{name} must not be blank")
        if len(value) > max_len:
            raise DomainError(ErrorCode.TOO_LONG, f"{name}: at most {max_len} characters")
    if d.occurred_at.tzinfo is None:
        raise DomainError(ErrorCode.INVALID, "occurredAt must carry a time zone offset")
    d.occurred_at = d.occurred_at.astimezone(timezone.utc)
    if d.occurred_at.year < 2000 or d.occurred_at > datetime.now(timezone.utc) + timedelta(days=366):
        raise DomainError(ErrorCode.OUT_OF_RANGE, "occurredAt is out of range")
    if d.credits is not None and not 0 <= d.credits <= 1_000_000:
        raise DomainError(ErrorCode.OUT_OF_RANGE, "credits must be between 0 and 1000000")
    if d.reason is not None and len(d.reason) > 500:
        raise DomainError(ErrorCode.TOO_LONG, "reason: at most 500 characters")
    if d.url is not None and len(d.url) > 2000:
        raise DomainError(ErrorCode.TOO_LONG, "url: at most 2000 characters")
    if d.lead_external_id is not None and len(d.lead_external_id) > 200:
        raise DomainError(ErrorCode.TOO_LONG, "leadExternalId: at most 200 characters")
    cost = to_micros(d.cost, "cost") if d.cost is not None else None
    return _Valid(index, d, cost, _payload_hash(d, cost))


async def ingest_send_events(principal: Principal, events: list[SendEventData], max_batch: int = 5000) -> IngestResult:
    principal.require_ingest()
    if len(events) > max_batch:
        raise DomainError(ErrorCode.BATCH_TOO_LARGE, f"at most {max_batch} events per call", "events")
    result = IngestResult()
    valid: list[_Valid] = []
    by_key: dict[str, set[str]] = {}  # payload hashes seen per key in this batch
    for index, data in enumerate(events):
        try:
            v = _validate(index, data)
        except DomainError as exc:
            result.rejected.append(Rejection(index, exc.code, exc.message))
            continue
        hashes = by_key.setdefault(data.idempotency_key, set())
        if v.hash in hashes:
            result.duplicates += 1
        else:  # a new key, or another payload for it: _drop_seen decides (order-independent)
            hashes.add(v.hash)
            valid.append(v)
    if valid:
        for attempt in range(RETRIES):
            try:
                applied = await _apply(principal, valid)
                break
            except Exception as exc:  # noqa: BLE001 - only races are retried
                if attempt == RETRIES - 1 or not is_retryable(exc):
                    raise
                await asyncio.sleep(random.uniform(0.005, 0.03) * (attempt + 1))
        result.accepted += applied.accepted
        result.duplicates += applied.duplicates
        result.rejected.extend(applied.rejected)
        result.changes, result.alerts, result.campaign_ids = applied.changes, applied.alerts, applied.campaign_ids
        # Published after the commit, one message per campaign (not per send).
        for cid in sorted(result.campaign_ids):
            await bus.campaign_changed(principal.org_id, cid, "sends")
        await bus.budget_alerts_raised(result.alerts)
    result.rejected.sort(key=lambda r: r.index)
    metrics.INGEST_EVENTS.labels("accepted").inc(result.accepted)
    metrics.INGEST_EVENTS.labels("duplicate").inc(result.duplicates)
    metrics.INGEST_EVENTS.labels("rejected").inc(len(result.rejected))
    return result


class SendRow:
    """The columns of a send that ingestion reads and writes (read by raw SQL: building a
    Tortoise model per row cost more than the rest of the batch)."""

    __slots__ = ("id", "organization_id", "campaign_id", "lead_id", "channel", "center_key", "day", "external_id",
                 *STATE_FIELDS, "system", "reserved_micros")

    def __init__(self, **values) -> None:
        for name in self.__slots__:
            setattr(self, name, values.get(name))


_SEND_COLUMNS = ", ".join(SendRow.__slots__)
_DATETIME_FIELDS = tuple(f for f in STATE_FIELDS if f.endswith("_at"))


def _send_from_db(row: dict) -> SendRow:
    s = SendRow(**row)
    s.channel = Channel(s.channel)
    s.status = SendStatus(s.status)
    s.bounce_type = BounceType(s.bounce_type) if s.bounce_type else None
    s.was_sent, s.system = bool(s.was_sent), bool(s.system)
    s.day = db_date(s.day)
    for f in _DATETIME_FIELDS:
        setattr(s, f, db_datetime(getattr(s, f)))
    return s


async def _apply(principal: Principal, valid: list[_Valid]) -> IngestResult:
    out = IngestResult()
    org_id = principal.org_id
    async with in_transaction():
        # 1. Repeated keys: duplicates, or conflicts when the payload differs
        #    (checked again under the send locks below, for concurrent batches). The same statement
        #    reads the organization's time zone.
        tz_name, seen = await _tz_and_keys(org_id, [v.data.idempotency_key for v in valid])
        tz = ZoneInfo(tz_name)
        fresh = _drop_seen_in(seen, valid, out)
        if not fresh:
            return out

        # 2. Find the existing sends, locked (PostgreSQL, id order): concurrent batches on the
        #    same sends are serialized. Then look at the keys again: a batch that held the
        #    lock may have stored them.
        groups: dict[tuple[Channel, str], list[_Valid]] = defaultdict(list)
        for v in fresh:
            groups[(v.data.channel, v.data.external_id)].append(v)
        sends = await _load_sends(org_id, list(groups), lock=True)
        if sends and takes_row_locks():
            fresh = await _drop_seen(org_id, fresh, out)
            if not fresh:
                return out
            groups = defaultdict(list)
            for v in fresh:
                groups[(v.data.channel, v.data.external_id)].append(v)
            sends = {k: s for k, s in sends.items() if k in groups}
        # What checking and planning read — visible campaigns, unit prices, leads, recipients — in
        # one statement (`_context`).
        ctx = await _context(principal, sends, groups)
        hidden = _check_existing(ctx, sends, groups, out)
        missing = [k for k in groups if k not in sends and k not in hidden]
        units = ctx.units
        planned = await _plan_sends(principal, tz, missing, groups, ctx, out) if missing else []
        # Events of sends that are invalid, invisible or could not be created were rejected above.
        rejected = {r.index for r in out.rejected}

        # 3. Replay each send from its whole history: the events stored before (existing sends)
        #    and this batch's.
        history: dict[tuple[Channel, str], list[Ev]] = defaultdict(list)
        by_send_id = {s.id: k for k, s in sends.items()}
        if sends:
            send_in, send_params = in_list("send_id", sorted(by_send_id))
            for row in await fetch(
                    "SELECT send_id, type, occurred_at, idempotency_key, cost_micros, credits, reason, bounce_type, "
                    f"machine FROM send_event WHERE {send_in}", send_params):
                history[by_send_id[row["send_id"]]].append(Ev(
                    SendEventType(row["type"]), db_datetime(row["occurred_at"]), row["idempotency_key"],
                    row["cost_micros"], row["credits"], row["reason"],
                    BounceType(row["bounce_type"]) if row["bounce_type"] else None, bool(row["machine"])))
        fresh = [v for v in fresh if v.index not in rejected
                 and ((v.data.channel, v.data.external_id) in sends or (v.data.channel, v.data.external_id) in planned)]
        if not fresh:
            return out
        for v in fresh:
            d = v.data
            history[(d.channel, d.external_id)].append(Ev(
                d.type, d.occurred_at, d.idempotency_key, v.cost_micros, d.credits, d.reason, d.bounce_type,
                bool(d.machine)))

        delta = CounterDelta()
        changed: list[SendRow] = []
        old_status: dict[int, SendStatus] = {}
        old_states: dict[int, dict] = {}
        unsubscribes: dict[int, set[str]] = defaultdict(set)

        def replayed(send: SendRow) -> dict:
            unit_cost, unit_credits = units.get((send.campaign_id, send.channel), (0, 0))
            new = replay(history[(send.channel, send.external_id)], unit_cost_micros=unit_cost,
                         unit_credits=unit_credits, created_at=send.queued_at)
            if send.system:
                new["queued_at"] = send.queued_at  # the sender queued it: its own clock is the truth
            return new

        # New sends are written once, in their replayed state, and count (generated included)
        # with their final contribution. One insertion order for every transaction: concurrent
        # batches creating the same sends wait on each other instead of deadlocking.
        created: list[tuple[SendRow, bool]] = []
        for key in sorted(planned, key=lambda k: (k[0].value, k[1])):
            send = planned[key]
            initial = _state_of(send)
            new = replayed(send)
            for f in STATE_FIELDS:
                setattr(send, f, new[f])
            send.day = new["queued_at"].astimezone(tz).date()
            created.append((send, any(initial[f] != new[f] for f in STATE_FIELDS) or send.day != initial["day"]))
        updated: list[SendRow] = []
        for send in sends.values():  # the existing sends (the new ones are not in `sends` yet)
            old = _state_of(send)
            new = replayed(send)
            new_day = new["queued_at"].astimezone(tz).date()
            if all(old[f] == new[f] for f in STATE_FIELDS) and new_day == send.day:
                continue
            old_status[send.id] = send.status
            old_states[send.id] = old
            for f in STATE_FIELDS:
                setattr(send, f, new[f])
            send.day = new_day
            delta.change(old, _state_of(send))
            changed.append(send)
            updated.append(send)
            if new["unsubscribed_at"] and not old["unsubscribed_at"]:
                unsubscribes[send.lead_id].add(send.channel.value)

        # 4. Store the new sends and the events (the sends' history): one statement on PostgreSQL
        #    (`insert_with_children`: an event of a new send gets its id from the send's RETURNING).
        received = datetime.now(timezone.utc)
        event_rows, event_parents = [], []
        for v in fresh:
            key = (v.data.channel, v.data.external_id)
            existing = sends.get(key)
            event_rows.append((org_id, existing.id if existing is not None else None, v.data.idempotency_key, v.hash,
                               v.data.type.value, v.data.occurred_at, received, v.cost_micros, v.data.credits,
                               v.data.reason, v.data.bounce_type.value if v.data.bounce_type else None,
                               bool(v.data.machine), v.data.url))
            event_parents.append(None if existing is not None else (key[0].value, key[1]))
        events = Rows("send_event", _EVENT_INSERT_COLUMNS, event_rows)
        if created:
            now = datetime.now(timezone.utc)
            ids = await insert_with_children(
                Rows("send", _SEND_INSERT_COLUMNS, [
                    (s.organization_id, s.campaign_id, s.lead_id, s.channel.value, s.center_key, s.day, s.external_id,
                     *(_db_value(getattr(s, f)) for f in STATE_FIELDS), False, 0, 0, now) for s, _ in created]),
                ("channel", "external_id"), events, "send_id", event_parents)
            id_of = {(r[1], r[2]): r[0] for r in ids}
            for send, moved in created:
                send.id = id_of[(send.channel.value, send.external_id)]
                sends[(send.channel, send.external_id)] = send
                delta.change(None, _state_of(send))
                if moved:
                    changed.append(send)
                    if send.unsubscribed_at:
                        unsubscribes[send.lead_id].add(send.channel.value)
        else:
            await insert_together(events)
        out.accepted = len(fresh)

        if changed:
            changed.sort(key=lambda s: s.id)
            out.changes = [ChangedSend(s.campaign_id, s.id, s.channel, s.status.value) for s in changed]
            # Lock order everywhere: sends/jobs → campaigns → wallets → counters.
            # Campaign rows locked in id order (and read under the lock, for analytics): spend
            # moves, and the change log appended below gets ids in commit order per campaign.
            campaigns = await _lock_campaigns({s.campaign_id for s in changed})
            await _settle_system_sends(updated, old_status, tz, old_states)
            await _save_sends(updated)
            batch = SendsChanged(changed, old_states, tz, campaigns, delta.spend_by_campaign(), out.alerts)
            await sends_changed.run(batch)
            writes = batch.writes
        else:
            writes = []
        # The handlers' deferred writes (rollups, spend), the counters and the change log (its rows in
        # send id order) in one round trip.
        await insert_together(*writes, delta.write(), Rows("send_change", _CHANGE_INSERT_COLUMNS, [
            (org_id, s.campaign_id, s.id, s.channel.value, s.status.value, received) for s in changed]))
        for lead_id in sorted(unsubscribes):
            await add_unsubscribes(lead_id, sorted(unsubscribes[lead_id]))
        # Every campaign whose figures moved: also a brand-new send that stays PENDING (its
        # generated/pending counters moved, and live KPI subscribers must see it).
        out.campaign_ids = {s.campaign_id for s in changed} | {s.campaign_id for s, _ in created}
    return out


_SEND_INSERT_COLUMNS = {
    "organization_id": "int8", "campaign_id": "int8", "lead_id": "int8", "channel": "text", "center_key": "int8",
    "day": "date", "external_id": "text",
    **{f: ("timestamptz" if f.endswith("_at") else
           {"was_sent": "bool", "cost_micros": "int8", "credits": "int8"}.get(f, "text")) for f in STATE_FIELDS},
    "system": "bool", "reserved_micros": "int8", "dispatch_attempts": "int8", "updated_at": "timestamptz",
}
_EVENT_INSERT_COLUMNS = {
    "organization_id": "int8", "send_id": "int8", "idempotency_key": "text", "payload_hash": "text", "type": "text",
    "occurred_at": "timestamptz", "received_at": "timestamptz", "cost_micros": "int8", "credits": "int8",
    "reason": "text", "bounce_type": "text", "machine": "bool", "url": "text",
}
_CHANGE_INSERT_COLUMNS = {
    "organization_id": "int8", "campaign_id": "int8", "send_id": "int8", "channel": "text", "status": "text",
    "created_at": "timestamptz",
}


async def _lock_campaigns(ids) -> dict[int, Campaign]:
    """Campaign rows locked in id order (PostgreSQL) and read under the lock."""
    # Fixed SQL into models (`fetch_models`: what the queryset
    # `Campaign.filter(id__in=…).order_by("id").select_for_update(no_key=True)` builds, without pypika);
    # `for_update` is nothing on SQLite (one writer at a time).
    id_in, params = in_list("c.id", sorted(set(ids)))
    return {c.id: c for c in await fetch_models(
        Campaign, f"SELECT {select_columns(Campaign, 'c')} FROM campaign c WHERE {id_in} ORDER BY c.id{for_update()}",
        params)}


async def _settle_system_sends(changed: list[SendRow], old_status: dict, tz: ZoneInfo, old_states: dict) -> None:
    """A message the sender queued leaves PENDING: release its budget reservation
    (its real cost now counts as spend), and refund its credits if it failed
    before the provider accepted it."""
    from models.credits import CreditEntry

    released: dict[int, int] = defaultdict(int)
    refund_ids = []
    for s in changed:
        if not s.system or old_status.get(s.id) != SendStatus.PENDING or s.status == SendStatus.PENDING:
            continue
        if s.reserved_micros:
            released[s.campaign_id] += s.reserved_micros
            s.reserved_micros = 0
        if s.status == SendStatus.FAILED and not s.was_sent:
            refund_ids.append(s.id)
    for cid in sorted(released):
        await execute("UPDATE campaign SET reserved_micros = reserved_micros - ? WHERE id = ?", [released[cid], cid])
    # A late receipt can show that a message given up on (refunded) was sent after all:
    # its credits are taken again, as long as the wallet has them (it never goes below zero).
    revived = [s.id for s in changed if s.system and s.was_sent and old_states.get(s.id)
               and not old_states[s.id]["was_sent"] and old_status.get(s.id) == SendStatus.FAILED]
    if revived:
        refunded = await CreditEntry.filter(send_id__in=revived, kind=CreditEntryKind.REFUND)
        recharged = set(await CreditEntry.filter(send_id__in=revived, kind=CreditEntryKind.CONSUMPTION,
                                                 reason="late receipt").values_list("send_id", flat=True))
        for e in refunded:
            if e.send_id in recharged:
                continue
            if await execute("UPDATE credit_wallet SET balance = balance - ? WHERE id = ? AND balance >= ?",
                             [e.amount, e.wallet_id, e.amount]):
                await CreditEntry.create(
                    organization_id=e.organization_id, wallet_id=e.wallet_id, kind=CreditEntryKind.CONSUMPTION,
                    amount=-e.amount, campaign_id=e.campaign_id, send_id=e.send_id, channel=e.channel,
                    center_key=e.center_key, day=e.day, reason="late receipt")
            else:
                log.warning("late receipt for send %s: wallet %s cannot pay its %s credits again",
                            e.send_id, e.wallet_id, e.amount)
    if not refund_ids:
        return
    consumed = await CreditEntry.filter(send_id__in=refund_ids, kind=CreditEntryKind.CONSUMPTION)
    already = set(await CreditEntry.filter(send_id__in=refund_ids, kind=CreditEntryKind.REFUND)
                  .values_list("send_id", flat=True))
    refunds = [e for e in consumed if e.send_id not in already and e.amount]
    if not refunds:
        return
    by_wallet: dict[int, int] = defaultdict(int)
    for e in refunds:
        by_wallet[e.wallet_id] += -e.amount
    for wallet_id in sorted(by_wallet):
        await execute("UPDATE credit_wallet SET balance = balance + ? WHERE id = ?", [by_wallet[wallet_id], wallet_id])
    today = datetime.now(tz).date()
    await CreditEntry.bulk_create([CreditEntry(
        organization_id=e.organization_id, wallet_id=e.wallet_id, kind=CreditEntryKind.REFUND, amount=-e.amount,
        campaign_id=e.campaign_id, send_id=e.send_id, channel=e.channel, center_key=e.center_key, day=e.day or today,
        reason="message failed before it was sent") for e in refunds])


SAVED_FIELDS = (*STATE_FIELDS, "day", "reserved_micros")


async def _save_sends(changed: list[SendRow]) -> None:
    """Write replayed existing sends: one `UPDATE … FROM unnest(…)` on PostgreSQL."""
    if not changed:
        return
    now = datetime.now(timezone.utc)
    types = {**{f: _SEND_INSERT_COLUMNS[f] for f in SAVED_FIELDS}, "updated_at": "timestamptz"}
    await update_rows("send", ("id", "int8"), types, [
        (s.id, *(_db_value(getattr(s, f)) for f in SAVED_FIELDS), now) for s in changed])


def _db_value(value):
    """A value as a driver parameter: a non-str enum as its value (no hasattr: on a datetime it
    raises and catches an AttributeError, and this runs for every column of every send)."""
    if value is None or isinstance(value, (int, str, datetime, date)):
        return value
    return value.value if isinstance(value, Enum) else value


async def add_unsubscribes(lead_id: int, channels: list[str]) -> None:
    """Merge channels into a lead's unsubscribe list in one statement (no lost update between
    concurrent batches of different campaigns, which share no lock)."""
    await merge_json_list("lead", "unsubscribed", lead_id, channels)


def _state_of(send: SendRow) -> dict:
    state = {f: getattr(send, f) for f in STATE_FIELDS}
    state.update(organization_id=send.organization_id, campaign_id=send.campaign_id, channel=send.channel,
                 center_key=send.center_key, day=send.day)
    return state


async def _tz_and_keys(org_id: int, keys: list[str]) -> tuple[str, dict[str, str]]:
    """The organization's time zone and the stored payload hash of each of these idempotency keys
    that is already stored, in one statement (the organization's row, left-joined to its events)."""
    key_in, key_params = in_list("k.idempotency_key", keys)
    rows = await fetch_positional(
        "SELECT o.timezone, k.idempotency_key, k.payload_hash FROM organization o LEFT JOIN send_event k "
        f"ON k.organization_id = o.id AND {key_in} WHERE o.id = ?", [*key_params, org_id])
    return rows[0][0], {r[1]: r[2] for r in rows if r[1] is not None}


async def _drop_seen(org_id: int, items: list[_Valid], out: IngestResult) -> list[_Valid]:
    key_in, key_params = in_list("idempotency_key", [v.data.idempotency_key for v in items])
    seen = {r["idempotency_key"]: r["payload_hash"] for r in await fetch(
        f"SELECT idempotency_key, payload_hash FROM send_event WHERE organization_id = ? AND {key_in}",
        [org_id, *key_params])}
    return _drop_seen_in(seen, items, out)


def _drop_seen_in(seen: dict[str, str], items: list[_Valid], out: IngestResult) -> list[_Valid]:
    # In-batch repeats of a key reach here with their payloads (ingest_send_events keeps one per
    # payload): a stored payload decides which ones are duplicates, whatever their order; with
    # nothing stored, the earliest wins and the other payloads are conflicts.
    fresh: list[_Valid] = []
    winner: dict[str, str] = {}
    for v in sorted(items, key=lambda v: v.index):
        key = v.data.idempotency_key
        h = seen.get(key)
        if h is None and key not in winner:
            winner[key] = v.hash
            fresh.append(v)
        elif (h or winner[key]) == v.hash:
            out.duplicates += 1
        else:
            out.rejected.append(Rejection(v.index, ErrorCode.IDEMPOTENCY_CONFLICT,
                                          "idempotencyKey reused with a different payload"))
    return fresh


@dataclass
class _Context:
    """What checking the existing sends and planning the new ones read (`_context`)."""

    campaigns: dict[int, CampaignStatus] = field(default_factory=dict)  # visible campaigns -> status
    units: dict[tuple[int, Channel], tuple[int, int]] = field(default_factory=dict)  # (campaign, channel) -> prices
    leads: dict[int, tuple[int, int | None]] = field(default_factory=dict)  # visible lead id -> (id, center)
    by_ext: dict[str, tuple[int, int | None]] = field(default_factory=dict)  # visible lead by externalId
    ext_to_id: dict[str, int] = field(default_factory=dict)  # any lead of the organization by externalId
    groups_of: dict[tuple[int, int], str] = field(default_factory=dict)  # (campaign, lead) -> recipient group


async def _context(principal: Principal, sends: dict, groups: dict) -> _Context:
    """One statement (a `UNION ALL` of five lookups, each a branch only when it has something to look
    for) reading what `_check_existing` and `_plan_sends` need:

    * `c`: the campaigns the caller sees among the existing sends' campaigns and those the events of
      unknown sends name (what `campaigns_query(principal)` returns: the scope predicate is
      `Unit.sql_filter`, its raw-SQL twin), with their status;
    * `u`: unit cost and credits of each channel of those campaigns (visible or not, as before);
    * `l`: the leads the caller sees among the lead ids the events of unknown sends name;
    * `x`: the organization's leads with the external ids any event names, and whether the caller
      sees them (existing sends check them organization-wide, new sends within the scope);
    * `r`: the recipient group of each (campaign, lead id) pair the events of unknown sends name.

    Each branch is the statement it replaces (`send_pages`-style fixed SQL, `in_list`/`in_pairs`),
    with the same parameters; a lead named only by external id gets its recipient row from
    `_plan_sends`, once the id is known."""
    org_id = principal.org_id
    unknown = [k for k in groups if k not in sends]
    named = {v.data.campaign_id for k in unknown for v in groups[k] if v.data.campaign_id}
    campaign_ids = sorted({s.campaign_id for s in sends.values()} | named)
    lead_ids = sorted({v.data.lead_id for k in unknown for v in groups[k] if v.data.lead_id})
    lead_exts = sorted({v.data.lead_external_id for vs in groups.values() for v in vs if v.data.lead_external_id})
    pairs = sorted({(v.data.campaign_id, v.data.lead_id) for k in unknown for v in groups[k]
                    if v.data.campaign_id and v.data.lead_id})
    scope_c, scope_c_params = principal.scope.sql_filter("c")
    scope_l, scope_l_params = principal.scope.sql_filter("l")
    i8, tx = "CAST(NULL AS BIGINT)", "CAST(NULL AS TEXT)"
    parts: list[str] = []
    params: list = []
    if campaign_ids:
        c_in, c_params = in_list("c.id", campaign_ids)
        parts.append(f"SELECT 'c', c.id, {i8}, {i8}, c.status FROM campaign c WHERE {c_in} AND {scope_c}")
        params += [*c_params, *scope_c_params]
        u_in, u_params = in_list("u.campaign_id", campaign_ids)
        parts.append("SELECT 'u', u.campaign_id, u.unit_cost_micros, u.credits_per_message, u.channel "
                     f"FROM campaign_channel u WHERE {u_in}")
        params += u_params
    if lead_ids:
        l_in, l_params = in_list("l.id", lead_ids)
        parts.append(f"SELECT 'l', l.id, l.center_id, {i8}, {tx} FROM lead l WHERE {scope_l} AND {l_in}")
        params += [*scope_l_params, *l_params]
    if lead_exts:
        x_in, x_params = in_list("l.external_id", lead_exts)
        parts.append(f"SELECT 'x', l.id, l.center_id, CASE WHEN {scope_l} THEN 1 ELSE 0 END, l.external_id "
                     f"FROM lead l WHERE l.organization_id = ? AND {x_in}")
        params += [*scope_l_params, org_id, *x_params]
    if pairs:
        pair_in, pair_params = in_pairs(("r.campaign_id", "r.lead_id"), pairs)
        parts.append(f'SELECT \'r\', r.campaign_id, r.lead_id, {i8}, r."group" FROM recipient r WHERE {pair_in}')
        params += pair_params
    ctx = _Context()
    if not parts:
        return ctx
    for kind, a, b, c, t in await fetch_positional(" UNION ALL ".join(parts), params):
        if kind == "c":
            ctx.campaigns[a] = CampaignStatus(t)
        elif kind == "u":
            ctx.units[(a, Channel(t))] = (b, c)
        elif kind == "l":
            ctx.leads[a] = (a, b)
        elif kind == "x":
            ctx.ext_to_id[t] = a
            if c:
                ctx.by_ext[t] = (a, b)
        else:
            ctx.groups_of[(a, b)] = str(t)
    return ctx


def _check_existing(ctx: _Context, sends: dict, groups: dict, out: IngestResult) -> set:
    """Existing sends must belong to a campaign the caller sees, and events must not contradict them.
    Returns the keys of sends outside the caller's scope (their events were rejected as NOT_FOUND)."""
    visible = ctx.campaigns
    ext_to_id = ctx.ext_to_id
    hidden = set()
    for key, send in list(sends.items()):
        if send.campaign_id not in visible:
            out.rejected.extend(Rejection(v.index, ErrorCode.NOT_FOUND, "send not found") for v in groups[key])
            del sends[key]
            hidden.add(key)
            continue
        if send.status == SendStatus.SKIPPED or send.status == SendStatus.SKIPPED.value:
            # The sender skipped it (no address, unsubscribed, channel off): it never went out.
            out.rejected.extend(Rejection(v.index, ErrorCode.ILLEGAL_TRANSITION,
                                          "the message was skipped by the sender and never sent") for v in groups[key])
            del sends[key]
            hidden.add(key)
            continue
        for v in groups[key]:
            d = v.data
            if ((d.campaign_id and d.campaign_id != send.campaign_id) or (d.lead_id and d.lead_id != send.lead_id)
                    or (d.lead_external_id and ext_to_id.get(d.lead_external_id) != send.lead_id)):
                out.rejected.append(Rejection(v.index, ErrorCode.SEND_MISMATCH,
                                              "externalId belongs to a send of another campaign or lead"))
    return hidden


async def _load_sends(org_id: int, keys: list[tuple[Channel, str]], lock: bool = False) -> dict[tuple[Channel, str], SendRow]:
    """The sends with these (channel, externalId) keys; `lock`: row-locked in id order (PostgreSQL)."""
    if not keys:
        return {}
    wanted = set(keys)
    # channel too, so the unique (organization, channel, external_id) index serves the lookup
    channel_in, channel_params = in_list("channel", sorted({k[0].value for k in keys}))
    ext_in, ext_params = in_list("external_id", sorted({k[1] for k in keys}))
    query = f"SELECT {_SEND_COLUMNS} FROM send WHERE organization_id = ? AND {channel_in} AND {ext_in}"
    if lock:
        query += " ORDER BY id" + for_update()
    rows = [_send_from_db(r) for r in await fetch(query, [org_id, *channel_params, *ext_params])]
    return {(s.channel, s.external_id): s for s in rows if (s.channel, s.external_id) in wanted}


async def _plan_sends(principal: Principal, tz: ZoneInfo, missing, groups, ctx: _Context, out: IngestResult) -> dict:
    """Check that the events of unknown sends may create them; returns the sends to create (not
    yet written, still in their initial state) by key, and rejects the events of the others."""
    org_id = principal.org_id
    campaigns, leads, leads_by_ext, units = ctx.campaigns, ctx.leads, ctx.by_ext, ctx.units
    # A send's lead must be a recipient of its campaign (and never one of its control group).
    # Exactly the (campaign, lead) pairs the events name — not every campaign × every lead, whose
    # `campaign_id = ANY(…) AND lead_id = ANY(…)` went to a sequential scan on its generic plan.
    # `_context` read the pairs named by lead id; those named by external id are read here.
    groups_of = ctx.groups_of
    wanted: set[tuple[int, int]] = set()
    for key in missing:
        for v in groups[key]:
            d = v.data
            if d.lead_id or d.campaign_id not in campaigns:
                continue
            lead = leads_by_ext.get(d.lead_external_id)
            if lead is not None and (d.campaign_id, lead[0]) not in groups_of:
                wanted.add((d.campaign_id, lead[0]))
    if wanted:
        pair_in, pair_params = in_pairs(("campaign_id", "lead_id"), wanted)
        groups_of = {**groups_of, **{(r[0], r[1]): str(r[2]) for r in await fetch_positional(
            f'SELECT campaign_id, lead_id, "group" FROM recipient WHERE {pair_in}', pair_params)}}
    planned: dict[tuple[Channel, str], SendRow] = {}
    for key in missing:
        evs = groups[key]
        named = next((v for v in sorted(evs, key=lambda v: v.index)
                      if v.data.campaign_id and (v.data.lead_id or v.data.lead_external_id)), None)

        def reject(code: ErrorCode, message: str) -> None:
            out.rejected.extend(Rejection(v.index, code, message) for v in evs)

        if key[1].startswith(SYSTEM_EXTERNAL_PREFIX):
            reject(ErrorCode.INVALID, f"externalIds starting with {SYSTEM_EXTERNAL_PREFIX!r} are reserved for the "
                                      "messages Campaign Pulse sends itself")
            continue
        if named is None:
            reject(ErrorCode.MISSING_SEND_CONTEXT,
                   "unknown externalId: the first event of a send must name campaignId and leadId or leadExternalId")
            continue
        d = named.data
        campaign = campaigns.get(d.campaign_id)  # its status
        lead = leads.get(d.lead_id) if d.lead_id else leads_by_ext.get(d.lead_external_id)
        if campaign is None:
            reject(ErrorCode.NOT_FOUND, "campaign not found")
            continue
        if lead is None:
            reject(ErrorCode.NOT_FOUND, "lead not found")
            continue
        if campaign == CampaignStatus.DRAFT:
            reject(ErrorCode.CAMPAIGN_NOT_LAUNCHED, "the campaign is a draft; launch it first")
            continue
        if (d.campaign_id, key[0]) not in units:
            reject(ErrorCode.CHANNEL_NOT_ON_CAMPAIGN, f"channel {key[0].value} is not configured on the campaign")
            continue
        lead_id, center_id = lead
        group = groups_of.get((d.campaign_id, lead_id))
        if group is None:
            reject(ErrorCode.NOT_RECIPIENT, "the lead is not a recipient of the campaign")
            continue
        if group == RecipientGroup.CONTROL.value:
            reject(ErrorCode.CONTROL_RECIPIENT, "the lead is in the campaign's control group: it is never messaged")
            continue
        queued_at = min(v.data.occurred_at for v in evs)
        # The state a send is created in before its events replay (a Send model's defaults).
        planned[key] = SendRow(
            organization_id=org_id, campaign_id=d.campaign_id, lead_id=lead_id, channel=key[0],
            center_key=center_id or 0, day=queued_at.astimezone(tz).date(), external_id=key[1],
            status=SendStatus.PENDING, was_sent=False, cost_micros=0, credits=0, queued_at=queued_at,
            system=False, reserved_micros=0)
    return planned
