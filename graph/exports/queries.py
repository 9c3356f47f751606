"""`exports`: the download history."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from app.exports import service
from graph.core import After, Connection, First, ctx, decode_id, paginate
from graph.exports.types import Export


async def load_export(principal, pk: int) -> Export | None:
    found = await service.history_query(principal).filter(id=pk).first()
    return Export.of(found) if found else None


@strawberry.field(description="Download history, newest first: every export request and its outcome (refused "
                              "ones included). Owners see their organization's; members with the export right "
                              "the exports of campaigns in their scope and their own; others their own.")
async def exports(self, info: Info, campaign_id: Annotated[strawberry.ID | None, strawberry.argument(
        description="Only this campaign's exports.")] = None, first: First = 50,
        after: After = None) -> Connection[Export]:
    qs = service.history_query(ctx(info).principal)
    if campaign_id is not None:
        qs = qs.filter(campaign_id=decode_id(campaign_id, "Campaign") or -1)
    return await paginate(qs, first, after, Export.of)
