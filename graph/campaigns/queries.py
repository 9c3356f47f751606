"""GraphQL campaigns: query fields."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from app.campaigns.service import campaigns_filtered, campaigns_query, visible_campaign, visible_campaigns_page
from app.core.errors import DomainError
from app.reporting import kpis
from graph.campaigns.inputs import CampaignFilter
from graph.campaigns.types import Campaign, attach_totals, list_shape, prefetch_metrics
from graph.core.cache import note_campaigns, note_untracked
from graph.core import (After, Connection, First, ObjectId, check_first, ctx, decode_cursor, decode_id, page_of,
                        paginate, selects)


@strawberry.field(description="Campaigns visible to you, newest first.")
async def campaigns(self, info: Info, filter: Annotated[CampaignFilter | None, strawberry.argument(description="Narrow the list.")] = None, first: First = 50,
                    after: After = None) -> Connection[Campaign]:
    p = ctx(info).principal
    if filter is None:  # the common list: one fixed statement, the count only when asked for
        first = check_first(first)
        after_id = decode_cursor(after)
        shape = list_shape(info)
        totals = None
        if not first:
            rows = []
        elif shape.totals_only:  # the page and its metrics totals in one statement
            rows, totals = await kpis.campaigns_page_with_totals(p, first + 1, after_id, names=shape.names,
                                                                  skips=shape.skips)
        else:
            rows = await visible_campaigns_page(p, first + 1, after_id, names=shape.names)
        connection = page_of(rows, first, after_id, Campaign.of, lambda: campaigns_query(p).count())
        # The page's campaigns; the row past the page only tells hasNextPage: membership and order (ids
        # and scope) move with the organization's version F only (campaign creation and deletion).
        note_campaigns(info, (r.id for r in rows[:first]))
        if totals is not None:
            await attach_totals(info, connection.nodes, totals)
            return connection
    else:
        note_untracked(info)  # membership depends on the campaigns' fields
        try:
            qs = await campaigns_filtered(p, filter.data())
        except DomainError:
            qs = campaigns_query(p).filter(id=-1)  # a foreign owner unit: nothing
        connection = await paginate(qs, first, after, Campaign.of)
    if connection.edges and selects(info, "edges", "node", "metrics"):
        await prefetch_metrics(info, connection.nodes)
    return connection


@strawberry.field(description="One campaign (null when missing or not visible).")
async def campaign(self, info: Info, id: ObjectId) -> Campaign | None:
    pk = decode_id(id, "Campaign")
    if pk is None:
        return None
    note_campaigns(info, (pk,))
    m = await visible_campaign(ctx(info).principal, pk)
    return Campaign.of(m) if m else None
