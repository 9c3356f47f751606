"""GraphQL billing: credit wallets, ledger entries and the consumption report types."""

from __future__ import annotations

import datetime as dt

import strawberry
from strawberry.types import Info
from tortoise.expressions import Q, Subquery

from app.billing import credits as credit_service
from app.campaigns.service import campaigns_query
from graph.core import (
    After,
    CampaignRef,
    Connection,
    First,
    UserError,
    ctx,
    describe_enum,
    node_of,
    paginate,
    to_global_id,
)
from graph.core.enums import CampaignType, Channel, SkipReason
from graph.delivery.types import SkipCount
from graph.core.loaders import loaders
from graph.tenancy.types import Center, OrgUnit, org_unit
from models import credits as mcr
from models.enums import CreditEntryKind as _Kind
from models.enums import CreditSource as _Source
from models.enums import UnitKind
from models.tenancy import Center as CenterModel

CreditSource = describe_enum(_Source, "Where a message's credits come from.", {
    "ALWAYS_ON": "Messages of ALWAYS_ON campaigns, whatever the channel.",
    "EMAIL": "Email messages of SCHEDULED campaigns.",
    "SMS": "SMS messages of SCHEDULED campaigns.",
    "WHATSAPP": "WhatsApp messages of SCHEDULED campaigns.",
    "PUSH": "Push messages of SCHEDULED campaigns.",
})
CreditEntryKind = describe_enum(_Kind, "Kind of a credit ledger entry.", {
    "TOPUP": "Credits added by an owner.",
    "CONSUMPTION": "Credits taken by a queued message.",
    "REFUND": "Credits given back for a message that failed before it was sent.",
})


@strawberry.type(description="A credit ledger entry (wallets change only through these).")
class CreditEntry:
    m: strawberry.Private[mcr.CreditEntry]

    @strawberry.field(description="Global id.")
    def id(self) -> strawberry.ID:
        return to_global_id("CreditEntry", self.m.id)

    @strawberry.field(description="Top-up, consumption or refund.")
    def kind(self) -> CreditEntryKind:
        return self.m.kind

    @strawberry.field(description="Signed amount: + for top-ups and refunds, − for consumption.")
    def amount(self) -> int:
        return self.m.amount

    @strawberry.field(description="Why (a top-up's reason, or what the sender did).")
    def reason(self) -> str:
        return self.m.reason

    @strawberry.field(description="Campaign of a consumption or refund.")
    def campaign_id(self) -> strawberry.ID | None:
        return to_global_id("Campaign", self.m.campaign_id) if self.m.campaign_id else None

    @strawberry.field(description="Channel of a consumption or refund.")
    def channel(self) -> Channel | None:
        return self.m.channel

    @strawberry.field(description="Who made a top-up (email).")
    async def user_email(self, info: Info) -> str | None:
        if not self.m.user_id:
            return None
        user = await loaders(info).user.load(self.m.user_id)
        return user.email if user else None

    @strawberry.field(description="When.")
    def created_at(self) -> dt.datetime:
        return self.m.created_at


@strawberry.type(description="A credit wallet of the organization.")
class CreditWallet:
    m: strawberry.Private[mcr.CreditWallet]

    @strawberry.field(description="Global id.")
    def id(self) -> strawberry.ID:
        return to_global_id("CreditWallet", self.m.id)

    @strawberry.field(description="Credit source this wallet pays for.")
    def source(self) -> CreditSource:
        return self.m.source

    @strawberry.field(description="Credits available (always the sum of the ledger).")
    def balance(self) -> int:
        return self.m.balance

    @strawberry.field(description="Ledger entries, newest first (for a zone or center member: top-ups and the "
                                  "entries of campaigns it sees).")
    async def entries(self, info: Info, first: First = 50, after: After = None) -> Connection[CreditEntry]:
        p = ctx(info).principal
        qs = mcr.CreditEntry.filter(wallet_id=self.m.id)
        if p.scope.kind != UnitKind.ORGANIZATION:
            qs = qs.filter(Q(campaign_id=None) | Q(campaign_id__in=Subquery(campaigns_query(p).values("id"))))
        return await paginate(qs, first, after, lambda m: CreditEntry(m=m))


@strawberry.input(description="Filter of the credit consumption report.")
class CreditConsumptionFilter:
    date_from: dt.date | None = strawberry.field(default=None, description="First day (organization time zone).")
    date_to: dt.date | None = strawberry.field(default=None, description="Last day, included.")
    campaign_ids: list[strawberry.ID] | None = strawberry.field(default=None, description="Only these campaigns.")
    channel: Channel | None = strawberry.field(default=None, description="Only this channel.")
    scope: strawberry.ID | None = strawberry.field(default=None, description="A unit inside your scope.")


@strawberry.type(description="Credits of one campaign on one channel.")
class CreditConsumptionRow:
    r: strawberry.Private[credit_service.ConsumptionRow]

    @strawberry.field(description="The campaign.")
    def campaign(self) -> CampaignRef:
        return node_of("Campaign", self.r.campaign)

    @strawberry.field(description="Campaign name.")
    def campaign_name(self) -> str:
        return self.r.campaign.name

    @strawberry.field(description="Campaign type.")
    def type(self) -> CampaignType:
        return self.r.campaign.type

    @strawberry.field(description="Owner unit of the campaign.")
    async def created_from(self, info: Info) -> OrgUnit:
        c = self.r.campaign
        return await org_unit(info, UnitKind(c.owner_kind), c.organization_id, c.zone_id, c.center_id)

    @strawberry.field(description="Recipients targeted on this channel.")
    def targeted(self) -> int:
        return self.r.targeted

    @strawberry.field(description="Messages successfully sent (accepted by the provider) in the range.")
    def processed(self) -> int:
        return self.r.processed

    @strawberry.field(description="Credits charged to a wallet in the range: the ledger's consumption − refunds. "
                                  "0 for messages no wallet pays for (e.g. sent by an integrator's own system): "
                                  "see creditsReported.")
    def credits_consumed(self) -> int:
        return self.r.credits

    @strawberry.field(description="Credits the sends of the range carry, as metrics.credits counts them (the channel's "
                                  "credits per message, or what the provider reported), whether or not a wallet "
                                  "was charged.")
    def credits_reported(self) -> int:
        return self.r.reported

    @strawberry.field(description="Channel.")
    def channel(self) -> Channel:
        return self.r.channel

    @strawberry.field(description="Recipients the sender skipped on this channel in the range (sends with status "
                                  "SKIPPED: no address, unsubscribed, channel disabled); no credits are charged for "
                                  "them. Same count as metrics.skipped over the range.")
    def skipped(self) -> int:
        return self.r.skipped

    @strawberry.field(description="`skipped` per reason (only reasons that occurred, in SkipReason order).")
    def skipped_by_reason(self) -> list[SkipCount]:
        by = self.r.skipped_by_reason
        return [SkipCount(reason=r, count=by[r.value]) for r in SkipReason if by.get(r.value)]

    @strawberry.field(description="Wallet the credits came from (null: not metered).")
    def credit_source(self) -> CreditSource | None:
        return self.r.source

    @strawberry.field(description="LIVE, PROCESSED (= completed), PAUSED, SCHEDULED, DRAFT or CANCELLED.")
    def status(self) -> str:
        return credit_service.report_status(self.r.campaign.status)


@strawberry.type(description="Credits consumed for recipients of one center.")
class CreditsByCenter:
    center_key: strawberry.Private[int]
    center_obj: strawberry.Private[CenterModel | None]
    credits: int = strawberry.field(description="Credits consumed.")

    @strawberry.field(description="The recipients' home center (null: no center).")
    def center(self) -> Center | None:
        return Center.of(self.center_obj) if self.center_obj else None


@strawberry.type(description=(
    "Credits of the sends queued on one day: the day comes from each send's own queue time (organization time "
    "zone), not from when a ledger entry was written."))
class CreditsByDay:
    day: dt.date = strawberry.field(description="The day the sends were queued (organization time zone).")
    credits: int = strawberry.field(description=(
        "Credits charged to a wallet for the sends queued that day (consumption − refunds; a refund counts on its "
        "send's day): the per-day part of creditsConsumed."))
    credits_reported: int = strawberry.field(description=(
        "Credits the sends queued that day carry (per-message or provider-reported, charged or not): the per-day "
        "part of creditsReported, so integrator-sent campaigns show their days too."))


@strawberry.type(description="Totals of the report over the filtered range.")
class CreditConsumptionTotals:
    targeted: int = strawberry.field(description="Recipients targeted.")
    processed: int = strawberry.field(description="Messages successfully sent.")
    credits: int = strawberry.field(description="Credits charged to wallets (creditsConsumed summed).")
    credits_reported: int = strawberry.field(default=0, description="Credits reported (creditsReported summed).")
    skipped: int = strawberry.field(default=0, description="Recipients skipped by the sender (rows' skipped summed).")


@strawberry.type(description="Credit consumption report: one row per campaign and channel, with drilldowns.")
class CreditConsumptionReport:
    rows: list[CreditConsumptionRow] = strawberry.field(description="One row per campaign and channel.")
    by_center: list[CreditsByCenter] = strawberry.field(description="Credits per recipients' home center.")
    by_day: list[CreditsByDay] = strawberry.field(description=(
        "Per day with credits (charged or reported), oldest first, by the sends' queue day."))
    totals: CreditConsumptionTotals = strawberry.field(description="Totals for the filtered range.")


@strawberry.type(description="Result of creditsTopUp.")
class CreditsTopUpPayload:
    wallet: CreditWallet | None = strawberry.field(description="The wallet with its new balance.")
    user_errors: list[UserError] = strawberry.field(description="Expected failures; empty on success.")
