"""The sender (SPEC §2 actions, §6 enforcement, §8 credits).

Two steps, each one short transaction, safe with many workers on PostgreSQL:

1. `queue_batch`: claim READY send jobs of LIVE campaigns (`FOR UPDATE OF
   send_job SKIP LOCKED`), lock their campaigns then their wallets (always in
   id order), and for each job either skip it (no address, unsubscribed,
   channel disabled) or queue it: a PENDING send whose cost is *reserved* on
   the campaign and whose credits are *consumed* from the wallet, in the same
   transaction. A message that would take spend + reservations over the
   budget, or that the wallet cannot pay, is not queued: the campaign pauses
   itself (BUDGET_EXHAUSTED / CREDITS_EXHAUSTED) and its jobs stay READY.
   The pause/queue race is closed by the campaign row lock: once a pause
   commits, no claim sees the campaign LIVE.

2. `dispatch_batch`: claim PENDING system sends due for hand-off (an outbox
   with a lease), give them to their provider outside the transaction, then
   record the outcome. A crash after the claim only delays the hand-off until
   the lease expires; provider reports carry deterministic idempotency keys,
   so a repeated hand-off changes nothing. Every claim writes a fresh
   `claim_token`; lease renewals and outcomes apply only where the token is
   still the claimer's, so a worker whose lease expired (a slow provider) never
   hands a message that another worker has claimed since, nor records over it. Transient failures retry with
   exponential backoff; after the last attempt (or a permanent refusal) the
   send ends FAILED with the reason — never stuck PENDING.

When a system send leaves PENDING, ingestion releases its reservation (the
real cost is then counted as spend) and refunds its credits if it failed
before it was sent.
"""

from __future__ import annotations

import logging
import random
import secrets
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from tortoise.transactions import in_transaction

from app.audience.leads import CHANNEL_ADDRESS
from app.billing import credits as credit_service
from app.core.hooks import Hook
from app.db import db_datetime, execute, fetch, for_update, param_datetime
from app.delivery.counters import CounterDelta, add_skips
from app.delivery.ingest import (
    SYSTEM_EXTERNAL_PREFIX,
    SendEventData,
    ingest_send_events,
)
from app.sender.providers import Message, Outcome, Provider
from app.tenancy.access import Principal, Unit
from models.campaigns import Campaign, CampaignChannel, Recipient
from models.credits import CreditEntry, CreditWallet, SendJob
from models.enums import (
    CampaignStatus,
    CampaignType,
    Channel,
    CreditEntryKind,
    RecipientGroup,
    Role,
    SendEventType,
    SendStatus,
    SkipReason,
    StatusReason,
    UnitKind,
)
from models.leads import Lead
from models.sends import Send, SendChange
from models.tenancy import Organization
from subscriptions import bus

log = logging.getLogger("pulse.sender")
SYSTEM_PREFIX = SYSTEM_EXTERNAL_PREFIX
# Channels whose provider is one of these are sent by the customer's own system and
# only reported with sendEventsIngest: the built-in sender creates no jobs for them.
EXTERNAL_PROVIDERS = {"external", "integrator"}
DISPATCH_CHUNK = 20  # hand-offs recorded every this many messages (bounds duplicate sends after a crash)


def system_principal(org_id: int) -> Principal:
    """The sender reports provider events as an organization-wide integration."""
    return Principal(user_id=0, org_id=org_id, role=Role.INTEGRATION,
                     scope=Unit(UnitKind.ORGANIZATION, org_id, org_id), can_export=False, email="sender@system")


#: (campaign id, treatment lead ids | None) -> set of channels — the sender is about to create jobs;
#: a higher domain that sends some channels itself, each on its own day (outreach: email steps),
#: returns them and the sender leaves them out.
jobs_creating = Hook("sender.jobs_creating")
#: (campaign id) -> bool — a higher domain still has work for a LIVE campaign whose jobs are all
#: done (outreach: steps to come); then it does not complete by itself.
campaign_busy = Hook("sender.campaign_busy")


async def create_jobs(campaign_id: int, lead_ids: list[int] | None = None) -> int:
    """One job per treatment recipient and enabled channel (idempotent)."""
    # Channels another domain sends itself (outreach: email steps, each on its day).
    own = set().union(*await jobs_creating.run(campaign_id, lead_ids))
    channels = [c for c, provider in await CampaignChannel.filter(campaign_id=campaign_id, enabled=True)
                .values_list("channel", "provider") if provider not in EXTERNAL_PROVIDERS and c not in own]
    if not channels:
        return 0
    qs = Recipient.filter(campaign_id=campaign_id, group=RecipientGroup.TREATMENT)
    if lead_ids is not None:
        qs = qs.filter(lead_id__in=lead_ids)
    recipients = await qs.order_by("id").values_list("lead_id", flat=True)
    org_id = (await Campaign.filter(id=campaign_id).values_list("organization_id", flat=True))[0]
    await credit_service.ensure_wallets(org_id)  # created here, not by concurrent claim rounds
    jobs = [SendJob(organization_id=org_id, campaign_id=campaign_id, lead_id=lead_id, channel=Channel(ch))
            for lead_id in recipients for ch in channels]
    await SendJob.bulk_create(jobs, batch_size=1000, ignore_conflicts=True)
    return len(jobs)


async def on_recipients_added(campaign: Campaign, lead_ids: list[int] | None) -> None:
    """`campaigns.recipients_added` handler: jobs for the new treatment recipients."""
    await create_jobs(campaign.id, lead_ids)


@dataclass
class QueueResult:
    queued: int = 0
    skipped: int = 0
    paused: dict[int, StatusReason] = field(default_factory=dict)
    campaigns: set[int] = field(default_factory=set)


def _address(lead: Lead, channel: Channel) -> str | None:
    if channel == Channel.SOCIAL:
        return lead.linkedin_url or lead.twitter_url
    return getattr(lead, CHANNEL_ADDRESS[channel])


async def queue_batch(limit: int = 200, now: datetime | None = None, *,
                      campaign_ids: list[int] | None = None) -> QueueResult:
    """Queue up to `limit` messages (optionally only for some campaigns: sharding, tests)."""
    now = now or datetime.now(timezone.utc)
    out = QueueResult()
    # Only campaigns with work share the round (issue 12 item 9): a LIVE campaign whose jobs are
    # all done, or whose channels an integrator sends, takes no part of the batch.
    live = [r["id"] for r in await fetch(
        "SELECT c.id FROM campaign c WHERE c.status = 'LIVE' AND EXISTS "
        "(SELECT 1 FROM send_job j WHERE j.state = 'READY' AND j.campaign_id = c.id) ORDER BY c.id")]
    if campaign_ids is not None:
        wanted = set(campaign_ids)
        live = [cid for cid in live if cid in wanted]
    random.shuffle(live)  # with more live campaigns than messages per round, nobody starves
    if not live:
        return out
    async with in_transaction():
        # Fair share: every campaign with work gets a part of the batch, oldest jobs first;
        # what one cannot use goes to the others (a second pass), so a round fills its batch.
        jobs: list[dict] = []
        share = max(1, limit // len(live))
        full: dict[int, int] = {}  # campaign -> last claimed job id, when it filled its share
        for cid in live:
            if len(jobs) >= limit:
                break
            want = min(share, limit - len(jobs))
            got = await fetch(
                "SELECT id, organization_id, campaign_id, lead_id, channel FROM send_job "
                "WHERE campaign_id = ? AND state = 'READY' ORDER BY id LIMIT ?"
                + for_update(skip_locked=True), [cid, want])
            jobs += got
            if len(got) == want:
                full[cid] = got[-1]["id"]
        for cid, last in full.items():
            if len(jobs) >= limit:
                break
            jobs += await fetch(
                "SELECT id, organization_id, campaign_id, lead_id, channel FROM send_job "
                "WHERE campaign_id = ? AND state = 'READY' AND id > ? ORDER BY id LIMIT ?"
                + for_update(skip_locked=True), [cid, last, limit - len(jobs)])
        if not jobs:
            return out
        by_campaign: dict[int, list[dict]] = defaultdict(list)
        for job in jobs:
            by_campaign[job["campaign_id"]].append(job)
        campaigns = {c.id: c for c in await Campaign.filter(id__in=list(by_campaign)).order_by("id").select_for_update(no_key=True)}
        channels = {(c.campaign_id, Channel(c.channel)): c for c in
                    await CampaignChannel.filter(campaign_id__in=list(by_campaign))}
        leads = {lead.id: lead for lead in await Lead.filter(id__in=list({j["lead_id"] for j in jobs}))}
        org_ids = sorted({c.organization_id for c in campaigns.values()})
        tzs = {o.id: ZoneInfo(o.timezone) for o in await Organization.filter(id__in=org_ids)}
        for org_id in org_ids:
            await credit_service.ensure_wallets(org_id)
        wallets = {(w.organization_id, w.source): w for w in
                   await CreditWallet.filter(organization_id__in=org_ids).order_by("id").select_for_update(no_key=True)}
        balance = {w.id: w.balance for w in wallets.values()}
        consumed: dict[int, int] = defaultdict(int)
        new_sends: list[Send] = []
        ledger: list[tuple[str, CreditEntry]] = []
        queued_ids: list[int] = []
        skipped: list[tuple[int, str]] = []
        skip_sends: list[Send] = []
        reserved: dict[int, int] = defaultdict(int)
        for cid in sorted(by_campaign):
            campaign = campaigns[cid]
            if campaign.status != CampaignStatus.LIVE:
                continue  # paused since the claim query: its jobs stay READY
            room = (campaign.budget_micros - campaign.spent_micros - campaign.reserved_micros
                    if campaign.budget_micros > 0 else None)
            tz = tzs[campaign.organization_id]
            for job in by_campaign[cid]:
                channel = Channel(job["channel"])
                config = channels.get((cid, channel))
                lead = leads.get(job["lead_id"])
                reason = None
                if lead is None:
                    reason = "LEAD_DELETED"  # nobody to show it for: the job alone records it
                elif config is None or not config.enabled:
                    reason = SkipReason.CHANNEL_DISABLED.value
                elif channel.value in (lead.unsubscribed or []):
                    reason = SkipReason.UNSUBSCRIBED.value
                elif not _address(lead, channel):
                    reason = SkipReason.NO_ADDRESS.value
                if reason:
                    skipped.append((job["id"], reason))
                    if lead is not None:
                        # A SKIPPED send: the send log lists it with its reason, the counters count it.
                        skip_sends.append(Send(
                            organization_id=campaign.organization_id, campaign_id=cid, lead_id=lead.id,
                            channel=channel, center_key=lead.center_id or 0, day=now.astimezone(tz).date(),
                            external_id=f"{SYSTEM_PREFIX}{job['id']}", status=SendStatus.SKIPPED,
                            skip_reason=SkipReason(reason), queued_at=now, system=True,
                            provider=config.provider if config else None))
                    continue
                cost, creds = config.unit_cost_micros, config.credits_per_message
                if room is not None and cost > room:
                    out.paused[cid] = StatusReason.BUDGET_EXHAUSTED
                    break
                source = credit_service.source_for(CampaignType(campaign.type), channel)
                wallet = wallets.get((campaign.organization_id, source)) if source and creds > 0 else None
                if wallet is not None and balance[wallet.id] < creds:
                    out.paused[cid] = StatusReason.CREDITS_EXHAUSTED
                    break
                if room is not None:
                    room -= cost
                if wallet is not None:
                    balance[wallet.id] -= creds
                    consumed[wallet.id] += creds
                reserved[cid] += cost
                external_id = f"{SYSTEM_PREFIX}{job['id']}"
                day = now.astimezone(tz).date()
                new_sends.append(Send(
                    organization_id=campaign.organization_id, campaign_id=cid, lead_id=lead.id, channel=channel,
                    center_key=lead.center_id or 0, day=day, external_id=external_id, status=SendStatus.PENDING,
                    queued_at=now, system=True, provider=config.provider, reserved_micros=cost,
                    dispatch_after=now))
                if wallet is not None:
                    ledger.append((external_id, CreditEntry(
                        organization_id=campaign.organization_id, wallet_id=wallet.id, kind=CreditEntryKind.CONSUMPTION,
                        amount=-creds, campaign_id=cid, channel=channel, center_key=lead.center_id or 0, day=day,
                        reason="message queued")))
                queued_ids.append(job["id"])
        if new_sends:
            await Send.bulk_create(new_sends, batch_size=1000)
            ids = dict(await Send.filter(organization_id__in=org_ids, channel__in=list({s.channel for s in new_sends}),
                                         external_id__in=[s.external_id for s in new_sends])
                       .values_list("external_id", "id"))
            for external_id, entry in ledger:
                entry.send_id = ids[external_id]
            await CreditEntry.bulk_create([e for _, e in ledger], batch_size=1000)
            for wallet_id in sorted(consumed):
                await execute("UPDATE credit_wallet SET balance = balance - ? WHERE id = ?", [consumed[wallet_id], wallet_id])
            for cid in sorted(reserved):
                await execute("UPDATE campaign SET reserved_micros = reserved_micros + ? WHERE id = ?", [reserved[cid], cid])
            delta = CounterDelta()
            for s in new_sends:
                delta.add((s.organization_id, s.campaign_id, s.channel.value, s.center_key, s.day),
                          {"generated": 1, "pending": 1})
            await delta.apply()
            await SendChange.bulk_create([
                SendChange(organization_id=s.organization_id, campaign_id=s.campaign_id, send_id=ids[s.external_id],
                           channel=s.channel, status=SendStatus.PENDING) for s in new_sends], batch_size=1000)
        if skip_sends:
            await Send.bulk_create(skip_sends, batch_size=1000)
            delta = CounterDelta()
            skips: dict[tuple, int] = defaultdict(int)
            for s in skip_sends:
                delta.add((s.organization_id, s.campaign_id, s.channel.value, s.center_key, s.day), {"skipped": 1})
                skips[(s.organization_id, s.campaign_id, s.channel.value, s.skip_reason.value, s.day)] += 1
            await delta.apply()
            await add_skips(skips)
        if queued_ids:
            await _mark_jobs(queued_ids, "QUEUED", None, now)
        for reason in {r for _, r in skipped}:
            await _mark_jobs([j for j, r in skipped if r == reason], "SKIPPED", reason, now)
        for cid, reason in sorted(out.paused.items()):
            await Campaign.filter(id=cid, status=CampaignStatus.LIVE).update(
                status=CampaignStatus.PAUSED, status_reason=reason, updated_at=now)
        out.queued, out.skipped = len(new_sends), len(skipped)
        out.campaigns = {s.campaign_id for s in new_sends + skip_sends} | set(out.paused)
    queued_in = {s.campaign_id for s in new_sends + skip_sends}
    for cid in sorted(out.campaigns):
        org_id = campaigns[cid].organization_id
        if cid in queued_in:
            await bus.campaign_changed(org_id, cid, "sends")
        if cid in out.paused:
            await bus.campaign_changed(org_id, cid, "status")
    if any(consumed.values()):
        for org_id in org_ids:
            await bus.publish(bus.topics.organization(org_id), {"what": "credits", "organizationId": org_id})
    return out


async def _mark_jobs(ids: list[int], state: str, reason: str | None, now: datetime) -> None:
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        await SendJob.filter(id__in=chunk).update(state=state, skip_reason=reason, done_at=now)


# ---------------------------------------------------------------- dispatch


@dataclass
class DispatchResult:
    handed: int = 0
    retried: int = 0
    failed: int = 0


async def dispatch_batch(providers: dict[str, Provider], limit: int = 200, *, lease_s: float = 60,
                         max_attempts: int = 5, backoff_s: float = 2.0, now: datetime | None = None,
                         campaign_ids: list[int] | None = None) -> DispatchResult:
    now = now or datetime.now(timezone.utc)
    out = DispatchResult()
    only = ""
    params: list = [True, param_datetime(now)]
    if campaign_ids is not None:
        if not campaign_ids:
            return out
        only = f" AND campaign_id IN ({','.join('?' for _ in campaign_ids)})"
        params += list(campaign_ids)
    async with in_transaction():
        # `status = 'PENDING'` as a literal: the partial index `send_dispatch_due` (migration 0013)
        # serves this claim front to back in (dispatch_after, id) order, whatever the finished sends.
        rows = await fetch(
            "SELECT id FROM send WHERE system = ? AND status = 'PENDING' AND dispatch_after IS NOT NULL "
            f"AND dispatch_after <= ?{only} ORDER BY dispatch_after, id LIMIT ?" + for_update(skip_locked=True),
            [*params, limit])
        ids = [r["id"] for r in rows]
        if not ids:
            return out
        token = secrets.token_hex(16)  # this claim's fence
        await Send.filter(id__in=ids).update(dispatch_after=now + timedelta(seconds=lease_s), claim_token=token)
        await execute(f"UPDATE send SET dispatch_attempts = dispatch_attempts + 1 WHERE id IN ({','.join('?' for _ in ids)})", ids)
    sends = await Send.filter(id__in=ids, claim_token=token)
    campaigns = {c.id: c for c in await Campaign.filter(id__in=list({s.campaign_id for s in sends}))}
    leads = {lead.id: lead for lead in await Lead.filter(id__in=list({s.lead_id for s in sends}))}
    by_provider: dict[str, list[tuple[Send, Message]]] = defaultdict(list)
    for s in sends:
        lead, campaign = leads.get(s.lead_id), campaigns[s.campaign_id]
        by_provider[s.provider or "simulated"].append((s, Message(
            send_id=s.id, external_id=s.external_id, org_id=s.organization_id, campaign_id=s.campaign_id,
            campaign_name=campaign.name, campaign_description=campaign.description, lead_id=s.lead_id,
            lead_name=lead.name if lead else "", channel=s.channel, address=_address(lead, s.channel) if lead else None,
            queued_at=s.queued_at, attempt=s.dispatch_attempts)))
    for name, all_items in by_provider.items():
        provider = providers.get(name)
        # Small chunks, each recorded at once: a slow provider never outlives the lease,
        # and a crash re-sends at most one chunk.
        for start in range(0, len(all_items), DISPATCH_CHUNK):
            items = all_items[start:start + DISPATCH_CHUNK]
            # renew the lease of this chunk before handing it over — only where the claim is still ours:
            # once our lease expired another worker may have claimed (and sent) these messages.
            chunk_ids = [s.id for s, _ in items]
            await Send.filter(id__in=chunk_ids, status=SendStatus.PENDING, claim_token=token).update(
                dispatch_after=datetime.now(timezone.utc) + timedelta(seconds=lease_s))
            mine = set(await Send.filter(id__in=chunk_ids, status=SendStatus.PENDING, claim_token=token)
                       .values_list("id", flat=True))
            if len(mine) < len(items):
                log.warning("dispatch claim lost for %d message(s) (lease expired): not handed off",
                            len(items) - len(mine))
            items = [(s, m) for s, m in items if s.id in mine]
            if items:
                await _dispatch_chunk(name, provider, items, out, now, max_attempts, backoff_s, token)
    return out


async def _dispatch_chunk(name, provider, items, out: DispatchResult, now, max_attempts, backoff_s,
                          token: str) -> None:
    reports: dict[int, list[SendEventData]] = defaultdict(list)
    if provider is None:
        outcomes = [None] * len(items)
    else:
        try:
            outcomes = await provider.send([m for _, m in items])
        except Exception as exc:  # noqa: BLE001 - a provider bug is a transient failure
            log.exception("provider %s failed", name)
            outcomes = [Outcome(False, retry=True, reason=f"{name}: {type(exc).__name__}")] * len(items)
    # Record each outcome only where the claim is still ours (fenced by the token), releasing it in the
    # same conditional update: a late worker whose lease expired and whose messages another worker
    # claimed since changes nothing — neither the lease, nor the retry time, nor the status.
    async with in_transaction():
        for (s, m), outcome in zip(items, outcomes):
            retry = outcome is not None and not outcome.accepted and outcome.retry and s.dispatch_attempts < max_attempts
            after = now + timedelta(seconds=backoff_s * 2 ** (s.dispatch_attempts - 1)) if retry else None
            if not await Send.filter(id=s.id, status=SendStatus.PENDING, claim_token=token).update(
                    dispatch_after=after, claim_token=None):
                log.warning("dispatch outcome of send %s not recorded: its claim was lost (lease expired)", s.id)
                continue
            if outcome is None:
                reports[s.organization_id].append(_failed(m, f"no provider named {name!r} is configured"))
                out.failed += 1
            elif outcome.accepted:
                reports[s.organization_id].extend(outcome.events or [])
                out.handed += 1
            elif retry:
                out.retried += 1
            else:
                reports[s.organization_id].extend(outcome.events or [_failed(m, outcome.reason or "refused")])
                out.failed += 1
    for org_id, events in reports.items():
        if events:
            await ingest_send_events(system_principal(org_id), events)


def _failed(m: Message, reason: str) -> SendEventData:
    return SendEventData(idempotency_key=f"{m.external_id}:failed", external_id=m.external_id, channel=m.channel,
                         type=SendEventType.FAILED, occurred_at=datetime.now(timezone.utc), reason=reason[:500])


async def expire_receipts(timeout_s: float, now: datetime | None = None) -> int:
    """Messages handed to a provider that never reported back end FAILED (no receipt), so
    their reservation is released and their campaign can complete."""
    now = now or datetime.now(timezone.utc)
    # Literal predicates (not parameters): they match the partial index `send_system_pending`
    # (migration 0013) in every plan, generic ones included.
    stale = await fetch(
        "SELECT organization_id, external_id, channel FROM send WHERE system = true AND status = 'PENDING' "
        "AND dispatch_after IS NULL AND queued_at < ? LIMIT 1000", [param_datetime(now - timedelta(seconds=timeout_s))])
    by_org: dict[int, list[SendEventData]] = defaultdict(list)
    for s in stale:
        by_org[s["organization_id"]].append(SendEventData(
            idempotency_key=f"{s['external_id']}:failed", external_id=s["external_id"], channel=Channel(s["channel"]),
            type=SendEventType.FAILED, occurred_at=now, reason="no receipt from the provider"))
    for org_id, events in by_org.items():
        await ingest_send_events(system_principal(org_id), events)
    return len(stale)


async def complete_finished() -> list[int]:
    """SCHEDULED-type campaigns complete by themselves once every job is done and every message left PENDING."""
    done = []
    for cid, org_id in await Campaign.filter(status=CampaignStatus.LIVE, type=CampaignType.SCHEDULED) \
            .values_list("id", "organization_id"):
        if await SendJob.filter(campaign_id=cid, state="READY").exists():
            continue
        if await fetch("SELECT 1 FROM send WHERE campaign_id = ? AND system = true AND status = 'PENDING' LIMIT 1",
                       [cid]):
            continue
        if not await SendJob.filter(campaign_id=cid).exists():
            continue  # nothing for the sender to do (e.g. integrator-driven): completes manually
        if any(await campaign_busy.run(cid)):
            continue  # another domain still has work for it (outreach steps to come)
        now = datetime.now(timezone.utc)
        if await Campaign.filter(id=cid, status=CampaignStatus.LIVE).update(status=CampaignStatus.COMPLETED,
                                                                            ended_at=now, updated_at=now):
            done.append(cid)
            await bus.campaign_changed(org_id, cid, "status")
    return done


async def queue_stats() -> tuple[int, float]:
    """(system sends waiting for hand-off, age in seconds of the oldest one) — for /metrics."""
    row = (await fetch("SELECT COUNT(*) AS n, MIN(queued_at) AS oldest FROM send "
                       "WHERE system = true AND status = 'PENDING'"))[0]
    depth, oldest = int(row["n"] or 0), db_datetime(row["oldest"])
    if oldest is None:
        return depth, 0.0
    return depth, max(0.0, (datetime.now(timezone.utc) - oldest).total_seconds())


async def ready_queues(campaign_ids: list[int]) -> dict[int, tuple[int, datetime | None]]:
    """Per campaign: (READY send jobs waiting to be queued, when the oldest of them was created)."""
    if not campaign_ids:
        return {}
    ids = sorted(set(campaign_ids))
    rows = await fetch(
        "SELECT campaign_id, COUNT(*) AS n, MIN(created_at) AS oldest FROM send_job WHERE state = 'READY' AND "
        f"campaign_id IN ({','.join('?' for _ in ids)}) GROUP BY campaign_id", ids)
    return {r["campaign_id"]: (int(r["n"]), db_datetime(r["oldest"])) for r in rows}


async def ready_stats() -> tuple[int, float]:
    """(READY send jobs of LIVE campaigns, age in seconds of the oldest one) — for /metrics."""
    rows = await fetch("SELECT COUNT(*) AS n, MIN(j.created_at) AS oldest FROM send_job j JOIN campaign c "
                       "ON c.id = j.campaign_id WHERE j.state = 'READY' AND c.status = 'LIVE'")
    oldest = db_datetime(rows[0]["oldest"]) if rows else None
    depth = int(rows[0]["n"] or 0) if rows else 0
    if oldest is None:
        return depth, 0.0
    return depth, max(0.0, (datetime.now(timezone.utc) - oldest).total_seconds())
