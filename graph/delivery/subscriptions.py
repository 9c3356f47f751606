"""GraphQL delivery: subscription fields."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Annotated, AsyncGenerator

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from app import metrics
from app.campaigns.service import campaign_unit
from app.tenancy.access import Principal
from graph.core import ctx, from_global_id
from graph.core.enums import Channel, SendStatus
from graph.core.execution import SharedPayload
from graph.core.realtime import (
    STREAM_REPLAY_PAGE,
    close_slow_soon,
    currency_of,
    relay,
    visible_campaign,
)
from graph.core.resume import later_cursor
from graph.delivery.types import Send
from models import sends as ms
from models.leads import Lead as LeadModel
from subscriptions.hubs import StreamHub, Sub, get_registry


@strawberry.type(description="A change of one send's status or engagement.")
class SendStatusEvent(SharedPayload):
    change: strawberry.Private[ms.SendChange]
    send_: strawberry.Private[ms.Send]
    lead: strawberry.Private[LeadModel | None]
    currency: strawberry.Private[str]

    @strawberry.field(description="Pass it as `after` when reconnecting to miss nothing.")
    def cursor(self) -> str:
        return encode_change_cursor(self.change.id)

    @strawberry.field(description="The send's status right after this change.")
    def status(self) -> SendStatus:
        return self.change.status

    @strawberry.field(description="Channel of the send.")
    def channel(self) -> Channel:
        return self.change.channel

    @strawberry.field(description="When the change was recorded.")
    def changed_at(self) -> dt.datetime:
        return self.change.created_at

    @strawberry.field(description="The send as it is now.")
    def send(self) -> Send:
        return Send.of(self.send_, lead_=self.lead, currency_=self.currency)


def encode_change_cursor(change_id: int) -> str:
    return base64.b64encode(f"SendChange:{change_id}".encode()).decode()


def decode_change_cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    parsed = from_global_id(cursor)
    if parsed is None or parsed[0] != "SendChange":
        raise GraphQLError("invalid cursor", extensions={"code": "BAD_USER_INPUT"})
    return parsed[1]


@strawberry.input(description="Filter of the send-status stream.")
class SendStreamFilter:
    channel: Channel | None = strawberry.field(default=None, description="Only this channel.")
    status: SendStatus | None = strawberry.field(default=None, description="Only changes to this status.")


@strawberry.subscription(description="Every send status or engagement change of a campaign. With `after` (a "
                                     "cursor from an earlier message) it first replays what you missed.")
async def send_status_changed(
    self, info: Info,
    campaign_id: Annotated[strawberry.ID, strawberry.argument(description="The campaign.")],
    filter: Annotated[SendStreamFilter | None, strawberry.argument(description="Narrow the stream.")] = None,
    after: Annotated[str | None, strawberry.argument(description="Resume after this cursor.")] = None,
    resume_key: Annotated[str | None, strawberry.argument(description=(
        "Key of this stream in the `resume` map of the connection_init payload (default: `campaignId`). "
        "A client that sends `{\"resume\": {key: lastCursor}}` on every connect resumes after its last "
        "cursor when it resubscribes with its original variables (docs/api.md, \"Surviving restarts\")."))] = None,
) -> AsyncGenerator[SendStatusEvent, None]:
    p = ctx(info).principal
    campaign = await visible_campaign(p, campaign_id)
    cid, org_id, campaign_at = campaign.id, campaign.organization_id, campaign_unit(campaign)
    del campaign  # only what is needed is kept for the subscription's life
    after_id = decode_change_cursor(later_cursor(info, resume_key or campaign_id, after))
    currency = await currency_of(org_id)
    channel = filter.channel if filter else None
    status = filter.status if filter else None

    async def fetch(last: int, upto: int | None = None, limit: int = STREAM_REPLAY_PAGE) -> list:
        qs = ms.SendChange.filter(campaign_id=cid, id__gt=last)
        if upto is not None:
            qs = qs.filter(id__lte=upto)
        changes = await qs.order_by("id").limit(limit)
        if not changes:
            return changes  # nothing new (a reconciliation check costs this one query)
        sends = {s.id: s for s in await ms.Send.filter(id__in=list({c.send_id for c in changes}))}
        leads = {lead.id: lead for lead in await LeadModel.filter(id__in=list({s.lead_id for s in sends.values()}))}
        for c in changes:
            send = sends.get(c.send_id)
            # One event object for every subscriber (see graph/core/execution.py).
            c.payload = SendStatusEvent(change=c, send_=send, lead=leads.get(send.lead_id) if send else None,
                                        currency=currency)
        return changes

    async def head() -> int:
        last = await ms.SendChange.filter(campaign_id=cid).order_by("-id").first()
        return last.id if last else 0

    def accept(change) -> bool:
        return (channel is None or change.channel == channel) and (status is None or change.status == status)

    def allowed(principal: Principal, _change) -> bool:
        return principal.org_id == org_id and principal.scope.contains(campaign_at)

    async def make():
        return StreamHub(get_registry(), ("sends", cid), org_id, fetch, await head(), allowed,
                         lambda message: message.get("campaignId") == cid and message.get("what") == "sends")

    sub = Sub(p, latest_only=False, limit=get_registry().stream_limit, accept=accept)
    sub.on_overflow = lambda: close_slow_soon(info)
    hub = await get_registry().join(("sends", cid), org_id, make, sub)
    try:
        position = after_id
        if after_id is not None:
            upto = hub.head  # live items beyond this are already queued for us
            while position < upto:
                page = await fetch(position, upto)
                if not page:
                    break
                for change in page:
                    if accept(change):
                        metrics.MESSAGES.labels("sendStatusChanged").inc()
                        yield change.payload
                position = page[-1].id
        def live(change):  # what the replay above already gave is skipped
            return None if position is not None and change.id <= position else change.payload

        async for event in relay(info, sub, "sendStatusChanged", live):
            yield event
    finally:
        await get_registry().leave(hub, sub)
