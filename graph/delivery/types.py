"""GraphQL delivery: object types."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from typing import Any, Callable

import strawberry
from strawberry.types import Info

from app.reporting import kpis
from graph.audience.types import Lead
from graph.core import Money, Node, ctx, to_global_id
from graph.core.enums import BounceType, Channel, SendEventType, SendStatus, SkipReason
from graph.core.loaders import loaders
from graph.tenancy.types import org_currency
from models import leads as ml
from models import sends as ms


@strawberry.type(description="How many sends the sender skipped for one reason.")
class SkipCount:
    reason: SkipReason = strawberry.field(description="Why they were skipped.")
    count: int = strawberry.field(description="Sends with status SKIPPED and this skipReason.")


@strawberry.type(description="Send counters and rates of a campaign, on one channel or in total.")
class ChannelMetrics:
    m: strawberry.Private[kpis.Metrics]
    currency: strawberry.Private[str]

    @strawberry.field(description="The channel; null on totals.")
    def channel(self) -> Channel | None:
        return self.m.channel

    @strawberry.field(description="Sends created for messages queued or reported (status PENDING, SENT, DELIVERED, "
                                  "FAILED or BOUNCED); skipped ones are counted in `skipped`, not here.")
    def generated(self) -> int:
        return self.m.generated

    @strawberry.field(description="Sends the built-in sender skipped (status SKIPPED): recipients it never queued a "
                                  "message for on the channel. Not in `generated`; the reasons are in skippedByReason.")
    def skipped(self) -> int:
        return self.m.skipped

    @strawberry.field(description="`skipped` per reason (only reasons that occurred, in SkipReason order); the counts "
                                  "add up to `skipped`.")
    def skipped_by_reason(self) -> list[SkipCount]:
        by = self.m.skipped_by_reason
        return [SkipCount(reason=r, count=by[r.value]) for r in SkipReason if by.get(r.value)]

    @strawberry.field(description="Sends queued and not yet accepted by the provider.")
    def pending(self) -> int:
        return self.m.pending

    @strawberry.field(description="Sends with status SENT, DELIVERED or BOUNCED (for SOCIAL: posts published).")
    def sent(self) -> int:
        return self.m.sent

    @strawberry.field(description="Sends with status DELIVERED.")
    def delivered(self) -> int:
        return self.m.delivered

    @strawberry.field(description="Sends with status FAILED.")
    def failed(self) -> int:
        return self.m.failed

    @strawberry.field(description="Sends with status BOUNCED.")
    def bounced(self) -> int:
        return self.m.bounced

    @strawberry.field(description="Sends read at any time (opened/viewed; machine opens excluded; a click counts as "
                                  "a read). Not limited to the view window, unlike stats.totals.viewed, which counts "
                                  "only reads within attribution.viewWindowHours of the send.")
    def read(self) -> int:
        return self.m.read

    @strawberry.field(description="Sends clicked at any time (stats.totals.clicked counts only clicks of reads "
                                  "within the view window).")
    def clicked(self) -> int:
        return self.m.clicked

    @strawberry.field(description="Sends replied to (for SOCIAL, part of engagement).")
    def replied(self) -> int:
        return self.m.replied

    @strawberry.field(description="Sends whose recipient unsubscribed.")
    def unsubscribed(self) -> int:
        return self.m.unsubscribed

    @strawberry.field(description="Cost of the sends accepted by providers.")
    def cost(self) -> Money:
        return Money.of(self.m.cost_micros, self.currency)

    @strawberry.field(description="Credits of the sends accepted by providers, as the send carries them (the "
                                  "channel's credits per message, or what the provider's event reported). "
                                  "Not necessarily charged to a wallet: see creditConsumption.")
    def credits(self) -> int:
        return self.m.credits

    @strawberry.field(description="bounced / sent (0 when nothing was sent).")
    def bounce_rate(self) -> float:
        return self.m.bounce_rate

    @strawberry.field(description="failed / generated (0 when nothing was generated).")
    def failure_rate(self) -> float:
        return self.m.failure_rate

    @strawberry.field(description="delivered / sent (0 when nothing was sent).")
    def delivery_rate(self) -> float:
        return self.m.delivery_rate

    @strawberry.field(description="read / delivered (0 when nothing was delivered).")
    def read_rate(self) -> float:
        return self.m.read_rate

    @strawberry.field(description="clicked / delivered (0 when nothing was delivered).")
    def click_rate(self) -> float:
        return self.m.click_rate


@strawberry.type(description="Send metrics of a campaign.")
class CampaignMetrics:
    totals: ChannelMetrics = strawberry.field(description="All channels together (`channel` is null).")
    by_channel: list[ChannelMetrics] = strawberry.field(description="One entry per configured channel.")


# ---------------------------------------------------------------- sends


@strawberry.type(description="One accepted event of a send (its history).")
class SendEvent:
    m: strawberry.Private[ms.SendEvent]
    currency: strawberry.Private[str]

    @strawberry.field(description="Event type.")
    def type(self) -> SendEventType:
        return self.m.type

    @strawberry.field(description="When it happened (as reported).")
    def occurred_at(self) -> dt.datetime:
        return self.m.occurred_at

    @strawberry.field(description="When Campaign Pulse received it.")
    def received_at(self) -> dt.datetime:
        return self.m.received_at

    @strawberry.field(description="The idempotency key it came with.")
    def idempotency_key(self) -> str:
        return self.m.idempotency_key

    @strawberry.field(description="Final cost reported with the event, if any.")
    def cost(self) -> Money | None:
        return Money.of(self.m.cost_micros, self.currency) if self.m.cost_micros is not None else None

    @strawberry.field(description="Reason reported (failures, bounces).")
    def reason(self) -> str | None:
        return self.m.reason

    @strawberry.field(description="A machine open/click (privacy proxy, scanner): stored, never counted.")
    def machine(self) -> bool:
        return self.m.machine


_new, _set = object.__new__, object.__setattr__


async def _send_recipient(root: "Send", info: Info) -> Lead | None:
    lead = root.lead_ if root.lead_ is not None else await loaders(info).lead.load(root.m.lead_id)
    return Lead.of(lead) if lead is not None and ctx(info).principal.sees_lead(lead) else None


async def _send_cost(root: "Send", info: Info) -> Money:
    return Money.of(root.m.cost_micros, root.currency_ or await org_currency(info, root.m.organization_id))


# Declared as class fields (not methods) so that the schema keeps the field order.
@strawberry.type(description="One message to one recipient on one channel (for SOCIAL, one published post).")
class Send(Node):
    m: strawberry.Private[ms.Send]
    # Prefetched by the send stream so that fan-out costs no queries.
    lead_: strawberry.Private[ml.Lead | None] = None
    currency_: strawberry.Private[str | None] = None

    recipient: Lead | None = strawberry.field(
        resolver=_send_recipient, description="The recipient; null when the lead lies outside your scope (its home "
                                              "center is not yours), exactly as `node(id)` of that lead is.")

    channel: Channel = strawberry.field(description="Channel.", default=None)
    status: SendStatus = strawberry.field(description="Delivery status.", default=None)

    cost: Money = strawberry.field(resolver=_send_cost,
                                   description="Cost, incurred once the provider accepted the message (else 0).")

    credits: int = strawberry.field(description="Credits, incurred once the provider accepted the message (else 0).", default=None)
    queued_at: dt.datetime = strawberry.field(
        description="When the message was queued (for a SKIPPED send: when the sender skipped it).", default=None)
    sent_at: dt.datetime | None = strawberry.field(description="When the provider accepted it (from the SENT event).", default=None)
    delivered_at: dt.datetime | None = strawberry.field(description="When it was delivered.", default=None)
    failed_at: dt.datetime | None = strawberry.field(description="When it failed.", default=None)
    failure_reason: str | None = strawberry.field(description="Why it failed.", default=None)
    skip_reason: SkipReason | None = strawberry.field(
        description="Why the sender skipped it (status SKIPPED only; null otherwise).", default=None)
    bounced_at: dt.datetime | None = strawberry.field(description="When it bounced.", default=None)
    bounce_type: BounceType | None = strawberry.field(description="Hard or soft bounce.", default=None)
    read_at: dt.datetime | None = strawberry.field(description="First read (machine opens excluded).", default=None)
    clicked_at: dt.datetime | None = strawberry.field(description="First click.", default=None)
    replied_at: dt.datetime | None = strawberry.field(description="First reply.", default=None)
    unsubscribed_at: dt.datetime | None = strawberry.field(description="When the recipient unsubscribed.", default=None)
    external_id: str = strawberry.field(description="Provider message id (unique per organization and channel).", default=None)

    @strawberry.field(description="Every accepted event of this send, in the order they happened.")
    async def events(self, info: Info) -> list[SendEvent]:
        currency = await org_currency(info, self.m.organization_id)
        return [SendEvent(m=e, currency=currency) for e in await loaders(info).send_events.load(self.m.id)]

    @strawberry.field(description="The campaign.")
    def campaign_id(self) -> strawberry.ID:
        return to_global_id("Campaign", self.m.campaign_id)

    @staticmethod
    def of(m: ms.Send, lead_: ml.Lead | None = None, currency_: str | None = None) -> "Send":
        # Plain values are copied once into plain fields: no resolver call per value (DESIGN.md).
        # The instance's attributes are given at once, in the dataclass's field order — exactly what
        # its generated __init__ assigns one by one (the test `test_send_objects_are_what_the_dataclass_builds`
        # compares both). node(id), the send stream and the send log filtered by recipient use it; the
        # log otherwise builds only what its selection reads (`send_builder`).
        send = _new(Send)
        _set(send, "__dict__", {
            "id": to_global_id("Send", m.id), "m": m, "lead_": lead_, "currency_": currency_, "channel": m.channel,
            "status": m.status, "credits": m.credits, "queued_at": m.queued_at, "sent_at": m.sent_at,
            "delivered_at": m.delivered_at, "failed_at": m.failed_at, "failure_reason": m.failure_reason,
            "skip_reason": m.skip_reason, "bounced_at": m.bounced_at, "bounce_type": m.bounce_type,
            "read_at": m.read_at, "clicked_at": m.clicked_at, "replied_at": m.replied_at,
            "unsubscribed_at": m.unsubscribed_at, "external_id": m.external_id})
        return send

    @staticmethod
    def built(m: ms.Send, **private) -> "Send":
        """`of` through the dataclass's own __init__ (the reference `of` is tested against)."""
        return Send(id=to_global_id("Send", m.id), m=m, channel=m.channel, status=m.status, credits=m.credits, queued_at=m.queued_at, sent_at=m.sent_at, delivered_at=m.delivered_at, failed_at=m.failed_at, failure_reason=m.failure_reason, skip_reason=m.skip_reason, bounced_at=m.bounced_at, bounce_type=m.bounce_type, read_at=m.read_at, clicked_at=m.clicked_at, replied_at=m.replied_at, unsubscribed_at=m.unsubscribed_at, external_id=m.external_id, **private)


# ---------------------------------------------------------------- the send log's partial reads

# The attributes of a send's row (models.sends.Send) each field of Send reads — through its resolver
# (recipient: `m.lead_id`; cost: `m.cost_micros`, `m.organization_id`; events; campaignId) or as the
# plain value `Send.of` copies — besides `id` and `campaign_id`, which every row of the send log holds
# (SEND_ROW_ALWAYS: the cursor, the global id, events' key, the grouping of pages by campaign). A log
# whose nodes select only these fields reads only those columns into `db.partial_row_type` rows
# (graph/campaigns/types.py `sends_shape`) and builds its Send objects with only the selected plain
# values (`send_builder`). A resolver changed to read another attribute must say so here: a missing
# one raises AttributeError — an error in the answer, never a wrong value
# (tests/campaigns/test_partial_sends.py checks every field alone against the full rows' answer, and
# that dropping any attribute of an entry changes that answer).
SEND_NEEDS: dict[str, tuple[str, ...]] = {
    "__typename": (), "id": (), "recipient": ("lead_id",), "channel": ("channel",), "status": ("status",),
    "cost": ("cost_micros", "organization_id"), "credits": ("credits",), "queuedAt": ("queued_at",),
    "sentAt": ("sent_at",), "deliveredAt": ("delivered_at",), "failedAt": ("failed_at",),
    "failureReason": ("failure_reason",), "skipReason": ("skip_reason",), "bouncedAt": ("bounced_at",),
    "bounceType": ("bounce_type",), "readAt": ("read_at",), "clickedAt": ("clicked_at",),
    "repliedAt": ("replied_at",), "unsubscribedAt": ("unsubscribed_at",), "externalId": ("external_id",),
    "events": ("organization_id",), "campaignId": ("campaign_id",)}
SEND_ROW_ALWAYS = ("id", "campaign_id")


@functools.cache
def send_plain_fields() -> dict[str, str]:
    """Send's plain fields (no resolver: a value `Send.of` sets), GraphQL name -> attribute name
    (`id` is the global id, the others the row's attribute of the same name)."""
    from strawberry.types.private import is_private
    from strawberry.utils.str_converters import to_camel_case

    return {f.graphql_name or to_camel_case(f.python_name): f.python_name
            for f in Send.__strawberry_definition__.fields
            if f.base_resolver is None and not (f.type_annotation and is_private(f.type_annotation.annotation))}


@functools.lru_cache(maxsize=256)
def send_builder(attributes: tuple[str, ...]) -> Callable[[Any], Send]:
    """`Send.of(m)` (no prefetched recipient or currency) setting only these plain attributes of the
    object (`send_plain_fields` values; `m`, `lead_`, `currency_` always): the send log's builder when
    its selection reads only those plain fields (graph/campaigns/types.py `sends_shape`). Generated
    once per set as straight-line code, the attributes in the dataclass's field order with the values
    `Send.of` gives them (test_send_objects_are_what_the_dataclass_builds compares with `Send.built`).

    The plain attributes left out are not in the object (a read finds the class's default, None, or
    for `id` nothing): only the GraphQL selection the set was made from reads these objects — they
    are built for that one `sends` field and reachable only through its connection — and it reads
    only the fields it selects (test_partial_sends proves no other is read, with objects that raise
    on any other)."""
    plain = set(send_plain_fields().values())
    wanted = set(attributes)
    if not wanted <= plain:
        raise ValueError(f"not plain fields of Send: {sorted(wanted - plain)}")
    items = []
    for f in dataclasses.fields(Send):
        if not f.init:
            continue
        name = f.name
        if name == "id":
            if "id" in wanted:
                items.append("'id': gid('Send', m.id)")
        elif name == "m":
            items.append("'m': m")
        elif name in ("lead_", "currency_"):
            items.append(f"{name!r}: None")
        elif name in wanted:
            items.append(f"{name!r}: m.{name}")
    env = {"new": _new, "setdict": _set, "cls": Send, "gid": to_global_id}
    code = ("def of(m):\n    send = new(cls)\n    setdict(send, '__dict__', {" + ", ".join(items) + "})\n"
            "    return send")
    exec(code, env)  # noqa: S102 — generated from the dataclass's own field names only
    return env["of"]


@strawberry.input(description="Filter of a campaign's send log.")
class SendFilter:
    channel: Channel | None = strawberry.field(default=None, description="Only this channel.")
    status: SendStatus | None = strawberry.field(default=None, description="Only this status.")
    recipient: str | None = strawberry.field(
        default=None, description="Text matched against the recipient's name, email and phone.")
