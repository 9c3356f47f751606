"""Subscriptions (SPEC §12): current value first, then every change (coalesced),
resumable send stream, permission re-checked for every message.

Resolvers only join a hub and relay what it offers; the values they yield are
plain data, so executing the selection per subscriber costs no queries.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
from typing import Annotated, AsyncGenerator

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from app import metrics
from app.services import kpis
from app.services.access import Principal, Unit, resolve_unit
from app.services.campaigns import campaign_unit, campaigns_query
from app.services.errors import DomainError
from graph.core import Money, ScopeArg, ctx, decode_id, from_global_id, to_global_id
from graph.execution import DirectDelivery, SharedPayload
from graph.enums import CampaignStatus, Channel, SendStatus, StatusReason
from graph.inputs import unit_ref
from graph.resume import later_cursor
from graph.types import BudgetAlert, ChannelCost, ChannelMetrics, Dashboard, Send, org_unit
from models import budgets as mb
from models import sends as ms
from models.campaigns import Campaign as CampaignModel
from models.leads import Lead as LeadModel
from models.tenancy import Organization
from subscriptions.hubs import SlowConsumer, SnapshotHub, StreamHub, Sub, SubscriptionClosed, get_registry

SLOW_CONSUMER_CLOSE = 4008  # not fatal for graphql-ws clients: they reconnect and resume by cursor
STREAM_REPLAY_PAGE = 1000


@strawberry.type(description="Budget figures of a campaign (live).")
class BudgetSummary:
    snapshot: strawberry.Private[kpis.CampaignSnapshot]

    @strawberry.field(description="Allocated budget (0 = no budget).")
    def allocated(self) -> Money:
        return Money.of(self.snapshot.campaign.budget_micros, self.snapshot.currency)

    @strawberry.field(description="Message costs plus logged spend.")
    def spent(self) -> Money:
        return Money.of(self.snapshot.campaign.spent_micros, self.snapshot.currency)

    @strawberry.field(description="allocated − spent.")
    def remaining(self) -> Money:
        c = self.snapshot.campaign
        return Money.of(c.budget_micros - c.spent_micros, self.snapshot.currency)

    @strawberry.field(description="spent / allocated (0 when there is no budget).")
    def utilization(self) -> float:
        c = self.snapshot.campaign
        return c.spent_micros / c.budget_micros if c.budget_micros else 0.0

    @strawberry.field(description="Message cost per channel.")
    def by_channel(self) -> list[ChannelCost]:
        return [ChannelCost(channel=m.channel, cost=Money.of(m.cost_micros, self.snapshot.currency))
                for m in self.snapshot.metrics.by_channel]

    @strawberry.field(description="Sum of logged spend entries.")
    def logged_spend(self) -> Money:
        return Money.of(self.snapshot.logged_micros, self.snapshot.currency)


@strawberry.type(description="Live KPIs of one campaign: status, totals, per-channel metrics, budget.")
class CampaignKpis(SharedPayload):
    snapshot: strawberry.Private[kpis.CampaignSnapshot]

    @strawberry.field(description="The campaign's global id.")
    def campaign_id(self) -> strawberry.ID:
        return to_global_id("Campaign", self.snapshot.campaign.id)

    @strawberry.field(description="Lifecycle status.")
    def status(self) -> CampaignStatus:
        return self.snapshot.campaign.status

    @strawberry.field(description="Why the campaign is paused, if it is.")
    def status_reason(self) -> StatusReason | None:
        return self.snapshot.campaign.status_reason

    @strawberry.field(description="Treatment recipients.")
    def reach(self) -> int:
        return self.snapshot.campaign.reach

    @strawberry.field(description="Recipients.")
    def audience_size(self) -> int:
        return self.snapshot.campaign.audience_size

    @strawberry.field(description="All channels together.")
    def totals(self) -> ChannelMetrics:
        return ChannelMetrics(m=self.snapshot.metrics.totals, currency=self.snapshot.currency)

    @strawberry.field(description="One entry per configured channel.")
    def by_channel(self) -> list[ChannelMetrics]:
        return [ChannelMetrics(m=m, currency=self.snapshot.currency) for m in self.snapshot.metrics.by_channel]

    @strawberry.field(description="Budget figures.")
    def budget(self) -> BudgetSummary:
        return BudgetSummary(snapshot=self.snapshot)

    @strawberry.field(description="Reads within the view window (lifetime).")
    def viewed(self) -> int:
        return self.snapshot.engagement.get("viewed", 0)

    @strawberry.field(description="Counted clicks (lifetime).")
    def clicked(self) -> int:
        return self.snapshot.engagement.get("clicked", 0)

    @strawberry.field(description="Treatment recipients who reached the campaign's goal.")
    def conversions(self) -> int:
        return self.snapshot.engagement.get("converters", 0)

    @strawberry.field(description="Revenue of the treatment group's attributed SALE goals.")
    def revenue(self) -> Money:
        return Money.of(self.snapshot.engagement.get("revenue_micros", 0), self.snapshot.currency)

    @strawberry.field(description="When these figures were computed.")
    def computed_at(self) -> dt.datetime:
        return self.snapshot.computed_at


@strawberry.type(description="A change of one send's status or engagement.")
class SendStatusEvent(SharedPayload):
    change: strawberry.Private[ms.SendChange]
    send_: strawberry.Private[ms.Send]
    lead: strawberry.Private[LeadModel | None]
    currency: strawberry.Private[str]

    @strawberry.field(description="Pass it as `after` when reconnecting to miss nothing.")
    def cursor(self) -> str:
        return encode_change_cursor(self.change.id)

    @strawberry.field(description="The send's status right after this change.")
    def status(self) -> SendStatus:
        return self.change.status

    @strawberry.field(description="Channel of the send.")
    def channel(self) -> Channel:
        return self.change.channel

    @strawberry.field(description="When the change was recorded.")
    def changed_at(self) -> dt.datetime:
        return self.change.created_at

    @strawberry.field(description="The send as it is now.")
    def send(self) -> Send:
        return Send(id=to_global_id("Send", self.send_.id), m=self.send_, lead_=self.lead, currency_=self.currency)


def encode_change_cursor(change_id: int) -> str:
    return base64.b64encode(f"SendChange:{change_id}".encode()).decode()


def decode_change_cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    parsed = from_global_id(cursor)
    if parsed is None or parsed[0] != "SendChange":
        raise GraphQLError("invalid cursor", extensions={"code": "BAD_USER_INPUT"})
    return parsed[1]


@strawberry.input(description="Filter of the send-status stream.")
class SendStreamFilter:
    channel: Channel | None = strawberry.field(default=None, description="Only this channel.")
    status: SendStatus | None = strawberry.field(default=None, description="Only changes to this status.")


# ---------------------------------------------------------------- relay helpers


async def _close_slow(info: Info) -> None:
    metrics.WS_CLOSED.labels(str(SLOW_CONSUMER_CLOSE)).inc()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(ctx(info).request.close(
            code=SLOW_CONSUMER_CLOSE, reason="slow consumer: reconnect and resume with `after`"), timeout=5)


async def _relay(info: Info, sub: Sub, name: str, payload=lambda item: item, first=None):
    """Yield `first` (if any), then the payload of what a hub offers to `sub` (None: skip it) until
    the client leaves or access ends; what can go straight to the socket as a ready frame does
    (graph/execution.py)."""
    sent = metrics.MESSAGES.labels(name)
    direct = DirectDelivery.for_current(info, sent)
    if first is not None:
        sent.inc()
        if direct is None or not await direct.send(first):
            yield first
        del first
    # While this task waits, a KPI hub may write values to the socket itself (Sub.deliver).
    deliver = direct.send_now if direct is not None and sub.latest_only else None
    while True:
        try:
            sub.deliver = deliver
            try:
                item = await sub.next()
            finally:
                sub.deliver = None
        except SubscriptionClosed as exc:
            raise GraphQLError(str(exc), extensions={"code": "NOT_FOUND" if str(exc) == "not found" else "FORBIDDEN"})
        except SlowConsumer:
            return  # the socket is being closed with SLOW_CONSUMER_CLOSE (see Sub.on_overflow)
        item = payload(item)
        if item is None:
            continue
        ctx(info).loaders.clear()  # fresh DataLoaders per message: never stale
        sent.inc()
        if direct is None or not await direct.send(item):
            yield item


def _campaign_allowed(p: Principal, payload: "CampaignKpis") -> bool:
    c = payload.snapshot.campaign
    return c.organization_id == p.org_id and p.scope.contains(campaign_unit(c))


async def _visible_campaign(p: Principal, gid: str) -> CampaignModel:
    pk = decode_id(gid, "Campaign")
    campaign = await campaigns_query(p).filter(id=pk).first() if pk else None
    if campaign is None:
        raise GraphQLError("campaign not found", extensions={"code": "NOT_FOUND"})
    return campaign


async def _unit(p: Principal, scope: str | None) -> Unit:
    try:
        return await resolve_unit(p, *(unit_ref(scope, "scope") or (None, None)))
    except DomainError:
        raise GraphQLError("unit not found", extensions={"code": "NOT_FOUND"}) from None


async def _currency(org_id: int) -> str:
    return (await Organization.get(id=org_id)).currency


async def _dashboard_hub(info: Info, key: tuple, unit: Unit, org_id: int) -> SnapshotHub:
    currency = await _currency(org_id)
    zone_id = unit.id if unit.kind.value == "ZONE" else unit.zone_id
    center_id = unit.id if unit.kind.value == "CENTER" else None
    scope_obj = await org_unit(info, unit.kind, org_id, zone_id, center_id)

    async def compute():
        return Dashboard(d=await kpis.dashboard(unit), currency=currency, scope=scope_obj)

    def allowed(principal: Principal, _snapshot) -> bool:
        return principal.scope.contains(unit)

    return SnapshotHub(get_registry(), key, org_id, compute, allowed, lambda message: True,
                       fingerprint=lambda snapshot: snapshot.d)


async def _campaign_hub(cid: int, org_id: int) -> SnapshotHub:
    async def compute():
        snapshot = await kpis.campaign_snapshot(cid)
        return CampaignKpis(snapshot=snapshot) if snapshot is not None else None

    return SnapshotHub(get_registry(), ("campaign", cid), org_id, compute, _campaign_allowed,
                       lambda message: message.get("campaignId") == cid,
                       fingerprint=lambda payload: payload.snapshot.fingerprint())


@strawberry.type(description="Live updates over a websocket (graphql-transport-ws).")
class Subscription:
    @strawberry.subscription(description="Dashboard KPIs of your scope (or a narrower unit): the current value, "
                                         "then every change (at most a few per second).")
    async def dashboard_kpis(self, info: Info, scope: ScopeArg = None) -> AsyncGenerator[Dashboard, None]:
        p = ctx(info).principal
        unit = await _unit(p, scope)
        key = ("dashboard", unit.kind.value, unit.id)
        # The hub's factory is a temporary: a subscription's frame keeps only what it needs
        # (memory per idle connection).
        sub = Sub(p, latest_only=True)
        hub = await get_registry().join(key, p.org_id, lambda: _dashboard_hub(info, key, unit, p.org_id), sub)
        try:
            async for item in _relay(info, sub, "dashboardKpis", first=await hub.current(sub)):
                yield item
        finally:
            await get_registry().leave(hub, sub)

    @strawberry.subscription(description="Live KPIs of a campaign: the current value, then every change.")
    async def campaign_kpis(self, info: Info, campaign_id: Annotated[strawberry.ID, strawberry.argument(
            description="The campaign.")]) -> AsyncGenerator[CampaignKpis, None]:
        p = ctx(info).principal
        cid = (await _visible_campaign(p, campaign_id)).id  # only the id is kept for the subscription's life
        sub = Sub(p, latest_only=True)
        hub = await get_registry().join(("campaign", cid), p.org_id, lambda: _campaign_hub(cid, p.org_id), sub)
        try:
            async for item in _relay(info, sub, "campaignKpis", first=await hub.current(sub)):
                yield item
        finally:
            await get_registry().leave(hub, sub)

    @strawberry.subscription(description="Each budget alert (80/90/100 % crossing, once per threshold) of the "
                                         "campaigns in your scope or a narrower unit, as it is raised.")
    async def budget_alerts(self, info: Info, scope: ScopeArg = None) -> AsyncGenerator[BudgetAlert, None]:
        p = ctx(info).principal
        unit = await _unit(p, scope)
        currency = await _currency(p.org_id)
        org_id = p.org_id

        # Alert ids are not in commit order across campaigns (concurrent transactions), so
        # the hub looks back over a time window and remembers what it already delivered.
        delivered: dict[int, dt.datetime] = {}
        lookback = dt.timedelta(seconds=120)

        async def head() -> int:
            since = dt.datetime.now(dt.timezone.utc) - lookback
            delivered.update(dict(await mb.BudgetAlert.filter(organization_id=org_id, created_at__gte=since)
                                  .values_list("id", "created_at")))
            return 0

        async def fetch(_after: int) -> list:
            now = dt.datetime.now(dt.timezone.utc)
            for alert_id, at in list(delivered.items()):
                if at < now - 2 * lookback:
                    del delivered[alert_id]
            alerts = [a for a in await mb.BudgetAlert.filter(organization_id=org_id, created_at__gte=now - lookback)
                      .order_by("id").limit(5000) if a.id not in delivered]
            units = {c.id: campaign_unit(c) for c in await CampaignModel.filter(id__in=[a.campaign_id for a in alerts])}
            for alert in alerts:
                alert.unit = units.get(alert.campaign_id)
                alert.payload = BudgetAlert.of(alert, currency)  # one object for every subscriber
                delivered[alert.id] = alert.created_at
            return alerts

        def allowed(principal: Principal, alert) -> bool:
            return alert.unit is not None and principal.scope.contains(alert.unit)

        async def make():
            return StreamHub(get_registry(), ("budgetAlerts", org_id), org_id, fetch, await head(), allowed,
                             lambda message: message.get("what") == "budgetAlert")

        sub = Sub(p, latest_only=False, limit=get_registry().stream_limit, accept=lambda alert: unit.contains(alert.unit))
        sub.on_overflow = lambda: asyncio.create_task(_close_slow(info))
        hub = await get_registry().join(("budgetAlerts", org_id), org_id, make, sub)
        try:
            async for alert in _relay(info, sub, "budgetAlerts", lambda alert: alert.payload):
                yield alert
        finally:
            await get_registry().leave(hub, sub)

    @strawberry.subscription(description="Every send status or engagement change of a campaign. With `after` (a "
                                         "cursor from an earlier message) it first replays what you missed.")
    async def send_status_changed(
        self, info: Info,
        campaign_id: Annotated[strawberry.ID, strawberry.argument(description="The campaign.")],
        filter: Annotated[SendStreamFilter | None, strawberry.argument(description="Narrow the stream.")] = None,
        after: Annotated[str | None, strawberry.argument(description="Resume after this cursor.")] = None,
        resume_key: Annotated[str | None, strawberry.argument(description=(
            "Key of this stream in the `resume` map of the connection_init payload (default: `campaignId`). "
            "A client that sends `{\"resume\": {key: lastCursor}}` on every connect resumes after its last "
            "cursor when it resubscribes with its original variables (docs/api.md, \"Surviving restarts\")."))] = None,
    ) -> AsyncGenerator[SendStatusEvent, None]:
        p = ctx(info).principal
        campaign = await _visible_campaign(p, campaign_id)
        cid, org_id, campaign_at = campaign.id, campaign.organization_id, campaign_unit(campaign)
        del campaign  # only what is needed is kept for the subscription's life
        after_id = decode_change_cursor(later_cursor(info, resume_key or campaign_id, after))
        currency = await _currency(org_id)
        channel = filter.channel if filter else None
        status = filter.status if filter else None

        async def fetch(last: int, upto: int | None = None, limit: int = STREAM_REPLAY_PAGE) -> list:
            qs = ms.SendChange.filter(campaign_id=cid, id__gt=last)
            if upto is not None:
                qs = qs.filter(id__lte=upto)
            changes = await qs.order_by("id").limit(limit)
            sends = {s.id: s for s in await ms.Send.filter(id__in=list({c.send_id for c in changes}))}
            leads = {lead.id: lead for lead in await LeadModel.filter(id__in=list({s.lead_id for s in sends.values()}))}
            for c in changes:
                send = sends.get(c.send_id)
                # One event object for every subscriber (see graph/execution.py).
                c.payload = SendStatusEvent(change=c, send_=send, lead=leads.get(send.lead_id) if send else None,
                                            currency=currency)
            return changes

        async def head() -> int:
            last = await ms.SendChange.filter(campaign_id=cid).order_by("-id").first()
            return last.id if last else 0

        def accept(change) -> bool:
            return (channel is None or change.channel == channel) and (status is None or change.status == status)

        def allowed(principal: Principal, _change) -> bool:
            return principal.org_id == org_id and principal.scope.contains(campaign_at)

        async def make():
            return StreamHub(get_registry(), ("sends", cid), org_id, fetch, await head(), allowed,
                             lambda message: message.get("campaignId") == cid and message.get("what") == "sends")

        sub = Sub(p, latest_only=False, limit=get_registry().stream_limit, accept=accept)
        sub.on_overflow = lambda: asyncio.create_task(_close_slow(info))
        hub = await get_registry().join(("sends", cid), org_id, make, sub)
        try:
            position = after_id
            if after_id is not None:
                upto = hub.head  # live items beyond this are already queued for us
                while position < upto:
                    page = await fetch(position, upto)
                    if not page:
                        break
                    for change in page:
                        if accept(change):
                            metrics.MESSAGES.labels("sendStatusChanged").inc()
                            yield change.payload
                    position = page[-1].id
            def live(change):  # what the replay above already gave is skipped
                return None if position is not None and change.id <= position else change.payload

            async for event in _relay(info, sub, "sendStatusChanged", live):
                yield event
        finally:
            await get_registry().leave(hub, sub)



