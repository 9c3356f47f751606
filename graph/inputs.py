"""GraphQL input types (SPEC §13) and their conversion to service data."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import strawberry

from app.services.campaigns import CampaignData, CampaignFilterData, ChannelData
from app.services.errors import DomainError, ErrorCode
from app.services.leads import LeadData, LeadFilterData
from graph.outreach.enums import LeadStatus, LeadTrack
from graph.core import from_global_id, require_id
from graph.enums import BounceType, CampaignStatus, CampaignType, Channel, GoalType, Role, SendEventType
from models.enums import UnitKind

UNIT_TYPES = {"Organization": UnitKind.ORGANIZATION, "Zone": UnitKind.ZONE, "Center": UnitKind.CENTER}


def unit_ref(gid: str | None, field: str | list[str]) -> tuple[UnitKind, int] | None:
    """A global id of an organization, zone or center (None when not given)."""
    if gid is None:
        return None
    parsed = from_global_id(gid)
    if parsed is None or parsed[0] not in UNIT_TYPES:
        raise DomainError(ErrorCode.NOT_FOUND, "unit not found", field)
    return UNIT_TYPES[parsed[0]], parsed[1]


def given(value) -> bool:
    return value is not strawberry.UNSET


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
                                  unit_ref(self.owner_unit_id, ["filter", "ownerUnitId"]), self.text)


@strawberry.input(description="A lead to create or update (matched by externalId).")
class LeadInput:
    external_id: str = strawberry.field(description="Your id for the lead (unique in the organization).")
    name: str | None = strawberry.field(default=None, description="Display name.")
    email: str | None = strawberry.field(default=None, description="Email address.")
    email_verified: bool | None = strawberry.field(default=None, description="Whether the email is verified.")
    phone: str | None = strawberry.field(default=None, description="Phone number (SMS).")
    whatsapp: str | None = strawberry.field(default=None, description="WhatsApp number.")
    push_token: str | None = strawberry.field(default=None, description="Push token.")
    linkedin_url: str | None = strawberry.field(default=None, description="LinkedIn profile URL.")
    twitter_url: str | None = strawberry.field(default=None, description="Twitter profile URL.")
    tags: list[str] | None = strawberry.field(default=None, description="Tags (replace the current ones).")
    center_id: strawberry.ID | None = strawberry.field(default=strawberry.UNSET, description="Home center.")

    def data(self, index: int) -> LeadData:
        center_given = given(self.center_id)
        center = None
        if center_given and self.center_id is not None:
            center = require_id(self.center_id, "center", ["leads", str(index), "centerId"], "Center")
        return LeadData(self.external_id, self.name, self.email, self.email_verified, self.phone, self.whatsapp,
                        self.push_token, self.linkedin_url, self.twitter_url, self.tags, center, center_given)


@strawberry.input(description="Filter of leads (also a campaign audience).")
class LeadFilter:
    center_ids: list[strawberry.ID] | None = strawberry.field(default=None, description="Home center is one of these.")
    tags: list[str] | None = strawberry.field(default=None, description="Has any of these tags.")
    verified_only: bool = strawberry.field(default=False, description="Only leads with a verified email.")
    has_channel: list[Channel] | None = strawberry.field(
        default=None, description="Has an address for each of these channels.")
    search: str | None = strawberry.field(default=None, description="Text in name, email or phone, or exact externalId.")
    status: LeadStatus | None = strawberry.field(default=None, description="Leads KPI `active` / `inactive`.")
    track: LeadTrack | None = strawberry.field(default=None, description="Leads KPI `onTrack` / `offTrack`.")
    action_required: bool | None = strawberry.field(default=None, description="Leads KPI `actionRequired` (true).")
    engaged: bool | None = strawberry.field(default=None, description="Leads KPI `engaged` (true).")
    social_only: bool | None = strawberry.field(default=None, description="Leads KPI `socialOnly` (true).")

    def outreach(self) -> dict | None:
        """The KPI names, for the outreach domain's filter."""
        out = {"status": self.status.value if self.status else None, "track": self.track.value if self.track else None,
               "action_required": self.action_required, "engaged": self.engaged, "social_only": self.social_only}
        return {k: v for k, v in out.items() if v is not None} or None

    def data(self, field: str = "filter") -> LeadFilterData:
        centers = None
        if self.center_ids is not None:
            centers = [require_id(c, "center", [field, "centerIds"], "Center") for c in self.center_ids]
        return LeadFilterData(center_ids=centers, tags=self.tags, verified_only=self.verified_only,
                              has_channel=list(self.has_channel or []), search=self.search, outreach=self.outreach())


@strawberry.input(description="A campaign's audience: a filter and/or an explicit list.")
class AudienceInput:
    lead_ids: list[strawberry.ID] | None = strawberry.field(default=None, description="Leads by id.")
    lead_external_ids: list[str] | None = strawberry.field(default=None, description="Leads by external id.")
    filter: LeadFilter | None = strawberry.field(default=None, description="Leads matching this filter.")


@strawberry.input(description="A logged (offline) spend entry, or the reversal of one.")
class SpendLogInput:
    campaign_id: strawberry.ID = strawberry.field(description="The campaign.")
    amount: Decimal = strawberry.field(description="Positive amount; for a reversal, minus the original amount.")
    category: str = strawberry.field(description="Category (e.g. 'printing').")
    note: str | None = strawberry.field(default=None, description="Note.")
    incurred_on: dt.date | None = strawberry.field(default=None, description="Day incurred (default: today, UTC).")
    channel: Channel | None = strawberry.field(default=None, description="Channel the cost belongs to.")
    reverses: strawberry.ID | None = strawberry.field(default=None, description="The entry this one reverses.")


@strawberry.input(description="A delivery or engagement event of one send.")
class SendEventInput:
    idempotency_key: str = strawberry.field(description="Unique per event; a repeat has no effect.")
    external_id: str = strawberry.field(description="Provider message id (unique per organization and channel).")
    channel: Channel = strawberry.field(description="Channel of the send.")
    type: SendEventType = strawberry.field(description="What happened.")
    occurred_at: dt.datetime = strawberry.field(description="When it happened (with a time zone offset).")
    campaign_id: strawberry.ID | None = strawberry.field(default=None, description="Needed on a send's first event.")
    lead_id: strawberry.ID | None = strawberry.field(default=None, description="Lead (or leadExternalId) on the first event.")
    lead_external_id: str | None = strawberry.field(default=None, description="Lead by external id.")
    cost: Decimal | None = strawberry.field(default=None, description="Final cost reported by the provider.")
    credits: int | None = strawberry.field(default=None, description="Final credits reported by the provider.")
    reason: str | None = strawberry.field(default=None, description="Failure or bounce reason.")
    machine: bool | None = strawberry.field(default=None, description="Machine open/click (proxy, scanner): not counted.")
    url: str | None = strawberry.field(default=None, description="Clicked URL.")
    bounce_type: BounceType | None = strawberry.field(default=None, description="Hard (default) or soft bounce.")


@strawberry.input(description="Create or update a member and give it a new API token.")
class TokenCreateInput:
    email: str = strawberry.field(description="Member's email (created if new).")
    role: Role = strawberry.field(description="Member's role.")
    scope_unit_id: strawberry.ID | None = strawberry.field(default=None, description="Member's scope unit (default: yours).")
    name: str | None = strawberry.field(default=None, description="Label of the token.")
    can_export: bool | None = strawberry.field(default=None, description="Export permission.")


@strawberry.input(description="A new organization with its first owner.")
class OrganizationCreateInput:
    name: str = strawberry.field(description="Name (unique).")
    owner_email: str = strawberry.field(description="Email of the first owner.")
    currency: str = strawberry.field(default="EUR", description="ISO 4217 currency code.")
    timezone: str = strawberry.field(default="UTC", description="IANA time zone for daily figures.")

