"""GraphQL core: the relay from a hub's subscriber to a graphql-transport-ws stream (coalescing, slow consumers, direct frames)."""

from __future__ import annotations

import asyncio
import contextlib

from graphql import GraphQLError
from strawberry.types import Info

from app import metrics
from app.campaigns.service import campaigns_query
from app.tenancy.access import Principal
from graph.core import ctx, decode_id
from graph.core.execution import DirectDelivery
from models.campaigns import Campaign as CampaignModel
from models.tenancy import Organization
from subscriptions.hubs import SlowConsumer, Sub, SubscriptionClosed

SLOW_CONSUMER_CLOSE = 4008  # not fatal for graphql-ws clients: they reconnect and resume by cursor
STREAM_REPLAY_PAGE = 1000


# ---------------------------------------------------------------- relay helpers


_closing: set[asyncio.Task] = set()  # close tasks in flight: referenced until done


def close_slow_soon(info: Info) -> None:
    """Close a too-slow subscriber's socket (4008) from a task kept until it is done."""
    task = asyncio.create_task(close_slow(info))
    _closing.add(task)
    task.add_done_callback(_closing.discard)


async def close_slow(info: Info) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(ctx(info).request.close(
            code=SLOW_CONSUMER_CLOSE, reason="slow consumer: reconnect and resume with `after`"), timeout=5)


async def relay(info: Info, sub: Sub, name: str, payload=lambda item: item, first=None):
    """Yield `first` (if any), then the payload of what a hub offers to `sub` (None: skip it) until
    the client leaves or access ends; what can go straight to the socket as a ready frame does
    (graph/core/execution.py)."""
    sent = metrics.MESSAGES.labels(name)
    direct = DirectDelivery.for_current(info, sent)
    if first is not None:
        sent.inc()
        if direct is None or not await direct.send(first):
            yield first
        del first
    # While this task waits, a KPI hub may write values to the socket itself (Sub.deliver).
    deliver = direct.send_now if direct is not None and sub.latest_only else None
    while True:
        try:
            sub.deliver = deliver
            try:
                item = await sub.next()
            finally:
                sub.deliver = None
        except SubscriptionClosed as exc:
            raise GraphQLError(str(exc), extensions={"code": "NOT_FOUND" if str(exc) == "not found" else "FORBIDDEN"})
        except SlowConsumer:
            return  # the socket is being closed with SLOW_CONSUMER_CLOSE (see Sub.on_overflow)
        item = payload(item)
        if item is None:
            continue
        ctx(info).loaders.clear()  # fresh DataLoaders per message: never stale
        sent.inc()
        if direct is None or not await direct.send(item):
            yield item


async def currency_of(org_id: int) -> str:
    return (await Organization.get(id=org_id)).currency


async def visible_campaign(p: Principal, gid: str) -> CampaignModel:
    pk = decode_id(gid, "Campaign")
    campaign = await campaigns_query(p).filter(id=pk).first() if pk else None
    if campaign is None:
        raise GraphQLError("campaign not found", extensions={"code": "NOT_FOUND"})
    return campaign
