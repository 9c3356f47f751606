"""GraphQL reporting: subscription fields."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, AsyncGenerator

import strawberry
from strawberry.types import Info

from app.campaigns.service import campaign_unit
from app.reporting import kpis
from app.tenancy.access import Principal, Unit
from graph.billing.types import ChannelCost
from graph.core import Money, ScopeArg, ctx, to_global_id
from graph.core.enums import CampaignStatus, StatusReason
from graph.core.execution import SharedPayload
from graph.core.realtime import currency_of, relay, visible_campaign
from graph.delivery.types import ChannelMetrics
from graph.reporting.types import Dashboard
from graph.tenancy.queries import scope_unit
from graph.tenancy.types import org_unit
from subscriptions.hubs import SnapshotHub, Sub, get_registry


@strawberry.type(description="Budget figures of a campaign (live).")
class BudgetSummary:
    snapshot: strawberry.Private[kpis.CampaignSnapshot]

    @strawberry.field(description="Allocated budget (0 = no budget).")
    def allocated(self) -> Money:
        return Money.of(self.snapshot.campaign.budget_micros, self.snapshot.currency)

    @strawberry.field(description="Message costs plus logged spend.")
    def spent(self) -> Money:
        return Money.of(self.snapshot.campaign.spent_micros, self.snapshot.currency)

    @strawberry.field(description="allocated − spent; null when the campaign has no budget (allocated 0).")
    def remaining(self) -> Money | None:
        c = self.snapshot.campaign
        if c.budget_micros <= 0:
            return None
        return Money.of(c.budget_micros - c.spent_micros, self.snapshot.currency)

    @strawberry.field(description="spent / allocated (0 when there is no budget).")
    def utilization(self) -> float:
        c = self.snapshot.campaign
        return c.spent_micros / c.budget_micros if c.budget_micros else 0.0

    @strawberry.field(description="Per channel: message cost, logged spend entered for the channel, their total.")
    def by_channel(self) -> list[ChannelCost]:
        cur, logged = self.snapshot.currency, self.snapshot.logged_by_channel
        return [ChannelCost(channel=m.channel, cost=Money.of(m.cost_micros, cur),
                            logged_spend=Money.of(logged.get(m.channel, 0), cur),
                            total=Money.of(m.cost_micros + logged.get(m.channel, 0), cur))
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


def _campaign_allowed(p: Principal, payload: "CampaignKpis") -> bool:
    c = payload.snapshot.campaign
    return c.organization_id == p.org_id and p.scope.contains(campaign_unit(c))


async def _dashboard_hub(info: Info, key: tuple, unit: Unit, org_id: int) -> SnapshotHub:
    currency = await currency_of(org_id)
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
                       fingerprint=lambda payload: payload.snapshot.fingerprint(),
                       probe=lambda: kpis.campaign_version(cid))


@strawberry.subscription(description="Dashboard KPIs of your scope (or a narrower unit): the current value, "
                                     "then every change (at most a few per second).")
async def dashboard_kpis(self, info: Info, scope: ScopeArg = None) -> AsyncGenerator[Dashboard, None]:
    p = ctx(info).principal
    unit = await scope_unit(p, scope)
    key = ("dashboard", unit.kind.value, unit.id)
    # The hub's factory is a temporary: a subscription's frame keeps only what it needs
    # (memory per idle connection).
    sub = Sub(p, latest_only=True)
    hub = await get_registry().join(key, p.org_id, lambda: _dashboard_hub(info, key, unit, p.org_id), sub)
    try:
        async for item in relay(info, sub, "dashboardKpis", first=await hub.current(sub)):
            yield item
    finally:
        await get_registry().leave(hub, sub)


@strawberry.subscription(description="Live KPIs of a campaign: the current value, then every change.")
async def campaign_kpis(self, info: Info, campaign_id: Annotated[strawberry.ID, strawberry.argument(
        description="The campaign.")]) -> AsyncGenerator[CampaignKpis, None]:
    p = ctx(info).principal
    cid = (await visible_campaign(p, campaign_id)).id  # only the id is kept for the subscription's life
    sub = Sub(p, latest_only=True)
    hub = await get_registry().join(("campaign", cid), p.org_id, lambda: _campaign_hub(cid, p.org_id), sub)
    try:
        async for item in relay(info, sub, "campaignKpis", first=await hub.current(sub)):
            yield item
    finally:
        await get_registry().leave(hub, sub)
