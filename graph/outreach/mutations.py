"""Outreach writes: stepsSet, stepMarkDone, stepUndo, outreachEventsIngest."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import strawberry
from strawberry.types import Info

from app.outreach import rules, service
from graph.core import ObjectId, UserError, ctx, decode_id, require_id
from graph.core.mutations import attempt
from graph.delivery.mutations import RejectedEvent
from graph.outreach.queries import recipient_steps_of
from graph.outreach.types import (
    OutreachAction,
    OutreachEventType,
    OutreachStep,
    RecipientStep,
    StepAction,
    StepCondition,
    StepKind,
)
from models.outreach import RecipientStep as RecipientStepModel


@strawberry.input(description="One step of a sequence (in order).")
class StepInput:
    kind: StepKind = strawberry.field(description="What the step does.")
    day_offset: int = strawberry.field(default=0, description="Days after the recipient's start (0 = its first day).")
    condition: StepCondition = strawberry.field(default=rules.StepCondition.NONE, description="When it applies.")
    note: str | None = strawberry.field(default=None, description="Free text (e.g. a message template).")
    id: strawberry.ID | None = strawberry.field(default=None, description="An existing step to keep (after launch, "
                                                                          "steps already due must be kept as they are).")


@strawberry.input(description="An outreach event from an integrator (idempotent by key).")
class OutreachEventInput:
    idempotency_key: str = strawberry.field(description="Unique per event; a repeat has no effect.")
    type: OutreachEventType = strawberry.field(description="What happened.")
    campaign_id: strawberry.ID = strawberry.field(description="The campaign.")
    lead_id: strawberry.ID | None = strawberry.field(default=None, description="The lead (or leadExternalId).")
    lead_external_id: str | None = strawberry.field(default=None, description="The lead's external id.")
    occurred_at: dt.datetime = strawberry.field(description="When it happened (with an offset).")


@strawberry.type(description="Result of stepsSet.")
class StepsSetPayload:
    steps: list[OutreachStep] = strawberry.field(description="The campaign's steps now, in order.")
    user_errors: list[UserError] = strawberry.field(description="Expected failures; empty on success.")


@strawberry.type(description="Result of stepMarkDone / stepUndo.")
class StepDonePayload:
    recipient_step: RecipientStep | None = strawberry.field(description="The recipient step, updated.")
    action: OutreachAction | None = strawberry.field(description="The recorded action (stepMarkDone).")
    already_done: bool = strawberry.field(description="The step was already done (by you or someone else): "
                                                      "nothing changed, the existing action is returned.")
    user_errors: list[UserError] = strawberry.field(description="Expected failures; empty on success.")


@strawberry.type(description="Result of outreachEventsIngest.")
class OutreachEventsIngestPayload:
    accepted: int = strawberry.field(description="Events applied (new idempotency keys).")
    duplicates: int = strawberry.field(description="Events already received with the same payload: no effect.")
    rejected: list[RejectedEvent] = strawberry.field(description="Events refused, with the reason.")
    user_errors: list[UserError] = strawberry.field(description="Expected failures; empty on success.")


async def _rs(pk: int) -> RecipientStep:
    return (await recipient_steps_of([await RecipientStepModel.get(id=pk)]))[0]


@strawberry.mutation(description="Set a campaign's sequence (replaces it). Before launch anything goes; after "
                                 "launch steps already due or done stay as they are, future ones may change, and "
                                 "a step added after launch applies to recipients whose day for it is today or "
                                 "later.")
async def steps_set(self, info: Info, campaign_id: ObjectId,
                    steps: Annotated[list[StepInput], strawberry.argument(description="The steps, in order.")]
                    ) -> StepsSetPayload:
    p = ctx(info).principal

    async def go():
        cid = require_id(campaign_id, "campaign", "campaignId", "Campaign")
        data = [service.StepData(kind=rules.StepKind(s.kind), day_offset=s.day_offset,
                                 condition=rules.StepCondition(s.condition), note=s.note or "",
                                 id=require_id(s.id, "step", ["steps", str(i), "id"], "OutreachStep")
                                 if s.id is not None else None) for i, s in enumerate(steps)]
        return await service.set_steps(p, cid, data)

    out, errors = await attempt(go)
    return StepsSetPayload(steps=[OutreachStep.of(s) for s in out or []], user_errors=errors)


@strawberry.mutation(description="Mark a manual step done for a recipient (records who and when). Idempotent: "
                                 "a step already done counts once and returns the recorded action.")
async def step_mark_done(self, info: Info,
                         recipient_step_id: Annotated[strawberry.ID, strawberry.argument(
                             description="The recipient step (from actionRequired or recipientSteps).")],
                         action: Annotated[StepAction, strawberry.argument(description="What was done.")]
                         ) -> StepDonePayload:
    p = ctx(info).principal

    async def go():
        pk = require_id(recipient_step_id, "recipient step", "recipientStepId", "RecipientStep")
        return await service.mark_done(p, pk, rules.StepAction(action))

    res, errors = await attempt(go)
    if res is None:
        return StepDonePayload(recipient_step=None, action=None, already_done=False, user_errors=errors)
    return StepDonePayload(recipient_step=await _rs(res.recipient_step.id), action=OutreachAction.of(res.action),
                           already_done=res.already, user_errors=[])


@strawberry.mutation(description="Undo a mark-done within 10 minutes of it.")
async def step_undo(self, info: Info, action_id: Annotated[strawberry.ID, strawberry.argument(
        description="The action (from stepMarkDone).")]) -> StepDonePayload:
    p = ctx(info).principal

    async def go():
        pk = require_id(action_id, "action", "actionId", "OutreachAction")
        return await service.undo(p, pk)

    rs, errors = await attempt(go)
    return StepDonePayload(recipient_step=await _rs(rs.id) if rs else None, action=None, already_done=False,
                           user_errors=errors)


@strawberry.mutation(description="Report outreach events (reply, RSVP, LinkedIn accepted, exit, opted out); "
                                 "idempotent by key.")
async def outreach_events_ingest(self, info: Info, events: Annotated[list[OutreachEventInput], strawberry.argument(
        description="The events (up to 1000 per call).")]) -> OutreachEventsIngestPayload:
    p = ctx(info).principal
    data = []
    for e in events:
        cid = decode_id(e.campaign_id, "Campaign")
        lid = decode_id(e.lead_id, "Lead") if e.lead_id is not None else None
        invalid = None if cid else "campaign not found"
        if e.lead_id is not None and lid is None:
            invalid = "lead not found"
        data.append(service.OutreachEventData(e.idempotency_key, rules.OutreachEventType(e.type), cid,
                                              e.occurred_at, lid, e.lead_external_id, invalid))

    res, errors = await attempt(lambda: service.ingest_events(p, data))
    if res is None:
        return OutreachEventsIngestPayload(accepted=0, duplicates=0, rejected=[], user_errors=errors)
    return OutreachEventsIngestPayload(
        accepted=res.accepted, duplicates=res.duplicates,
        rejected=[RejectedEvent(index=i, code=code, message=m) for i, code, m in res.rejected], user_errors=[])


