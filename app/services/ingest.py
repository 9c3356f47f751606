"""Send-event ingestion (SPEC §4): batches, idempotency, out-of-order events.

One batch is validated up front and then applied in one transaction:
one query to find repeated keys, one to find the sends, one insert for new
sends, one for the events, one to load the affected sends' histories, bulk
send updates, one counter upsert, one spend update per campaign. A unique
violation caused by a concurrent batch rolls back and retries the batch.
"""

from __future__ import annotations

import asyncio
import logging
import hashlib
import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import orjson
from tortoise.transactions import in_transaction

from app.db import is_postgres, is_retryable, lock_rows
from app.services import analytics
from app.services import budget as budget_service
from app.services.access import Principal
from app.services.counters import CounterDelta
from app.services.errors import DomainError, ErrorCode
from app.services.leads import leads_query
from app.services.money import to_micros
from app.services.sendstate import STATE_FIELDS, Ev, replay
from models.budgets import BudgetAlert
from models.campaigns import Campaign, CampaignChannel
from models.enums import BounceType, CampaignStatus, Channel, CreditEntryKind, SendEventType, SendStatus
from models.leads import Lead
from models.sends import Send, SendChange, SendEvent
from models.tenancy import Organization
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
    alerts: list[BudgetAlert] = field(default_factory=list)
    campaign_ids: set[int] = field(default_factory=set)


@dataclass
class _Valid:
    index: int
    data: SendEventData
    cost_micros: int | None
    hash: str


def _payload_hash(d: SendEventData, cost_micros: int | None) -> str:
    payload = {
        "externalId": d.external_id, "channel": d.channel.value, "type": d.type.value,
        "occurredAt": d.occurred_at.isoformat(), "campaignId": d.campaign_id, "leadId": d.lead_id,
        "leadExternalId": d.lead_external_id, "cost": cost_micros, "credits": d.credits, "reason": d.reason,
        "machine": bool(d.machine), "url": d.url, "bounceType": d.bounce_type.value if d.bounce_type else None,
    }
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _validate(index: int, d: SendEventData) -> _Valid:
    if d.invalid:
        raise DomainError(ErrorCode.NOT_FOUND, d.invalid)
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
    by_key: dict[str, _Valid] = {}
    for index, data in enumerate(events):
        try:
            v = _validate(index, data)
        except DomainError as exc:
            result.rejected.append(Rejection(index, exc.code, exc.message))
            continue
        first = by_key.get(data.idempotency_key)
        if first is None:
            by_key[data.idempotency_key] = v
            valid.append(v)
        elif first.hash == v.hash:
            result.duplicates += 1
        else:
            result.rejected.append(Rejection(index, ErrorCode.IDEMPOTENCY_CONFLICT,
                                             "idempotencyKey reused with a different payload"))
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
    return result


async def _apply(principal: Principal, valid: list[_Valid]) -> IngestResult:
    out = IngestResult()
    org_id = principal.org_id
    org = await Organization.get(id=org_id)
    tz = ZoneInfo(org.timezone)
    async with in_transaction():
        # 1. Repeated keys: duplicates, or conflicts when the payload differs
        #    (checked again under the send locks below, for concurrent batches).
        fresh = await _drop_seen(org_id, valid, out)
        if not fresh:
            return out

        # 2. Find the sends; create unknown ones from the events that name them.
        groups: dict[tuple[Channel, str], list[_Valid]] = defaultdict(list)
        for v in fresh:
            groups[(v.data.channel, v.data.external_id)].append(v)
        sends = await _load_sends(org_id, list(groups))
        hidden = await _check_existing(principal, sends, groups, out)
        missing = [k for k in groups if k not in sends and k not in hidden]
        if missing:
            await _create_sends(principal, tz, missing, groups, out)
            sends.update(await _load_sends(org_id, missing))
        # Events of sends that are invalid, invisible or could not be created were rejected above.
        rejected = {r.index for r in out.rejected}
        fresh = [v for v in fresh if (v.data.channel, v.data.external_id) in sends and v.index not in rejected]
        if not fresh:
            return out
        send_ids = sorted({sends[(v.data.channel, v.data.external_id)].id for v in fresh})
        if is_postgres():
            # Serialize concurrent batches on the same sends (same lock order everywhere),
            # then look at the keys again: a batch that held the lock may have stored them.
            await lock_rows("send", send_ids)
            sends = await _load_sends(org_id, list(groups))
            fresh = await _drop_seen(org_id, fresh, out)
            if not fresh:
                return out
            send_ids = sorted({sends[(v.data.channel, v.data.external_id)].id for v in fresh})

        # 3. Store the events (the send's history), then replay each send.
        await SendEvent.bulk_create([
            SendEvent(
                organization_id=org_id, send_id=sends[(v.data.channel, v.data.external_id)].id,
                idempotency_key=v.data.idempotency_key, payload_hash=v.hash, type=v.data.type,
                occurred_at=v.data.occurred_at, cost_micros=v.cost_micros, credits=v.data.credits,
                reason=v.data.reason, bounce_type=v.data.bounce_type, machine=bool(v.data.machine), url=v.data.url,
            ) for v in fresh
        ], batch_size=1000)
        out.accepted = len(fresh)
        history: dict[int, list[Ev]] = defaultdict(list)
        for row in await SendEvent.filter(send_id__in=send_ids).values(
                "send_id", "type", "occurred_at", "idempotency_key", "cost_micros", "credits", "reason",
                "bounce_type", "machine"):
            history[row["send_id"]].append(Ev(
                SendEventType(row["type"]), row["occurred_at"], row["idempotency_key"], row["cost_micros"],
                row["credits"], row["reason"], BounceType(row["bounce_type"]) if row["bounce_type"] else None,
                bool(row["machine"])))
        units = await _unit_prices([s.campaign_id for s in sends.values()])
        by_id = {s.id: s for s in sends.values()}
        delta = CounterDelta()
        changed: list[Send] = []
        old_status: dict[int, SendStatus] = {}
        old_states: dict[int, dict] = {}
        unsubscribes: dict[int, set[str]] = defaultdict(set)
        for send_id in send_ids:
            send = by_id[send_id]
            old = _state_of(send)
            unit_cost, unit_credits = units.get((send.campaign_id, send.channel), (0, 0))
            new = replay(history[send_id], unit_cost_micros=unit_cost, unit_credits=unit_credits, created_at=send.queued_at)
            if send.system:
                new["queued_at"] = send.queued_at  # the sender queued it: its own clock is the truth
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
            out.changes.append(ChangedSend(send.campaign_id, send.id, send.channel, send.status.value))
            if new["unsubscribed_at"] and not old["unsubscribed_at"]:
                unsubscribes[send.lead_id].add(send.channel.value)
        if changed:
            # Lock order everywhere: sends/jobs → campaigns → wallets → counters.
            # Campaign rows locked in id order: spend moves, and the change log
            # appended below gets ids in commit order per campaign.
            await lock_rows("campaign", {s.campaign_id for s in changed})
            await _settle_system_sends(changed, old_status, tz, old_states)
            await _save_sends(changed)
            await analytics.on_sends_changed(changed, old_states, tz)  # reads the updated sends
            await delta.apply()
            spend = delta.spend_by_campaign()
            await budget_service.add_spend(spend)
            await SendChange.bulk_create([
                SendChange(organization_id=org_id, campaign_id=s.campaign_id, send_id=s.id, channel=s.channel,
                           status=s.status) for s in changed], batch_size=1000)
            for cid in sorted(c for c, d in spend.items() if d > 0):
                out.alerts.extend(await budget_service.raise_alerts(await Campaign.get(id=cid)))
        for lead_id in sorted(unsubscribes):
            await add_unsubscribes(lead_id, sorted(unsubscribes[lead_id]))
        out.campaign_ids = {s.campaign_id for s in changed}
    return out


async def _settle_system_sends(changed: list[Send], old_status: dict, tz: ZoneInfo, old_states: dict) -> None:
    """A message the sender queued leaves PENDING: release its budget reservation
    (its real cost now counts as spend), and refund its credits if it failed
    before the provider accepted it."""
    from app.db import execute
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


async def _save_sends(changed: list[Send]) -> None:
    """Write replayed sends. On PostgreSQL one pipelined UPDATE per row (asyncpg executemany)
    is many times faster than Tortoise's bulk_update, which repeats the id list per field."""
    if not is_postgres():
        await Send.bulk_update(changed, fields=list(SAVED_FIELDS), batch_size=500)
        return
    from app.db import conn

    sets = ", ".join(f"{f} = ${i}" for i, f in enumerate(SAVED_FIELDS, start=1))
    query = f"UPDATE send SET {sets}, updated_at = now() WHERE id = ${len(SAVED_FIELDS) + 1}"
    rows = [[_db_value(getattr(s, f)) for f in SAVED_FIELDS] + [s.id] for s in changed]
    await conn().execute_many(query, rows)


def _db_value(value):
    return value.value if hasattr(value, "value") and not isinstance(value, (int, str)) else value


async def add_unsubscribes(lead_id: int, channels: list[str]) -> None:
    """Merge channels into a lead's unsubscribe list in one statement (no lost update between
    concurrent batches of different campaigns, which share no lock)."""
    from app.db import execute

    if is_postgres():
        await execute(
            "UPDATE lead SET unsubscribed = (SELECT COALESCE(jsonb_agg(DISTINCT c ORDER BY c), '[]'::jsonb) "
            "FROM jsonb_array_elements_text(COALESCE(unsubscribed, '[]'::jsonb) || ?::jsonb) AS c) WHERE id = ?",
            [orjson.dumps(channels).decode(), lead_id])
    else:
        await execute(
            "UPDATE lead SET unsubscribed = (SELECT json_group_array(value) FROM (SELECT value FROM "
            "json_each(COALESCE(lead.unsubscribed, '[]')) UNION SELECT value FROM json_each(?) ORDER BY value)) "
            "WHERE id = ?", [orjson.dumps(channels).decode(), lead_id])


def _state_of(send: Send) -> dict:
    state = {f: getattr(send, f) for f in STATE_FIELDS}
    state.update(organization_id=send.organization_id, campaign_id=send.campaign_id, channel=send.channel,
                 center_key=send.center_key, day=send.day)
    return state


async def _drop_seen(org_id: int, items: list[_Valid], out: IngestResult) -> list[_Valid]:
    seen = dict(await SendEvent.filter(organization_id=org_id, idempotency_key__in=[v.data.idempotency_key for v in items])
                .values_list("idempotency_key", "payload_hash"))
    fresh: list[_Valid] = []
    for v in items:
        h = seen.get(v.data.idempotency_key)
        if h is None:
            fresh.append(v)
        elif h == v.hash:
            out.duplicates += 1
        else:
            out.rejected.append(Rejection(v.index, ErrorCode.IDEMPOTENCY_CONFLICT,
                                          "idempotencyKey reused with a different payload"))
    return fresh


async def _check_existing(principal: Principal, sends: dict, groups: dict, out: IngestResult) -> set:
    """Existing sends must belong to a campaign the caller sees, and events must not contradict them.
    Returns the keys of sends outside the caller's scope (their events were rejected as NOT_FOUND)."""
    from app.services.campaigns import campaigns_query

    campaign_ids = list({s.campaign_id for s in sends.values()})
    visible = set(await campaigns_query(principal).filter(id__in=campaign_ids).values_list("id", flat=True)) \
        if campaign_ids else set()
    lead_exts = {v.data.lead_external_id for k in sends for v in groups[k] if v.data.lead_external_id}
    ext_to_id = dict(await Lead.filter(organization_id=principal.org_id, external_id__in=list(lead_exts))
                     .values_list("external_id", "id")) if lead_exts else {}
    hidden = set()
    for key, send in list(sends.items()):
        if send.campaign_id not in visible:
            out.rejected.extend(Rejection(v.index, ErrorCode.NOT_FOUND, "send not found") for v in groups[key])
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


async def _load_sends(org_id: int, keys: list[tuple[Channel, str]]) -> dict[tuple[Channel, str], Send]:
    if not keys:
        return {}
    wanted = set(keys)
    # channel too, so the unique (organization, channel, external_id) index serves the lookup
    rows = await Send.filter(organization_id=org_id, channel__in=list({k[0] for k in keys}),
                             external_id__in=list({k[1] for k in keys}))
    return {(s.channel, s.external_id): s for s in rows if (s.channel, s.external_id) in wanted}


async def _unit_prices(campaign_ids: list[int]) -> dict[tuple[int, Channel], tuple[int, int]]:
    rows = await CampaignChannel.filter(campaign_id__in=list(set(campaign_ids))).values(
        "campaign_id", "channel", "unit_cost_micros", "credits_per_message")
    return {(r["campaign_id"], Channel(r["channel"])): (r["unit_cost_micros"], r["credits_per_message"]) for r in rows}


async def _create_sends(principal: Principal, tz: ZoneInfo, missing, groups, out: IngestResult) -> None:
    org_id = principal.org_id
    campaign_ids = {v.data.campaign_id for k in missing for v in groups[k] if v.data.campaign_id}
    lead_ids = {v.data.lead_id for k in missing for v in groups[k] if v.data.lead_id}
    lead_exts = {v.data.lead_external_id for k in missing for v in groups[k] if v.data.lead_external_id}
    from app.services.campaigns import campaigns_query

    campaigns = {c.id: c for c in await campaigns_query(principal).filter(id__in=list(campaign_ids))}
    channels = {(c.campaign_id, c.channel) for c in await CampaignChannel.filter(campaign_id__in=list(campaigns))}
    visible_leads = leads_query(principal)
    leads = {lead.id: lead for lead in await visible_leads.filter(id__in=list(lead_ids))}
    leads_by_ext = {lead.external_id: lead for lead in await visible_leads.filter(external_id__in=list(lead_exts))}
    from models.campaigns import Recipient
    from models.enums import RecipientGroup

    control = set(await Recipient.filter(
        campaign_id__in=list(campaigns), group=RecipientGroup.CONTROL,
        lead_id__in=list({lead.id for lead in leads.values()} | {lead.id for lead in leads_by_ext.values()}),
    ).values_list("campaign_id", "lead_id")) if campaigns else set()
    to_create: list[Send] = []
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
        campaign = campaigns.get(d.campaign_id)
        lead = leads.get(d.lead_id) if d.lead_id else leads_by_ext.get(d.lead_external_id)
        if campaign is None:
            reject(ErrorCode.NOT_FOUND, "campaign not found")
            continue
        if lead is None:
            reject(ErrorCode.NOT_FOUND, "lead not found")
            continue
        if campaign.status == CampaignStatus.DRAFT:
            reject(ErrorCode.CAMPAIGN_NOT_LAUNCHED, "the campaign is a draft; launch it first")
            continue
        if (campaign.id, key[0]) not in channels:
            reject(ErrorCode.CHANNEL_NOT_ON_CAMPAIGN, f"channel {key[0].value} is not configured on the campaign")
            continue
        if (campaign.id, lead.id) in control:
            reject(ErrorCode.CONTROL_RECIPIENT, "the lead is in the campaign's control group: it is never messaged")
            continue
        queued_at = min(v.data.occurred_at for v in evs)
        to_create.append(Send(
            organization_id=org_id, campaign_id=campaign.id, lead_id=lead.id, channel=key[0],
            center_key=lead.center_id or 0, day=queued_at.astimezone(tz).date(), external_id=key[1],
            queued_at=queued_at,
        ))
    if to_create:
        # One insertion order for every transaction: concurrent batches creating the same
        # sends wait on each other instead of deadlocking.
        to_create.sort(key=lambda s: (s.channel.value, s.external_id))
        await Send.bulk_create(to_create, batch_size=1000)
        # A brand-new send counts as generated+pending before its events replay.
        delta = CounterDelta()
        created = await _load_sends(org_id, [(s.channel, s.external_id) for s in to_create])
        for send in created.values():
            delta.add(_key(send), {"generated": 1, "pending": 1})
        await delta.apply()


def _key(send: Send):
    return (send.organization_id, send.campaign_id, send.channel.value, send.center_key, send.day)
