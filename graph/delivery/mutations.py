"""GraphQL delivery: mutation fields and their payloads."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from app.delivery import ingest as ingest_service
from app.delivery.ingest import SendEventData
from graph.core import ErrorCode, UserError, ctx, decode_id
from graph.core.mutations import attempt, user_errors_field
from graph.delivery.inputs import SendEventInput


@strawberry.type(description="Why one event of a batch was rejected.")
class RejectedEvent:
    index: int = strawberry.field(description="Position of the event in the batch (0-based).")
    code: ErrorCode = strawberry.field(description="Machine-readable reason.")
    message: str = strawberry.field(description="Human-readable reason.")


@strawberry.type(description="Result of sendEventsIngest.")
class SendEventsIngestPayload:
    accepted: int = strawberry.field(description="Events applied (new idempotency keys).")
    duplicates: int = strawberry.field(description="Events whose key and payload were already received: no effect.")
    rejected: list[RejectedEvent] = strawberry.field(description="Events refused, with the reason.")
    user_errors: list[UserError] = user_errors_field()


@strawberry.mutation(description="Ingest a batch of send events (at least once, any order). Repeated keys are "
                                 "duplicates; each event is accepted, a duplicate, or rejected with a reason.")
async def send_events_ingest(self, info: Info, events: Annotated[list[SendEventInput], strawberry.argument(description="The events (up to 5000 per call).")]) -> SendEventsIngestPayload:
    p = ctx(info).principal
    data = []
    for e in events:
        invalid = None
        campaign_id = lead_id = None
        if e.campaign_id is not None:
            campaign_id = decode_id(e.campaign_id, "Campaign")
            invalid = None if campaign_id else "campaign not found"
        if e.lead_id is not None and invalid is None:
            lead_id = decode_id(e.lead_id, "Lead")
            invalid = None if lead_id else "lead not found"
        data.append(SendEventData(
            idempotency_key=e.idempotency_key, external_id=e.external_id, channel=e.channel, type=e.type,
            occurred_at=e.occurred_at, campaign_id=campaign_id, lead_id=lead_id,
            lead_external_id=e.lead_external_id, cost=e.cost, credits=e.credits, reason=e.reason,
            machine=e.machine, url=e.url, bounce_type=e.bounce_type, invalid=invalid))
    settings = ctx(info).settings
    max_batch = settings.max_batch_size if settings else 5000
    result, errors = await attempt(lambda: ingest_service.ingest_send_events(p, data, max_batch))
    if result is None:
        return SendEventsIngestPayload(accepted=0, duplicates=0, rejected=[], user_errors=errors)
    return SendEventsIngestPayload(
        accepted=result.accepted, duplicates=result.duplicates,
        rejected=[RejectedEvent(index=r.index, code=r.code, message=r.message) for r in result.rejected],
        user_errors=[])
