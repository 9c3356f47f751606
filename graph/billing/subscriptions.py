"""GraphQL billing: subscription fields."""

from __future__ import annotations

import datetime as dt
from typing import AsyncGenerator

import strawberry
from strawberry.types import Info

from app.campaigns.service import campaign_unit
from app.tenancy.access import Principal
from graph.billing.types import BudgetAlert
from graph.core import ScopeArg, ctx
from graph.core.realtime import close_slow_soon, currency_of, relay
from graph.tenancy.queries import scope_unit
from models import budgets as mb
from models.campaigns import Campaign as CampaignModel
from subscriptions.hubs import StreamHub, Sub, get_registry


@strawberry.subscription(description="Each budget alert (80/90/100 % crossing, once per threshold) of the "
                                     "campaigns in your scope or a narrower unit, as it is raised.")
async def budget_alerts(self, info: Info, scope: ScopeArg = None) -> AsyncGenerator[BudgetAlert, None]:
    p = ctx(info).principal
    unit = await scope_unit(p, scope)
    currency = await currency_of(p.org_id)
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
    sub.on_overflow = lambda: close_slow_soon(info)
    hub = await get_registry().join(("budgetAlerts", org_id), org_id, make, sub)
    try:
        async for alert in relay(info, sub, "budgetAlerts", lambda alert: alert.payload):
            yield alert
    finally:
        await get_registry().leave(hub, sub)
