"""Queries: every read is scoped to the caller; a foreign id answers like a missing one."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from app.services import kpis
from app.services.access import Principal, Unit, resolve_unit
from app.services.campaigns import campaigns_filtered, campaigns_query, in_visible_campaigns
from app.services.errors import DomainError
from app.services.leads import leads_query
from app.services.tenancy import tokens_query
from graph.core import After, Connection, First, Node, ObjectId, ScopeArg, ctx, decode_id, from_global_id, paginate
from graph.inputs import CampaignFilter, LeadFilter, unit_ref
from graph.types import (ApiToken, BudgetAlert, Campaign, Center, Dashboard, Lead, Organization, OrgUnit, Send,
                         SpendEntry, User, Zone, org_unit)
from models import budgets as mb
from models import sends as ms
from models import tenancy as mt
from models.enums import Role, UnitKind


async def _scope(info: Info, p: Principal, scope: strawberry.ID | None) -> Unit | None:
    """The caller's scope, or a narrower unit it names; None when not visible."""
    try:
        return await resolve_unit(p, *(unit_ref(scope, "scope") or (None, None)))
    except DomainError:
        return None


async def _currency(p: Principal) -> str:
    return (await mt.Organization.get(id=p.org_id)).currency


async def load_node(info: Info, gid: str) -> Node | None:
    p = ctx(info).principal
    parsed = from_global_id(gid)
    if parsed is None:
        return None
    kind, pk = parsed
    if kind == "Campaign":
        m = await campaigns_query(p).filter(id=pk).first()
        return Campaign.of(m) if m else None
    if kind == "Lead":
        m = await leads_query(p).filter(id=pk).first()
        return Lead.of(m) if m else None
    if kind == "Send":
        m = await in_visible_campaigns(ms.Send, p).filter(id=pk).first()
        return Send.of(m) if m else None
    if kind == "SpendEntry":
        m = await in_visible_campaigns(mb.SpendEntry, p).filter(id=pk).first()
        return SpendEntry.of(m, await _currency(p)) if m else None
    if kind == "BudgetAlert":
        m = await in_visible_campaigns(mb.BudgetAlert, p).filter(id=pk).first()
        return BudgetAlert.of(m, await _currency(p)) if m else None
    if kind == "Organization":
        return Organization.of(await mt.Organization.get(id=pk)) if pk == p.org_id else None
    if kind in ("Zone", "Center"):
        unit = await _scope(info, p, gid)
        if unit is None:
            return None
        return Zone.of(await mt.Zone.get(id=pk)) if kind == "Zone" else Center.of(await mt.Center.get(id=pk))
    if kind == "User":
        qs = mt.User.filter(id=pk, organization_id=p.org_id)
        if not p.is_owner:
            qs = qs.filter(id=p.user_id)
        m = await qs.first()
        return User.of(m) if m else None
    if kind == "Export":
        from graph.exports.queries import load_export

        return await load_export(p, pk)
    if kind == "ApiToken":
        m = await tokens_query(p).filter(id=pk).first()
        return ApiToken.of(m) if m else None
    return None


@strawberry.type(description="Reads.")
class Query:
    @strawberry.field(description="Fetch any object by its global id (null when missing or not visible).")
    async def node(self, info: Info, id: ObjectId) -> Node | None:
        return await load_node(info, id)

    @strawberry.field(description="The authenticated user.")
    async def viewer(self, info: Info) -> User:
        return User.of(await mt.User.get(id=ctx(info).principal.user_id))

    @strawberry.field(description="Dashboard KPIs of your scope, or of a narrower unit (organization, zone or "
                                  "center id). Null when the unit is not visible to you.")
    async def dashboard(self, info: Info, scope: ScopeArg = None) -> Dashboard | None:
        p = ctx(info).principal
        unit = await _scope(info, p, scope)
        if unit is None:
            return None
        data = await kpis.dashboard(unit)
        zone_id = unit.zone_id if unit.kind != UnitKind.ORGANIZATION else None
        center_id = unit.id if unit.kind == UnitKind.CENTER else None
        if unit.kind == UnitKind.ZONE:
            zone_id = unit.id
        elif unit.kind == UnitKind.CENTER and zone_id is None:
            zone_id = (await mt.Center.get(id=unit.id)).zone_id
        return Dashboard(d=data, currency=await _currency(p),
                         scope=await org_unit(info, unit.kind, p.org_id, zone_id, center_id))

    @strawberry.field(description="Campaigns visible to you, newest first.")
    async def campaigns(self, info: Info, filter: Annotated[CampaignFilter | None, strawberry.argument(description="Narrow the list.")] = None, first: First = 50,
                        after: After = None) -> Connection[Campaign]:
        p = ctx(info).principal
        try:
            qs = await campaigns_filtered(p, filter.data() if filter else None)
        except DomainError:
            qs = campaigns_query(p).filter(id=-1)  # a foreign owner unit: nothing
        return await paginate(qs, first, after, Campaign.of)

    @strawberry.field(description="One campaign (null when missing or not visible).")
    async def campaign(self, info: Info, id: ObjectId) -> Campaign | None:
        pk = decode_id(id, "Campaign")
        if pk is None:
            return None
        m = await campaigns_query(ctx(info).principal).filter(id=pk).first()
        return Campaign.of(m) if m else None

    @strawberry.field(description="Leads visible to you, newest first.")
    async def leads(self, info: Info, filter: Annotated[LeadFilter | None, strawberry.argument(description="Narrow the list.")] = None, first: First = 50,
                    after: After = None) -> Connection[Lead]:
        p = ctx(info).principal
        try:
            flt = filter.data() if filter else None
        except DomainError:
            return await paginate(leads_query(p).filter(id=-1), first, after, Lead.of)
        return await paginate(leads_query(p, flt), first, after, Lead.of)

    @strawberry.field(description="Budget alerts of the campaigns in your scope (or a narrower one), newest first.")
    async def budget_alerts(self, info: Info, scope: ScopeArg = None, first: First = 50,
                            after: After = None) -> Connection[BudgetAlert]:
        p = ctx(info).principal
        unit = await _scope(info, p, scope)
        currency = await _currency(p)
        qs = in_visible_campaigns(mb.BudgetAlert, p, unit) if unit else mb.BudgetAlert.filter(id=-1)
        return await paginate(qs, first, after, lambda m: BudgetAlert.of(m, currency))

    @strawberry.field(description="API tokens: all of the organization for owners, your own otherwise.")
    async def tokens(self, info: Info, first: First = 50, after: After = None) -> Connection[ApiToken]:
        return await paginate(tokens_query(ctx(info).principal), first, after, ApiToken.of)

    @strawberry.field(description="Members of the organization (owners), or yourself.")
    async def users(self, info: Info, first: First = 50, after: After = None) -> Connection[User]:
        p = ctx(info).principal
        qs = mt.User.filter(organization_id=p.org_id)
        if p.role != Role.OWNER:
            qs = qs.filter(id=p.user_id)
        return await paginate(qs, first, after, User.of)


__all__ = ["Query", "OrgUnit"]
