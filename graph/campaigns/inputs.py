"""GraphQL campaigns: input types."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import strawberry

from app.campaigns.service import CampaignData, CampaignFilterData, ChannelData
from graph.audience.inputs import LeadFilter
from graph.core.enums import CampaignStatus, CampaignType, Channel, GoalType
from graph.core import filter_text
from graph.core.inputs import given
from graph.tenancy.inputs import unit_ref


@strawberry.input(description="A channel of a campaign.")
class CampaignChannelInput:
    channel: Channel = strawberry.field(description="The channel.")
    enabled: bool = strawberry.field(default=True, description="Whether messages go out on it.")
    unit_cost: Decimal = strawberry.field(default=Decimal("0"), description="Default cost of one message.")
    credits_per_message: int = strawberry.field(default=0, description="Credits one message consumes.")
    provider: str = strawberry.field(default="simulated", description="Provider that sends the messages.")

    def data(self) -> ChannelData:
        return ChannelData(self.channel, self.enabled, self.unit_cost, self.credits_per_message, self.provider)


@strawberry.input(description="Goal of a campaign.")
class GoalInput:
    type: GoalType = strawberry.field(description="Goal type.")
    key: str | None = strawberry.field(default=None, description="Names the goal event that counts.")


@strawberry.input(description="Attribution windows, in hours.")
class AttributionInput:
    view_window_hours: int | None = strawberry.field(default=168, description="Read window after a send.")
    goal_window_hours: int | None = strawberry.field(default=720, description="Goal window after a send.")
    goal_after_view_window_hours: int | None = strawberry.field(default=168, description="Goal window after a read.")


def _apply_common(data: CampaignData, inp) -> None:
    mapping = {
        "name": "name", "description": "description", "type": "type", "budget": "budget",
        "control_group_percent": "control_group_percent", "start_at": "start_at", "end_at": "end_at",
    }
    for attr, target in mapping.items():
        value = getattr(inp, attr, strawberry.UNSET)
        if given(value):
            setattr(data, target, value)
            data.given.add(target)
    if given(inp.goal):
        data.given.add("goal")
        data.goal_type = inp.goal.type if inp.goal else None
        data.goal_key = inp.goal.key if inp.goal else None
    if given(inp.attribution) and inp.attribution is not None:
        data.given.add("attribution")
        data.view_window_hours = inp.attribution.view_window_hours
        data.goal_window_hours = inp.attribution.goal_window_hours
        data.goal_after_view_window_hours = inp.attribution.goal_after_view_window_hours
    if given(inp.channels) and inp.channels is not None:
        data.channels = [c.data() for c in inp.channels]
        data.given.add("channels")
    if given(inp.owner_unit_id) and inp.owner_unit_id is not None:
        data.owner_unit = unit_ref(inp.owner_unit_id, "ownerUnitId")


@strawberry.input(description="A new campaign.")
class CampaignCreateInput:
    name: str = strawberry.field(description="Name.")
    description: str | None = strawberry.field(default=None, description="Description.")
    type: CampaignType = strawberry.field(default=CampaignType.SCHEDULED, description="SCHEDULED or ALWAYS_ON.")
    owner_unit_id: strawberry.ID | None = strawberry.field(
        default=None, description="Owner unit (organization, zone or center); defaults to your scope unit.")
    channels: list[CampaignChannelInput] = strawberry.field(description="Channels (at least one).")
    budget: Decimal | None = strawberry.field(default=None, description="Budget; null or 0 = no budget.")
    control_group_percent: int = strawberry.field(default=0, description="Control share, 0–50.")
    goal: GoalInput | None = strawberry.field(default=None, description="Goal.")
    start_at: dt.datetime | None = strawberry.field(default=None, description="Scheduled start (launch waits for it).")
    end_at: dt.datetime | None = strawberry.field(default=None, description="Scheduled end (the campaign completes).")
    attribution: AttributionInput | None = strawberry.field(default=None, description="Attribution windows.")

    def data(self) -> CampaignData:
        d = CampaignData()
        _apply_common(d, self)
        return d


@strawberry.input(description="Changes to a campaign; omitted fields stay as they are.")
class CampaignUpdateInput:
    name: str | None = strawberry.field(default=strawberry.UNSET, description="Name.")
    description: str | None = strawberry.field(default=strawberry.UNSET, description="Description.")
    type: CampaignType | None = strawberry.field(default=strawberry.UNSET, description="Type (drafts only).")
    owner_unit_id: strawberry.ID | None = strawberry.field(default=strawberry.UNSET, description="Owner unit (drafts only).")
    channels: list[CampaignChannelInput] | None = strawberry.field(
        default=strawberry.UNSET, description="Replaces all channels (drafts only).")
    budget: Decimal | None = strawberry.field(default=strawberry.UNSET, description="Budget; null or 0 = no budget.")
    control_group_percent: int | None = strawberry.field(default=strawberry.UNSET, description="Control share (drafts only).")
    goal: GoalInput | None = strawberry.field(default=strawberry.UNSET, description="Goal (null removes it).")
    start_at: dt.datetime | None = strawberry.field(default=strawberry.UNSET, description="Scheduled start (drafts only).")
    end_at: dt.datetime | None = strawberry.field(default=strawberry.UNSET, description="Scheduled end.")
    attribution: AttributionInput | None = strawberry.field(default=strawberry.UNSET, description="Attribution windows.")

    def data(self) -> CampaignData:
        d = CampaignData()
        _apply_common(d, self)
        if "type" in d.given and d.type is None:
            d.given.discard("type")
        return d


@strawberry.input(description="Filter of the campaign list.")
class CampaignFilter:
    status: list[CampaignStatus] | None = strawberry.field(default=None, description="Any of these statuses.")
    type: CampaignType | None = strawberry.field(default=None, description="Only this type.")
    channel: Channel | None = strawberry.field(default=None, description="Only campaigns with this channel enabled.")
    owner_unit_id: strawberry.ID | None = strawberry.field(
        default=None, description="Only campaigns created from exactly this unit.")
    text: str | None = strawberry.field(default=None, description="Text matched against name and description.")

    def data(self) -> CampaignFilterData:
        return CampaignFilterData(self.status, self.type, self.channel,
                                  unit_ref(self.owner_unit_id, ["filter", "ownerUnitId"]),
                                  filter_text(self.text, ["filter", "text"]))


@strawberry.input(description="A campaign's audience: a filter and/or an explicit list.")
class AudienceInput:
    lead_ids: list[strawberry.ID] | None = strawberry.field(default=None, description="Leads by id.")
    lead_external_ids: list[str] | None = strawberry.field(default=None, description="Leads by external id.")
    filter: LeadFilter | None = strawberry.field(default=None, description="Leads matching this filter.")
