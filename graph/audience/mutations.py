"""GraphQL audience: mutation fields and their payloads."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from app.audience import leads as lead_service
from graph.audience.inputs import LeadInput
from graph.audience.types import Lead
from graph.core import UserError, ctx
from graph.core.mutations import attempt, user_errors_field


@strawberry.type(description="Result of leadsUpsert.")
class LeadsUpsertPayload:
    leads: list[Lead] = strawberry.field(description="The leads, in input order (empty on failure).")
    user_errors: list[UserError] = user_errors_field()


@strawberry.mutation(description="Create or update leads by externalId (all or nothing, up to 5000).")
async def leads_upsert(self, info: Info, leads: Annotated[list[LeadInput], strawberry.argument(description="Leads to create or update.")]) -> LeadsUpsertPayload:
    p = ctx(info).principal

    async def run():
        return await lead_service.upsert_leads(p, [lead.data(i) for i, lead in enumerate(leads)])

    result, errors = await attempt(run)
    return LeadsUpsertPayload(leads=[Lead.of(m) for m in result or []], user_errors=errors)
