"""The live leadsKpis subscription (a SnapshotHub per scope unit)."""

from __future__ import annotations

from typing import AsyncGenerator

import strawberry
from strawberry.types import Info

from app.outreach import service
from app.tenancy.access import Principal, Unit
from graph.core import ScopeArg, ctx
from graph.core.realtime import relay
from graph.outreach.types import LeadsKpis
from graph.tenancy.queries import scope_unit
from subscriptions.hubs import SnapshotHub, Sub, get_registry


def _hub(key: tuple, unit: Unit, org_id: int) -> SnapshotHub:
    async def compute():
        return LeadsKpis.of(await service.leads_kpis(unit))

    def allowed(principal: Principal, _snapshot) -> bool:
        return principal.scope.contains(unit)

    # Leads KPIs move with sends, steps, events, leads, statuses and the midnight tick: every
    # message of the organization wakes the hub; the snapshot is a few counter rows.
    return SnapshotHub(get_registry(), key, org_id, compute, allowed, lambda message: True)


@strawberry.subscription(description="Leads KPIs of your scope (or a narrower unit): the current value, then every "
                                     "change (a step marked done, an email sent, a reply, a day passing).")
async def leads_kpis(self, info: Info, scope: ScopeArg = None) -> AsyncGenerator[LeadsKpis, None]:
    p = ctx(info).principal
    unit = await scope_unit(p, scope)
    key = ("leadsKpis", unit.kind.value, unit.id)
    sub = Sub(p, latest_only=True)

    async def make():
        return _hub(key, unit, p.org_id)

    hub = await get_registry().join(key, p.org_id, make, sub)
    try:
        async for item in relay(info, sub, "leadsKpis", first=await hub.current(sub)):
            yield item
    finally:
        await get_registry().leave(hub, sub)
