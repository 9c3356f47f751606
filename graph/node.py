"""`node(id)`: any object by its global id, scoped like every read (a foreign id answers null).

Above every domain package: it knows every Node type."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from app.audience.leads import leads_query
from app.campaigns.service import in_visible_campaigns, visible_campaign
from app.delivery.sends import visible_send
from app.tenancy.service import members_query, tokens_query
from graph.audience.types import Lead
from graph.billing.types import BudgetAlert, SpendEntry
from graph.campaigns.types import Campaign
from graph.core import Node, ObjectId, ctx, from_global_id
from graph.delivery.types import Send
from graph.exports.queries import load_export
from graph.exports.types import Export
from graph.tenancy.queries import principal_currency, scope_or_none
from graph.tenancy.types import ApiToken, Center, Organization, User, Zone
from models import budgets as mb
from models import tenancy as mt


#: Every type that implements Node (the schema registers them).
NODE_TYPES = [Campaign, Lead, Send, SpendEntry, BudgetAlert, Organization, Zone, Center, User, ApiToken, Export]


async def load_node(info: Info, gid: str) -> Node | None:
    p = ctx(info).principal
    parsed = from_global_id(gid)
    if parsed is None:
        return None
    kind, pk = parsed
    if kind == "Campaign":
        m = await visible_campaign(p, pk)
        return Campaign.of(m) if m else None
    if kind == "Lead":
        m = await leads_query(p).filter(id=pk).first()
        return Lead.of(m) if m else None
    if kind == "Send":
        m = await visible_send(p, pk)
        return Send.of(m) if m else None
    if kind == "SpendEntry":
        m = await in_visible_campaigns(mb.SpendEntry, p).filter(id=pk).first()
        return SpendEntry.of(m, await principal_currency(p)) if m else None
    if kind == "BudgetAlert":
        m = await in_visible_campaigns(mb.BudgetAlert, p).filter(id=pk).first()
        return BudgetAlert.of(m, await principal_currency(p)) if m else None
    if kind == "Organization":
        return Organization.of(await mt.Organization.get(id=pk)) if pk == p.org_id else None
    if kind in ("Zone", "Center"):
        unit = await scope_or_none(info, p, gid)
        if unit is None:
            return None
        return Zone.of(await mt.Zone.get(id=pk)) if kind == "Zone" else Center.of(await mt.Center.get(id=pk))
    if kind == "User":
        m = await members_query(p).filter(id=pk).first()
        return User.of(m) if m else None
    if kind == "Export":
        return await load_export(p, pk)
    if kind == "ApiToken":
        m = await tokens_query(p).filter(id=pk).first()
        return ApiToken.of(m) if m else None
    return None


@strawberry.field(description="Fetch any object by its global id (null when missing or not visible).")
async def node(self, info: Info, id: ObjectId) -> Node | None:
    return await load_node(info, id)
