"""GraphQL campaigns: object types."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Any, Awaitable, Callable

import strawberry
from strawberry.types import Info

from app.reporting import kpis
from graph.analytics.types import (
    CampaignAnalytics,
    CampaignStats,
    Funnel,
    Lift,
    StatsPeriod,
    campaign_analytics,
    campaign_funnel,
    campaign_lift,
    campaign_stats,
)
from graph.billing.types import Budget
from graph.core import (After, Connection, First, Money, Node, check_first, decode_cursor, node_type, page_of,
                        plain_when, to_global_id)
from graph.core.enums import CampaignStatus, CampaignType, Channel, GoalType, StatusReason
from graph.core.loaders import loaders
from graph.delivery.types import (SEND_NEEDS, SEND_ROW_ALWAYS, CampaignMetrics, ChannelMetrics, Send, SendFilter,
                                  send_builder, send_plain_fields)
from graph.reporting.types import Insight
from graph.tenancy.types import OrgUnit, org_currency, org_unit
from models import campaigns as mc
from models.enums import UnitKind as UK

# ---------------------------------------------------------------- campaigns


@strawberry.type(description="The built-in sender's queue of one campaign (send jobs not yet queued).")
class SendQueue:
    ready: int = strawberry.field(description="Messages (recipient × channel) waiting to be queued by the sender: "
                                              "send jobs in state READY. 0 for channels an integrator sends.")
    oldest_ready_at: dt.datetime | None = strawberry.field(
        description="When the oldest of them was created (launch, or the recipient's addition); null when ready is 0. "
                    "Its age is how long the campaign has waited for the sender.")


@strawberry.type(description="A channel configured on a campaign.")
class CampaignChannel:
    m: strawberry.Private[mc.CampaignChannel]
    currency: strawberry.Private[str]

    @strawberry.field(description="The channel.")
    def channel(self) -> Channel:
        return self.m.channel

    @strawberry.field(description="Whether messages go out on this channel.")
    def enabled(self) -> bool:
        return self.m.enabled

    @strawberry.field(description="Default cost of one message.")
    def unit_cost(self) -> Money:
        return Money.of(self.m.unit_cost_micros, self.currency)

    @strawberry.field(description="Credits one message consumes.")
    def credits_per_message(self) -> int:
        return self.m.credits_per_message

    @strawberry.field(description="Name of the provider that sends the messages.")
    def provider(self) -> str:
        return self.m.provider


@strawberry.type(description="Goal of a campaign.")
class Goal:
    type: GoalType = strawberry.field(description="Goal type.")
    key: str | None = strawberry.field(description="Names the goal events that count (null: any of the type).")


@strawberry.type(description="Attribution windows of a campaign, in hours.")
class Attribution:
    view_window_hours: int = strawberry.field(description="A read counts within this many hours of the send.")
    goal_window_hours: int = strawberry.field(description="A goal counts within this many hours of the send.")
    goal_after_view_window_hours: int = strawberry.field(
        description="A goal counts within this many hours after a read.")


# ---------------------------------------------------------------- outreach fields

# graph.outreach sits above graph.campaigns (import-linter layers): it registers here the
# resolvers of Campaign.steps and Campaign.kpis when graph.outreach.types is imported (which
# the lazy annotations below do when the schema is built). Keys: "steps", "kpis".
CampaignFieldResolver = Callable[[Info, mc.Campaign], Awaitable[Any]]
outreach_fields: dict[str, CampaignFieldResolver] = {}


def register_campaign_field(name: str, resolver: CampaignFieldResolver) -> None:
    """Called by a higher graph package to serve a Campaign field it owns the type of."""
    outreach_fields[name] = resolver


# ---------------------------------------------------------------- campaign


def _missing():
    raise LookupError("not prefetched")


def _campaign_metrics(data: kpis.CampaignMetrics, currency: str) -> CampaignMetrics:
    # The objects' attributes set directly, in their dataclasses' field order — what their __init__
    # assigns (`_campaign_metrics_built`; test_metrics_objects_are_what_the_dataclasses_build), without
    # its keyword handling.
    # by_channel None: only the totals were read (attach_totals) — the list's selection has no
    # byChannel (list_shape); were it completed all the same, the null in a non-null field would be
    # an error in the answer, never a silent empty list.
    totals = _new(ChannelMetrics)
    totals.m = data.totals
    totals.currency = currency
    if data.by_channel is None:
        by_channel = None
    else:
        by_channel = []
        for x in data.by_channel:
            one = _new(ChannelMetrics)
            one.m = x
            one.currency = currency
            by_channel.append(one)
    metrics = _new(CampaignMetrics)
    metrics.totals = totals
    metrics.by_channel = by_channel
    return metrics


def _campaign_metrics_built(data: kpis.CampaignMetrics, currency: str) -> CampaignMetrics:
    """`_campaign_metrics` through the dataclasses' own __init__ (the reference it is tested against)."""
    return CampaignMetrics(totals=ChannelMetrics(m=data.totals, currency=currency),
                           by_channel=None if data.by_channel is None else
                           [ChannelMetrics(m=x, currency=currency) for x in data.by_channel])


async def prefetch_metrics(info: Info, campaigns: list["Campaign"]) -> None:
    """Read the metrics of a page of campaigns in one batch before their fields resolve (the list
    resolver calls this when the operation selects `metrics` under its nodes): each campaign's
    `metrics` is then answered synchronously. The same loader and values as one by one."""
    if not campaigns:
        return
    found = await loaders(info).metrics.load_many([c.m.id for c in campaigns])
    currencies = {org: await org_currency(info, org) for org in {c.m.organization_id for c in campaigns}}
    for campaign, data in zip(campaigns, found):
        campaign.metrics_ = (data, currencies[campaign.m.organization_id])


async def attach_totals(info: Info, campaigns: list["Campaign"], found: dict[int, kpis.CampaignMetrics]) -> None:
    """Give a page of campaigns the metrics totals read with the page (`kpis.campaigns_page_with_totals`,
    when `list_shape` says the selection reads only `metrics.totals`): each `metrics` then answers
    synchronously, as after `prefetch_metrics`."""
    currencies: dict[int, str] = {}
    for campaign in campaigns:
        org = campaign.m.organization_id
        currency = currencies.get(org)
        if currency is None:
            currency = currencies[org] = await org_currency(info, org)
        campaign.metrics_ = (found[campaign.m.id], currency)


# Fields of Campaign whose resolvers read only attributes of `m` (or pass its ids to loaders), and
# the attributes each reads: a list whose nodes select nothing else holds `db.partial_row_type` rows of
# those attributes (and `id`, `organization_id`: the list and the metrics read them) instead of models
# (list_shape). A resolver changed to read another attribute must say so here (a missing one raises
# AttributeError: an error in the answer, never a wrong value; test_list_totals checks every field
# alone against the models' answer).
LIGHT_FIELDS: dict[str, tuple[str, ...]] = {
    "__typename": (), "id": (), "name": ("name",), "description": ("description",), "type": ("type",),
    "status": ("status",), "statusReason": ("status_reason",), "audienceSize": ("audience_size",),
    "reach": ("reach",), "controlSize": ("control_size",), "controlGroupPercent": ("control_group_percent",),
    "goal": ("goal_type", "goal_key"),
    "attribution": ("view_window_hours", "goal_window_hours", "goal_after_view_window_hours"),
    "startAt": ("start_at",), "endAt": ("end_at",), "createdAt": ("created_at",), "updatedAt": ("updated_at",),
    "launchedAt": ("launched_at",), "clonedFromId": ("cloned_from_id",), "metrics": (),
    "createdFrom": ("owner_kind", "zone_id", "center_id"), "channels": (), "sendQueue": (), "sends": ()}
_ALWAYS = ("id", "organization_id")


@dataclass(frozen=True)
class ListShape:
    """What the selection of a `campaigns` field needs from its page (`list_shape`)."""
    metrics: bool  # edges.node.metrics is selected
    totals_only: bool  # … and not its byChannel: the totals can be summed in SQL with the page
    skips: bool  # … and metrics.totals.skippedByReason is selected
    names: tuple[str, ...] | None  # the nodes select only LIGHT_FIELDS: the attributes they read (else None)


_SHAPES: dict = {}  # (shape function, ids of the field's nodes) -> (the nodes, its shape)


def _shape(info: Info, compute: Callable[[Any], Any]):
    """`compute(raw info)` for the current field, kept per field nodes: a shape depends on the
    document only (its nodes; the fragments are the same document's)."""
    raw = info._raw_info
    nodes = raw.field_nodes
    key = (compute, *map(id, nodes))
    found = _SHAPES.get(key)
    if found is not None and len(found[0]) == len(nodes) and all(a is b for a, b in zip(found[0], nodes)):
        return found[1]
    shape = compute(raw)
    if len(_SHAPES) >= 1024:
        _SHAPES.clear()
    _SHAPES[key] = (tuple(nodes), shape)
    return shape


def _fields(raw, sets: list) -> list:
    """Every field node at the level of these selection sets (through fragments, named and inline).
    Directives are not evaluated: a field under @skip/@include counts as selected — a shape may
    only read wider than needed, never narrower."""
    from graphql import FieldNode, FragmentSpreadNode

    fragments = raw.fragments
    out, stack = [], list(sets)
    while stack:
        for selection in stack.pop().selections:
            if isinstance(selection, FieldNode):
                out.append(selection)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = fragments.get(selection.name.value)
                definition = getattr(fragment, "definition", fragment)  # graphql-core 3.3: FragmentDetails
                if definition is not None:
                    stack.append(definition.selection_set)
            else:  # an inline fragment
                stack.append(selection.selection_set)
    return out


def _under(raw, sets: list, name: str) -> list:
    """The selection sets of the fields `name` (under any alias) at the level of `sets`."""
    return [f.selection_set for f in _fields(raw, sets) if f.name.value == name and f.selection_set is not None]


def _node_sets(raw) -> list:
    """The selection sets of `edges { node { … } }` under the current (connection) field."""
    top = [n.selection_set for n in raw.field_nodes if n.selection_set is not None]
    return _under(raw, _under(raw, top, "edges"), "node")


def list_shape(info: Info) -> ListShape:
    """The `ListShape` of the current `campaigns` field, from its selection through fragments (named
    and inline) and aliases (directives counted as selected: `_fields`), kept per field nodes."""
    return _shape(info, _list_shape)


def _list_shape(raw) -> ListShape:
    node_sets = _node_sets(raw)
    names = {f.name.value for f in _fields(raw, node_sets)}
    metrics_sets = _under(raw, node_sets, "metrics")
    metrics = "metrics" in names
    by_channel = any(f.name.value == "byChannel" for f in _fields(raw, metrics_sets))
    skips = any(f.name.value == "skippedByReason" for f in _fields(raw, _under(raw, metrics_sets, "totals")))
    light = None
    if names <= LIGHT_FIELDS.keys():
        light = tuple(dict.fromkeys((*_ALWAYS, *(a for n in sorted(names) for a in LIGHT_FIELDS[n]))))
    return ListShape(metrics=metrics, totals_only=metrics and not by_channel, skips=skips, names=light)


@dataclass(frozen=True)
class SendsShape:
    """What the selection of a `sends` field reads of its sends (`sends_shape`), when its nodes select
    only fields of `SEND_NEEDS`."""
    names: tuple[str, ...]  # the row attributes to read: SEND_ROW_ALWAYS and the fields' needs
    attributes: tuple[str, ...]  # the plain attributes of Send the fields read (`send_builder`)


def sends_shape(info: Info) -> SendsShape | None:
    """The `SendsShape` of the current `sends` field (None: a node field without known needs — the
    log reads full rows and builds `Send.of`), from its selection through fragments and aliases
    (directives counted as selected: `_fields`), kept per field nodes."""
    return _shape(info, _sends_shape)


def _sends_shape(raw) -> SendsShape | None:
    selected = {f.name.value for f in _fields(raw, _node_sets(raw))}
    if not selected <= SEND_NEEDS.keys():
        return None
    plain = send_plain_fields()
    names = tuple(dict.fromkeys((*SEND_ROW_ALWAYS, *(a for n in sorted(selected) for a in SEND_NEEDS[n]))))
    return SendsShape(names=names, attributes=tuple(sorted(plain[n] for n in selected if n in plain)))


@node_type("Campaign")
@strawberry.type(description="A marketing campaign.")
class Campaign(Node):
    m: strawberry.Private[mc.Campaign]
    # (kpis.CampaignMetrics, currency), when read for a whole page at once (prefetch_metrics).
    metrics_: strawberry.Private[tuple | None] = None

    @strawberry.field(description="Name.")
    def name(self) -> str:
        return self.m.name

    @strawberry.field(description="Description.")
    def description(self) -> str:
        return self.m.description

    @strawberry.field(description="SCHEDULED or ALWAYS_ON.")
    def type(self) -> CampaignType:
        return self.m.type

    @strawberry.field(description="Lifecycle status.")
    def status(self) -> CampaignStatus:
        return self.m.status

    @strawberry.field(description="Why the campaign is paused (null unless PAUSED).")
    def status_reason(self) -> StatusReason | None:
        return self.m.status_reason

    @strawberry.field(description="The owner unit: organization, zone or center.")
    async def created_from(self, info: Info) -> OrgUnit:
        return await org_unit(info, UK(self.m.owner_kind), self.m.organization_id, self.m.zone_id, self.m.center_id)

    @strawberry.field(description="Channels configured on the campaign.")
    async def channels(self, info: Info) -> list[CampaignChannel]:
        currency = await org_currency(info, self.m.organization_id)
        return [CampaignChannel(m=c, currency=currency) for c in await loaders(info).channels.load(self.m.id)]

    @strawberry.field(description="Recipients (resolved at launch; before launch, the current audience's size).")
    def audience_size(self) -> int:
        return self.m.audience_size

    @strawberry.field(description="Treatment recipients (the ones messaged).")
    def reach(self) -> int:
        return self.m.reach

    @strawberry.field(description="Recipients held out as control group.")
    def control_size(self) -> int:
        return self.m.control_size

    @strawberry.field(description="Share of recipients held out as control (0–50).")
    def control_group_percent(self) -> int:
        return self.m.control_group_percent

    @strawberry.field(description="Goal of the campaign.")
    def goal(self) -> Goal | None:
        return Goal(type=self.m.goal_type, key=self.m.goal_key) if self.m.goal_type else None

    @strawberry.field(description="Attribution windows.")
    def attribution(self) -> Attribution:
        return Attribution(view_window_hours=self.m.view_window_hours, goal_window_hours=self.m.goal_window_hours,
                           goal_after_view_window_hours=self.m.goal_after_view_window_hours)

    @strawberry.field(description="Scheduled start.")
    def start_at(self) -> dt.datetime | None:
        return self.m.start_at

    @strawberry.field(description="Scheduled end.")
    def end_at(self) -> dt.datetime | None:
        return self.m.end_at

    @strawberry.field(description="When the campaign was created.")
    def created_at(self) -> dt.datetime:
        return self.m.created_at

    @strawberry.field(description="When the campaign itself last changed: a setting (campaignUpdate, audienceSet), "
                                  "or its status (launch, pause, resume, complete, cancel — by a person or by the "
                                  "system). Sends, events and spend do not move it.")
    def updated_at(self) -> dt.datetime:
        return self.m.updated_at

    @strawberry.field(description="When the campaign was launched.")
    def launched_at(self) -> dt.datetime | None:
        return self.m.launched_at

    @strawberry.field(description="The campaign this one was cloned from.")
    def cloned_from_id(self) -> strawberry.ID | None:
        return to_global_id("Campaign", self.m.cloned_from_id) if self.m.cloned_from_id else None

    @strawberry.field(description="Send counters and rates, in total and per channel.")
    @plain_when(lambda self: _campaign_metrics(*self.metrics_) if self.metrics_ is not None else _missing())
    def metrics(self, info: Info) -> CampaignMetrics:
        # Synchronous when the list that holds this campaign read them already (prefetch_metrics):
        # no coroutine, loader future and awaiting per campaign of a page.
        if self.metrics_ is not None:
            return _campaign_metrics(*self.metrics_)
        return self._metrics(info)

    async def _metrics(self, info: Info) -> CampaignMetrics:
        currency = await org_currency(info, self.m.organization_id)
        return _campaign_metrics(await loaders(info).metrics.load(self.m.id), currency)

    @strawberry.field(description="Budget tab: allocated, spent, remaining, utilization, costs, spend entries.")
    async def budget(self, info: Info) -> Budget:
        return Budget(campaign=self.m, currency=await org_currency(info, self.m.organization_id))

    @strawberry.field(description="Computed hints (high failure rate, low reach, budget nearly spent, zero sends).")
    async def insights(self, info: Info) -> list[Insight]:
        ld = loaders(info)
        metrics = await ld.metrics.load(self.m.id)
        channels = await ld.channels.load(self.m.id)
        totals = await ld.lead_totals.load(self.m.organization_id)
        found = kpis.insights(self.m, metrics, [c.channel for c in channels if c.enabled],
                              totals.get(kpis.unit_key(self.m), 0))
        return [Insight(code=i.code, severity=i.severity, channel=i.channel, message=i.message) for i in found]

    @strawberry.field(description="The built-in sender's queue for this campaign: messages waiting to be queued "
                                  "and since when (a LIVE campaign with ready > 0 gets a share of every round).")
    async def send_queue(self, info: Info) -> SendQueue:
        ready, oldest = await loaders(info).send_queue.load(self.m.id)
        return SendQueue(ready=ready, oldest_ready_at=oldest)

    @strawberry.field(description="The send log, newest first. Includes sends the sender skipped (status SKIPPED, "
                                  "with skipReason); filter with `status: SKIPPED` to list only those.")
    async def sends(self, info: Info, filter: Annotated[SendFilter | None, strawberry.argument(description="Narrow the log.")] = None, first: First = 50,
                    after: After = None) -> Connection[Send]:
        # Batched across every campaign of the request (a DataLoader): a list of campaigns with their
        # sends costs the same few statements whatever its length.
        first = check_first(first)
        after_id = decode_cursor(after)
        match = (filter.channel if filter else None, filter.status if filter else None,
                 filter.recipient.strip() if filter and filter.recipient and filter.recipient.strip() else None)
        ld = loaders(info)
        # A selection of fields with known needs (and no recipient filter: that path reads models)
        # reads only their columns and builds its Send objects with only what it reads (sends_shape).
        shape = sends_shape(info) if match[2] is None else None
        names, convert = (None, Send.of) if shape is None else (shape.names, send_builder(shape.attributes))
        rows = await ld.send_pages.load((self.m.id, first + 1, after_id, *match, names)) if first else []
        return page_of(rows, first, after_id, convert, lambda: ld.send_counts.load((self.m.id, *match)))

    @strawberry.field(description="Sent, viewed, clicked and goals: totals, per day and per recipient, for a preset "
                                  "period or a custom range (organization time zone).")
    async def stats(
        self,
        period: Annotated[StatsPeriod | None,
                          strawberry.argument(description="Preset period (default LIFETIME).")] = None,
        date_from: Annotated[dt.date | None, strawberry.argument(name="from", description="Custom range: first day.")] = None,
        date_to: Annotated[dt.date | None, strawberry.argument(name="to", description="Custom range: last day.")] = None,
    ) -> CampaignStats:
        return await campaign_stats(self.m, period, date_from, date_to)

    @strawberry.field(description="Prospects → exposures → engagements → conversions (or goals reached).")
    async def funnel(self) -> Funnel:
        return await campaign_funnel(self.m)

    @strawberry.field(description="Control-group lift: conversion rates, AOV, baseline, incremental revenue and conversions.")
    async def lift(self) -> Lift:
        return await campaign_lift(self.m)

    @strawberry.field(description="Comparisons over time: conversion rate vs peers, revenue, other goals reached.")
    async def analytics(self) -> CampaignAnalytics:
        return await campaign_analytics(self.m)

    @strawberry.field(description="The campaign's outreach sequence: its ordered steps (empty when it has none).")
    async def steps(self, info: Info) -> list[Annotated["OutreachStep", strawberry.lazy("graph.outreach.types")]]:
        return await outreach_fields["steps"](info, self.m)

    @strawberry.field(description="Outreach KPIs of the campaign and of each step (recipients, scheduled, engaged, "
                                  "replied, RSVP, action required, off track), over the leads you see.")
    async def kpis(self, info: Info) -> Annotated["CampaignOutreachKpis", strawberry.lazy("graph.outreach.types")]:
        return await outreach_fields["kpis"](info, self.m)

    @staticmethod
    def of(m: mc.Campaign) -> "Campaign":
        # The instance's attributes set directly, in the dataclass's field order — what its __init__
        # assigns (`built`; test_campaign_objects_are_what_the_dataclass_builds), without its keyword
        # handling.
        campaign = _new(Campaign)
        campaign.id = to_global_id("Campaign", m.id)
        campaign.m = m
        campaign.metrics_ = None
        return campaign

    @staticmethod
    def built(m: mc.Campaign) -> "Campaign":
        """`of` through the dataclass's own __init__ (the reference `of` is tested against)."""
        return Campaign(id=to_global_id("Campaign", m.id), m=m)


_new = object.__new__
