"""GraphQL campaigns: query fields."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from app.campaigns.service import campaigns_filtered, campaigns_query
from app.core.errors import DomainError
from graph.campaigns.inputs import CampaignFilter
from graph.campaigns.types import Campaign
from graph.core import After, Connection, First, ObjectId, ctx, decode_id, paginate


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
