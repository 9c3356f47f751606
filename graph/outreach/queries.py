"""Outreach reads, every one scoped by the access functions (a center-scoped user sees only its
leads' steps and actions)."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from app.core.errors import DomainError
from app.outreach import service
from app.tenancy.access import resolve_unit
from graph.core import ObjectId, ScopeArg, ctx, decode_id, to_global_id
from graph.outreach.types import CampaignOutreachKpis, LeadsKpis, OutreachStep, RecipientStep
from graph.tenancy.inputs import unit_ref
from models.leads import Lead
from models.outreach import OutreachStep as StepModel

Limit = Annotated[int, strawberry.argument(description="At most this many items (1 to 500).")]


async def recipient_steps_of(rows) -> list[RecipientStep]:
    steps = {s.id: s for s in await StepModel.filter(id__in=list({r.step_id for r in rows}))} if rows else {}
    names = dict(await Lead.filter(id__in=list({r.lead_id for r in rows})).values_list("id", "name")) if rows else {}
    return [RecipientStep(
        id=to_global_id("RecipientStep", r.id), campaign_id=to_global_id("Campaign", r.campaign_id),
        lead_id=to_global_id("Lead", r.lead_id), lead_name=names.get(r.lead_id, ""), step=OutreachStep.of(steps[r.step_id]),
        due_day=r.due_day, state=r.state, action_required=r.action_required, overdue=r.overdue, done_at=r.done_at,
        done_by_id=to_global_id("User", r.done_by_id) if r.done_by_id else None) for r in rows]


def _limit(first: int) -> int:
    return max(1, min(500, first))


@strawberry.field(description="Leads KPIs of your scope or a narrower unit, with weekly, monthly, quarterly and "
                              "annual comparisons. Null when the unit is not visible to you.")
async def leads_kpis(self, info: Info, scope: ScopeArg = None) -> LeadsKpis | None:
    p = ctx(info).principal
    try:
        unit = await resolve_unit(p, *(unit_ref(scope, "scope") or (None, None)))
    except DomainError:
        return None
    return LeadsKpis.of(await service.leads_kpis(unit))


@strawberry.field(description="A campaign's sequence steps, in order (empty when it has none or is not visible).")
async def outreach_steps(self, info: Info, campaign_id: ObjectId) -> list[OutreachStep]:
    from app.campaigns.service import campaigns_query

    pk = decode_id(campaign_id, "Campaign")
    if pk is None or not await campaigns_query(ctx(info).principal).filter(id=pk).exists():
        return []
    return [OutreachStep.of(s) for s in await service.steps_of(pk)]


@strawberry.field(description="Outreach KPIs of a campaign and of each step, over the leads you see "
                              "(null when the campaign is not visible).")
async def campaign_outreach_kpis(self, info: Info, campaign_id: ObjectId) -> CampaignOutreachKpis | None:
    pk = decode_id(campaign_id, "Campaign")
    if pk is None:
        return None
    k = await service.campaign_kpis(ctx(info).principal, pk)
    return CampaignOutreachKpis.of(k) if k else None


@strawberry.field(description="Today's action-required list of your scope (or a narrower unit): manual steps "
                              "whose day has come and that nobody marked done, oldest first, grouped by "
                              "campaign and lead.")
async def action_required(self, info: Info, scope: ScopeArg = None, first: Limit = 100) -> list[RecipientStep]:
    p = ctx(info).principal
    try:
        unit = await resolve_unit(p, *(unit_ref(scope, "scope") or (None, None)))
    except DomainError:
        return []
    rows = await service.visible_steps(p, unit).filter(action_required=True).order_by(
        "due_day", "campaign_id", "lead_id", "step_id").limit(_limit(first))
    return await recipient_steps_of(rows)


@strawberry.field(description="Per recipient and step, the states of a campaign's sequence (the leads you see), "
                              "optionally for one lead.")
async def recipient_steps(self, info: Info, campaign_id: ObjectId,
                          lead_id: Annotated[strawberry.ID | None, strawberry.argument(
                              description="Only this lead.")] = None,
                          first: Limit = 100) -> list[RecipientStep]:
    p = ctx(info).principal
    cid = decode_id(campaign_id, "Campaign")
    if cid is None:
        return []
    qs = service.visible_steps(p).filter(campaign_id=cid)
    if lead_id is not None:
        lid = decode_id(lead_id, "Lead")
        if lid is None:
            return []
        qs = qs.filter(lead_id=lid)
    rows = await qs.order_by("lead_id", "due_day", "step_id").limit(_limit(first))
    return await recipient_steps_of(rows)
