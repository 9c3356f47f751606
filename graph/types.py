"""GraphQL object types. Thin: they shape models and rollups for clients."""

from __future__ import annotations

import datetime as dt

from typing import Annotated

import strawberry
from strawberry.types import Info

from app.reporting import kpis
from graph.core import After, Connection, First, Money, Node, ctx, paginate, to_global_id
from graph.execution import SharedPayload
from graph.enums import (BounceType, CampaignStatus, CampaignType, Channel, GoalType, Role, SendEventType,
                         SendStatus, StatusReason, UnitKind)
from graph.loaders import loaders
from models import budgets as mb
from models import campaigns as mc
from models import leads as ml
from models import sends as ms
from models import tenancy as mt
from models.enums import UnitKind as UK


async def _currency(info: Info, org_id: int) -> str:
    org = await loaders(info).organization.load(org_id)
    return org.currency if org else "XXX"


# ---------------------------------------------------------------- tenancy


@strawberry.type(description="A tenant. All money in it uses its one currency.")
class Organization(Node):
    m: strawberry.Private[mt.Organization]

    @strawberry.field(description="Display name.")
    def name(self) -> str:
        return self.m.name

    @strawberry.field(description="ISO 4217 currency code of all money in the organization.")
    def currency(self) -> str:
        return self.m.currency

    @strawberry.field(description="IANA time zone used for daily figures.")
    def timezone(self) -> str:
        return self.m.timezone

    @strawberry.field(description="Zones of the organization visible to you.")
    async def zones(self, info: Info) -> list[Zone]:
        p = ctx(info).principal
        qs = mt.Zone.filter(organization_id=self.m.id)
        if p.scope.kind != UK.ORGANIZATION:
            qs = qs.filter(id=p.scope.zone_id)
        return [Zone.of(z) for z in await qs.order_by("name")]

    @strawberry.field(description="Centers of the organization visible to you.")
    async def centers(self, info: Info) -> list[Center]:
        p = ctx(info).principal
        qs = mt.Center.filter(organization_id=self.m.id)
        if p.scope.kind == UK.ZONE:
            qs = qs.filter(zone_id=p.scope.id)
        elif p.scope.kind == UK.CENTER:
            qs = qs.filter(id=p.scope.id)
        return [Center.of(c) for c in await qs.order_by("name")]

    @staticmethod
    def of(m: mt.Organization) -> "Organization":
        return Organization(id=to_global_id("Organization", m.id), m=m)


@strawberry.type(description="A zone: a group of centers.")
class Zone(Node):
    m: strawberry.Private[mt.Zone]

    @strawberry.field(description="Display name.")
    def name(self) -> str:
        return self.m.name

    @staticmethod
    def of(m: mt.Zone) -> "Zone":
        return Zone(id=to_global_id("Zone", m.id), m=m)


@strawberry.type(description="A center (a site); belongs to one zone.")
class Center(Node):
    m: strawberry.Private[mt.Center]

    @strawberry.field(description="Display name.")
    def name(self) -> str:
        return self.m.name

    @strawberry.field(description="The zone this center belongs to.")
    async def zone(self, info: Info) -> Zone:
        return Zone.of(await loaders(info).zone.load(self.m.zone_id))

    @staticmethod
    def of(m: mt.Center) -> "Center":
        return Center(id=to_global_id("Center", m.id), m=m)


@strawberry.type(description="An organizational unit: the organization, a zone or a center.")
class OrgUnit:
    id: strawberry.ID = strawberry.field(description="Global id of the organization, zone or center.")
    kind: UnitKind = strawberry.field(description="Which level the unit is.")
    name: str = strawberry.field(description="Display name.")


async def org_unit(info: Info, kind: UK, org_id: int, zone_id: int | None, center_id: int | None) -> OrgUnit:
    if kind == UK.CENTER:
        c = await loaders(info).center.load(center_id)
        return OrgUnit(id=to_global_id("Center", c.id), kind=UK.CENTER, name=c.name)
    if kind == UK.ZONE:
        z = await loaders(info).zone.load(zone_id)
        return OrgUnit(id=to_global_id("Zone", z.id), kind=UK.ZONE, name=z.name)
    o = await loaders(info).organization.load(org_id)
    return OrgUnit(id=to_global_id("Organization", o.id), kind=UK.ORGANIZATION, name=o.name)


@strawberry.type(description="A member of an organization.")
class User(Node):
    m: strawberry.Private[mt.User]

    @strawberry.field(description="Email address (unique in the organization).")
    def email(self) -> str:
        return self.m.email

    @strawberry.field(description="Display name.")
    def name(self) -> str:
        return self.m.name

    @strawberry.field(description="Role in the organization.")
    def role(self) -> Role:
        return self.m.role

    @strawberry.field(description="Whether the user may export data (owners always may).")
    def can_export(self) -> bool:
        return bool(self.m.can_export or self.m.role == "OWNER")

    @strawberry.field(description="The unit whose campaigns and leads the user sees.")
    async def scope(self, info: Info) -> OrgUnit:
        zone_id = self.m.scope_zone_id
        if self.m.scope_kind == UK.CENTER:
            zone_id = (await loaders(info).center.load(self.m.scope_center_id)).zone_id
        return await org_unit(info, UK(self.m.scope_kind), self.m.organization_id, zone_id, self.m.scope_center_id)

    @strawberry.field(description="The user's organization.")
    async def organization(self, info: Info) -> Organization:
        return Organization.of(await loaders(info).organization.load(self.m.organization_id))

    @staticmethod
    def of(m: mt.User) -> "User":
        return User(id=to_global_id("User", m.id), m=m)


@strawberry.type(description="An API token (the secret itself is shown only once, at creation).")
class ApiToken(Node):
    m: strawberry.Private[mt.ApiToken]

    @strawberry.field(description="Label given at creation.")
    def name(self) -> str:
        return self.m.name

    @strawberry.field(description="First characters of the token, to recognise it.")
    def prefix(self) -> str:
        return self.m.prefix

    @strawberry.field(description="When the token was created.")
    def created_at(self) -> dt.datetime:
        return self.m.created_at

    @strawberry.field(description="When the token was last used (to the minute).")
    def last_used_at(self) -> dt.datetime | None:
        return self.m.last_used_at

    @strawberry.field(description="When the token was revoked; null while active.")
    def revoked_at(self) -> dt.datetime | None:
        return self.m.revoked_at

    @strawberry.field(description="Email of the user the token authenticates.")
    async def user_email(self, info: Info) -> str:
        return (await loaders(info).user.load(self.m.user_id)).email

    @staticmethod
    def of(m: mt.ApiToken) -> "ApiToken":
        return ApiToken(id=to_global_id("ApiToken", m.id), m=m)


# ---------------------------------------------------------------- leads


@strawberry.type(description="A recipient (lead, guest, visitor).")
class Lead(Node):
    m: strawberry.Private[ml.Lead]

    @strawberry.field(description="Your id for the lead (unique in the organization).")
    def external_id(self) -> str:
        return self.m.external_id

    @strawberry.field(description="Display name.")
    def name(self) -> str:
        return self.m.name

    @strawberry.field(description="Email address.")
    def email(self) -> str | None:
        return self.m.email

    @strawberry.field(description="Whether the email address is verified.")
    def email_verified(self) -> bool:
        return self.m.email_verified

    @strawberry.field(description="Phone number (SMS).")
    def phone(self) -> str | None:
        return self.m.phone

    @strawberry.field(description="WhatsApp number.")
    def whatsapp(self) -> str | None:
        return self.m.whatsapp

    @strawberry.field(description="Whether a push token is registered (the token itself is never exposed).")
    def has_push_token(self) -> bool:
        return bool(self.m.push_token)

    @strawberry.field(description="LinkedIn profile URL.")
    def linkedin_url(self) -> str | None:
        return self.m.linkedin_url

    @strawberry.field(description="Twitter profile URL.")
    def twitter_url(self) -> str | None:
        return self.m.twitter_url

    @strawberry.field(description="Tags.")
    def tags(self) -> list[str]:
        return list(self.m.tags or [])

    @strawberry.field(description="Channels the lead unsubscribed from.")
    def unsubscribed_channels(self) -> list[Channel]:
        return list(self.m.unsubscribed or [])

    @strawberry.field(description="Home center.")
    async def center(self, info: Info) -> Center | None:
        if not self.m.center_id:
            return None
        return Center.of(await loaders(info).center.load(self.m.center_id))

    @strawberry.field(description="When the lead was created.")
    def created_at(self) -> dt.datetime:
        return self.m.created_at

    @staticmethod
    def of(m: ml.Lead) -> "Lead":
        return Lead(id=to_global_id("Lead", m.id), m=m)


# ---------------------------------------------------------------- campaigns


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


@strawberry.type(description="Send counters and rates of a campaign, on one channel or in total.")
class ChannelMetrics:
    m: strawberry.Private[kpis.Metrics]
    currency: strawberry.Private[str]

    @strawberry.field(description="The channel; null on totals.")
    def channel(self) -> Channel | None:
        return self.m.channel

    @strawberry.field(description="Sends created.")
    def generated(self) -> int:
        return self.m.generated

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

    @strawberry.field(description="Sends read (opened/viewed; machine opens excluded; a click counts as a read).")
    def read(self) -> int:
        return self.m.read

    @strawberry.field(description="Sends clicked.")
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

    @strawberry.field(description="Credits of the sends accepted by providers.")
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


@strawberry.type(description="Cost of one channel's messages.")
class ChannelCost:
    channel: Channel | None = strawberry.field(description="The channel.")
    cost: Money = strawberry.field(description="Cost of the messages accepted by providers.")


@strawberry.type(description="A logged (offline) spend entry. Never edited; corrected by a reversing entry.")
class SpendEntry(Node):
    m: strawberry.Private[mb.SpendEntry]
    currency: strawberry.Private[str]

    @strawberry.field(description="Amount (negative for a reversing entry).")
    def amount(self) -> Money:
        return Money.of(self.m.amount_micros, self.currency)

    @strawberry.field(description="Category (free text, e.g. 'design', 'printing').")
    def category(self) -> str:
        return self.m.category

    @strawberry.field(description="Note.")
    def note(self) -> str:
        return self.m.note

    @strawberry.field(description="Day the cost was incurred.")
    def incurred_on(self) -> dt.date:
        return self.m.incurred_on

    @strawberry.field(description="Channel the cost belongs to, if any.")
    def channel(self) -> Channel | None:
        return self.m.channel

    @strawberry.field(description="The entry this one reverses, if it is a reversal.")
    def reverses(self) -> strawberry.ID | None:
        return to_global_id("SpendEntry", self.m.reverses_id) if self.m.reverses_id else None

    @strawberry.field(description="Email of the user who logged it.")
    async def logged_by(self, info: Info) -> str | None:
        if not self.m.logged_by_id:
            return None
        user = await loaders(info).user.load(self.m.logged_by_id)
        return user.email if user else None

    @strawberry.field(description="When it was logged.")
    def created_at(self) -> dt.datetime:
        return self.m.created_at

    @staticmethod
    def of(m: mb.SpendEntry, currency: str) -> "SpendEntry":
        return SpendEntry(id=to_global_id("SpendEntry", m.id), m=m, currency=currency)


@strawberry.type(description="Raised once when a campaign's budget utilization crosses 80, 90 or 100 %.")
class BudgetAlert(Node, SharedPayload):
    m: strawberry.Private[mb.BudgetAlert]
    currency: strawberry.Private[str]

    @strawberry.field(description="Threshold crossed, in percent (80, 90 or 100).")
    def threshold(self) -> int:
        return self.m.threshold

    @strawberry.field(description="Utilization when the alert was raised (spent / budget).")
    def utilization(self) -> float:
        return self.m.spent_micros / self.m.budget_micros if self.m.budget_micros else 0.0

    @strawberry.field(description="Spend when the alert was raised.")
    def spent(self) -> Money:
        return Money.of(self.m.spent_micros, self.currency)

    @strawberry.field(description="Budget when the alert was raised.")
    def budget(self) -> Money:
        return Money.of(self.m.budget_micros, self.currency)

    @strawberry.field(description="When the alert was raised.")
    def created_at(self) -> dt.datetime:
        return self.m.created_at

    @strawberry.field(description="The campaign.")
    async def campaign(self, info: Info) -> Campaign:
        return Campaign.of(await loaders(info).campaign.load(self.m.campaign_id))

    @staticmethod
    def of(m: mb.BudgetAlert, currency: str) -> "BudgetAlert":
        return BudgetAlert(id=to_global_id("BudgetAlert", m.id), m=m, currency=currency)


@strawberry.type(description="Budget tab of a campaign: allocated vs spent.")
class Budget:
    campaign: strawberry.Private[mc.Campaign]
    currency: strawberry.Private[str]

    @strawberry.field(description="Allocated budget (0 = no budget).")
    def allocated(self) -> Money:
        return Money.of(self.campaign.budget_micros, self.currency)

    @strawberry.field(description="Message costs plus logged spend.")
    def spent(self) -> Money:
        return Money.of(self.campaign.spent_micros, self.currency)

    @strawberry.field(description="Cost of messages queued by the sender and not yet accepted by a provider "
                                  "(reserved against the budget).")
    def reserved(self) -> Money:
        return Money.of(self.campaign.reserved_micros, self.currency)

    @strawberry.field(description="allocated − spent (may be negative through logged spend).")
    def remaining(self) -> Money:
        return Money.of(self.campaign.budget_micros - self.campaign.spent_micros, self.currency)

    @strawberry.field(description="spent / allocated (0 when there is no budget).")
    def utilization(self) -> float:
        b = self.campaign.budget_micros
        return self.campaign.spent_micros / b if b else 0.0

    @strawberry.field(description="Message cost per channel; logged spend is under `loggedSpend`.")
    async def by_channel(self, info: Info) -> list[ChannelCost]:
        metrics = await loaders(info).metrics.load(self.campaign.id)
        return [ChannelCost(channel=m.channel, cost=Money.of(m.cost_micros, self.currency)) for m in metrics.by_channel]

    @strawberry.field(description="Sum of logged spend entries (reversals included).")
    async def logged_spend(self, info: Info) -> Money:
        return Money.of(await loaders(info).logged_spend.load(self.campaign.id), self.currency)

    @strawberry.field(description="Logged spend entries, newest first.")
    async def spend_entries(self, info: Info, first: First = 50, after: After = None) -> Connection[SpendEntry]:
        qs = mb.SpendEntry.filter(campaign_id=self.campaign.id)
        return await paginate(qs, first, after, lambda m: SpendEntry.of(m, self.currency))

    @strawberry.field(description="Budget alerts raised for this campaign, by threshold.")
    async def alerts(self, info: Info) -> list[BudgetAlert]:
        return [BudgetAlert.of(a, self.currency) for a in await loaders(info).alerts.load(self.campaign.id)]


@strawberry.type(description="A computed hint about a campaign's data.")
class Insight:
    code: str = strawberry.field(
        description="HIGH_FAILURE_RATE, LOW_REACH, BUDGET_NEARLY_SPENT or ZERO_SENDS.")
    severity: str = strawberry.field(description="INFO, WARNING or CRITICAL.")
    channel: Channel | None = strawberry.field(description="The channel concerned, when it applies.")
    message: str = strawberry.field(description="Human-readable explanation.")


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


@strawberry.type(description="One message to one recipient on one channel (for SOCIAL, one published post).")
class Send(Node):
    m: strawberry.Private[ms.Send]
    # Prefetched by the send stream so that fan-out costs no queries.
    lead_: strawberry.Private[ml.Lead | None] = None
    currency_: strawberry.Private[str | None] = None

    @strawberry.field(description="The recipient.")
    async def recipient(self, info: Info) -> Lead:
        if self.lead_ is not None:
            return Lead.of(self.lead_)
        return Lead.of(await loaders(info).lead.load(self.m.lead_id))

    @strawberry.field(description="Channel.")
    def channel(self) -> Channel:
        return self.m.channel

    @strawberry.field(description="Delivery status.")
    def status(self) -> SendStatus:
        return self.m.status

    @strawberry.field(description="Cost, incurred once the provider accepted the message (else 0).")
    async def cost(self, info: Info) -> Money:
        return Money.of(self.m.cost_micros, self.currency_ or await _currency(info, self.m.organization_id))

    @strawberry.field(description="Credits, incurred once the provider accepted the message (else 0).")
    def credits(self) -> int:
        return self.m.credits

    @strawberry.field(description="When the message was queued.")
    def queued_at(self) -> dt.datetime:
        return self.m.queued_at

    @strawberry.field(description="When the provider accepted it (from the SENT event).")
    def sent_at(self) -> dt.datetime | None:
        return self.m.sent_at

    @strawberry.field(description="When it was delivered.")
    def delivered_at(self) -> dt.datetime | None:
        return self.m.delivered_at

    @strawberry.field(description="When it failed.")
    def failed_at(self) -> dt.datetime | None:
        return self.m.failed_at

    @strawberry.field(description="Why it failed.")
    def failure_reason(self) -> str | None:
        return self.m.failure_reason

    @strawberry.field(description="When it bounced.")
    def bounced_at(self) -> dt.datetime | None:
        return self.m.bounced_at

    @strawberry.field(description="Hard or soft bounce.")
    def bounce_type(self) -> BounceType | None:
        return self.m.bounce_type

    @strawberry.field(description="First read (machine opens excluded).")
    def read_at(self) -> dt.datetime | None:
        return self.m.read_at

    @strawberry.field(description="First click.")
    def clicked_at(self) -> dt.datetime | None:
        return self.m.clicked_at

    @strawberry.field(description="First reply.")
    def replied_at(self) -> dt.datetime | None:
        return self.m.replied_at

    @strawberry.field(description="When the recipient unsubscribed.")
    def unsubscribed_at(self) -> dt.datetime | None:
        return self.m.unsubscribed_at

    @strawberry.field(description="Provider message id (unique per organization and channel).")
    def external_id(self) -> str:
        return self.m.external_id

    @strawberry.field(description="Every accepted event of this send, in the order they happened.")
    async def events(self, info: Info) -> list[SendEvent]:
        currency = await _currency(info, self.m.organization_id)
        return [SendEvent(m=e, currency=currency) for e in await loaders(info).send_events.load(self.m.id)]

    @strawberry.field(description="The campaign.")
    def campaign_id(self) -> strawberry.ID:
        return to_global_id("Campaign", self.m.campaign_id)

    @staticmethod
    def of(m: ms.Send) -> "Send":
        return Send(id=to_global_id("Send", m.id), m=m)


@strawberry.input(description="Filter of a campaign's send log.")
class SendFilter:
    channel: Channel | None = strawberry.field(default=None, description="Only this channel.")
    status: SendStatus | None = strawberry.field(default=None, description="Only this status.")
    recipient: str | None = strawberry.field(
        default=None, description="Text matched against the recipient's name, email and phone.")


# ---------------------------------------------------------------- campaign


@strawberry.type(description="A marketing campaign.")
class Campaign(Node):
    m: strawberry.Private[mc.Campaign]

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
        currency = await _currency(info, self.m.organization_id)
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

    @strawberry.field(description="When the campaign was launched.")
    def launched_at(self) -> dt.datetime | None:
        return self.m.launched_at

    @strawberry.field(description="The campaign this one was cloned from.")
    def cloned_from_id(self) -> strawberry.ID | None:
        return to_global_id("Campaign", self.m.cloned_from_id) if self.m.cloned_from_id else None

    @strawberry.field(description="Send counters and rates, in total and per channel.")
    async def metrics(self, info: Info) -> CampaignMetrics:
        currency = await _currency(info, self.m.organization_id)
        data = await loaders(info).metrics.load(self.m.id)
        return CampaignMetrics(totals=ChannelMetrics(m=data.totals, currency=currency),
                               by_channel=[ChannelMetrics(m=x, currency=currency) for x in data.by_channel])

    @strawberry.field(description="Budget tab: allocated, spent, remaining, utilization, costs, spend entries.")
    async def budget(self, info: Info) -> Budget:
        return Budget(campaign=self.m, currency=await _currency(info, self.m.organization_id))

    @strawberry.field(description="Computed hints (high failure rate, low reach, budget nearly spent, zero sends).")
    async def insights(self, info: Info) -> list[Insight]:
        ld = loaders(info)
        metrics = await ld.metrics.load(self.m.id)
        channels = await ld.channels.load(self.m.id)
        totals = await ld.lead_totals.load(self.m.organization_id)
        found = kpis.insights(self.m, metrics, [c.channel for c in channels if c.enabled],
                              totals.get(kpis.unit_key(self.m), 0))
        return [Insight(code=i.code, severity=i.severity, channel=i.channel, message=i.message) for i in found]

    @strawberry.field(description="The send log, newest first.")
    async def sends(self, info: Info, filter: Annotated[SendFilter | None, strawberry.argument(description="Narrow the log.")] = None, first: First = 50,
                    after: After = None) -> Connection[Send]:
        from app.delivery.sends import sends_query

        qs = sends_query(self.m.id, filter.channel if filter else None, filter.status if filter else None,
                         filter.recipient if filter else None)
        return await paginate(qs, first, after, Send.of)

    @strawberry.field(description="Sent, viewed, clicked and goals: totals, per day and per recipient, for a preset "
                                  "period or a custom range (organization time zone).")
    async def stats(
        self,
        period: Annotated[Annotated["StatsPeriod", strawberry.lazy("graph.analytics")] | None,
                          strawberry.argument(description="Preset period (default LIFETIME).")] = None,
        date_from: Annotated[dt.date | None, strawberry.argument(name="from", description="Custom range: first day.")] = None,
        date_to: Annotated[dt.date | None, strawberry.argument(name="to", description="Custom range: last day.")] = None,
    ) -> Annotated["CampaignStats", strawberry.lazy("graph.analytics")]:
        from graph.analytics import campaign_stats

        return await campaign_stats(self.m, period, date_from, date_to)

    @strawberry.field(description="Prospects → exposures → engagements → conversions (or goals reached).")
    async def funnel(self) -> Annotated["Funnel", strawberry.lazy("graph.analytics")]:
        from graph.analytics import campaign_funnel

        return await campaign_funnel(self.m)

    @strawberry.field(description="Control-group lift: conversion rates, AOV, baseline, incremental revenue and conversions.")
    async def lift(self) -> Annotated["Lift", strawberry.lazy("graph.analytics")]:
        from graph.analytics import campaign_lift

        return await campaign_lift(self.m)

    @strawberry.field(description="Comparisons over time: conversion rate vs peers, revenue, other goals reached.")
    async def analytics(self) -> Annotated["CampaignAnalytics", strawberry.lazy("graph.analytics")]:
        from graph.analytics import campaign_analytics

        return await campaign_analytics(self.m)

    @staticmethod
    def of(m: mc.Campaign) -> "Campaign":
        return Campaign(id=to_global_id("Campaign", m.id), m=m)


@strawberry.type(description="Dashboard KPIs of a scope.")
class Dashboard(SharedPayload):
    d: strawberry.Private[kpis.Dashboard]
    currency: strawberry.Private[str]
    scope: OrgUnit = strawberry.field(description="The scope these figures cover.")

    @strawberry.field(description="Campaigns in LIVE status.")
    def active_campaigns(self) -> int:
        return self.d.active_campaigns

    @strawberry.field(description="Sum of reach (treatment recipients) over LIVE campaigns.")
    def total_reach(self) -> int:
        return self.d.total_reach

    @strawberry.field(description="Message costs plus logged spend, over all campaigns of the scope.")
    def total_spent(self) -> Money:
        return Money.of(self.d.total_spent_micros, self.currency)

    @strawberry.field(description="Sum of allocated budgets over all campaigns of the scope.")
    def total_budget(self) -> Money:
        return Money.of(self.d.total_budget_micros, self.currency)

    @strawberry.field(description="totalSpent / totalBudget (0 when there is no budget).")
    def budget_utilization(self) -> float:
        return self.d.budget_utilization

