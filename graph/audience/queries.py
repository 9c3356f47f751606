"""GraphQL audience: query fields."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from app.audience.leads import leads_query
from app.core.errors import DomainError
from graph.audience.inputs import LeadFilter
from graph.audience.types import Lead
from graph.core import After, Connection, First, ctx, paginate


@strawberry.field(description="Leads visible to you, newest first.")
async def leads(self, info: Info, filter: Annotated[LeadFilter | None, strawberry.argument(description="Narrow the list.")] = None, first: First = 50,
                after: After = None) -> Connection[Lead]:
    p = ctx(info).principal
    try:
        flt = filter.data() if filter else None
    except DomainError:
        return await paginate(leads_query(p).filter(id=-1), first, after, Lead.of)
    return await paginate(leads_query(p, flt), first, after, Lead.of)
