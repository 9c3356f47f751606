"""GraphQL analytics: mutation fields and their payloads."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from app.analytics import service as svc
from graph.analytics.types import GoalEventInput, GoalEventsIngestPayload
from graph.core import ctx, decode_id
from graph.core.mutations import attempt
from graph.delivery.mutations import RejectedEvent


@strawberry.mutation(description="Ingest goal events (at least once, any order); attributed to campaigns by their windows.")
async def goal_events_ingest(
    self, info: Info,
    events: Annotated[list[GoalEventInput], strawberry.argument(description="The events (up to 5000 per call).")],
) -> GoalEventsIngestPayload:
    p = ctx(info).principal
    data = []
    for e in events:
        lead_id = decode_id(e.lead_id, "Lead") if e.lead_id is not None else None
        data.append(svc.GoalEventData(
            idempotency_key=e.idempotency_key, goal_type=e.goal_type, occurred_at=e.occurred_at, lead_id=lead_id,
            lead_external_id=e.lead_external_id, key=e.key, value=e.value,
            invalid="lead not found" if e.lead_id is not None and lead_id is None else None))
    settings = ctx(info).settings
    max_batch = settings.max_batch_size if settings else 5000
    result, errors = await attempt(lambda: svc.ingest_goal_events(p, data, max_batch))
    if result is None:
        return GoalEventsIngestPayload(accepted=0, duplicates=0, rejected=[], user_errors=errors)
    return GoalEventsIngestPayload(
        accepted=result.accepted, duplicates=result.duplicates,
        rejected=[RejectedEvent(index=r.index, code=r.code, message=r.message) for r in result.rejected],
        user_errors=[])
