"""GraphQL reporting: query fields."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from app.reporting import kpis
from graph.core import ScopeArg, ctx
from graph.reporting.types import Dashboard
from graph.tenancy.queries import principal_currency, scope_or_none
from graph.tenancy.types import org_unit
from models import tenancy as mt
from models.enums import UnitKind


@strawberry.field(description="Dashboard KPIs of your scope, or of a narrower unit (organization, zone or "
                              "center id). Null when the unit is not visible to you.")
async def dashboard(self, info: Info, scope: ScopeArg = None) -> Dashboard | None:
    p = ctx(info).principal
    unit = await scope_or_none(info, p, scope)
    if unit is None:
        return None
    data = await kpis.dashboard(unit)
    zone_id = unit.zone_id if unit.kind != UnitKind.ORGANIZATION else None
    center_id = unit.id if unit.kind == UnitKind.CENTER else None
    if unit.kind == UnitKind.ZONE:
        zone_id = unit.id
    elif unit.kind == UnitKind.CENTER and zone_id is None:
        zone_id = (await mt.Center.get(id=unit.id)).zone_id
    return Dashboard(d=data, currency=await principal_currency(p),
                     scope=await org_unit(info, unit.kind, p.org_id, zone_id, center_id))
