"""GraphQL billing: object types."""

from __future__ import annotations

import datetime as dt

import strawberry
from strawberry.types import Info

from graph.core import After, CampaignRef, Connection, First, Money, Node, node_of, paginate, to_global_id
from graph.core.enums import Channel
from graph.core.execution import SharedPayload
from graph.core.loaders import loaders
from models import budgets as mb
from models import campaigns as mc


@strawberry.type(description="Spend of one channel: its messages' cost, and logged spend entered for that channel.")
class ChannelCost:
    channel: Channel | None = strawberry.field(description="The channel.")
    cost: Money = strawberry.field(description="Cost of the messages accepted by providers (logged spend excluded).")
    logged_spend: Money = strawberry.field(description="Logged spend entries given this channel (reversals included).")
    total: Money = strawberry.field(description="cost + loggedSpend of this channel.")


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
    async def campaign(self, info: Info) -> CampaignRef:
        return node_of("Campaign", await loaders(info).campaign.load(self.m.campaign_id))

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

    @strawberry.field(description="allocated − spent; null when the campaign has no budget (allocated 0). "
                                  "Negative only when logged spend took spend over a real budget.")
    def remaining(self) -> Money | None:
        if self.campaign.budget_micros <= 0:
            return None
        return Money.of(self.campaign.budget_micros - self.campaign.spent_micros, self.currency)

    @strawberry.field(description="spent / allocated, 1.0 = 100 % (0 when there is no budget).")
    def utilization(self) -> float:
        b = self.campaign.budget_micros
        return self.campaign.spent_micros / b if b else 0.0

    @strawberry.field(description="Per channel of the campaign: message cost, logged spend entered for the channel, "
                                  "and their total. Logged spend without a channel shows only in `loggedSpend`.")
    async def by_channel(self, info: Info) -> list[ChannelCost]:
        from app.billing.budget import logged_spend_by_channel

        metrics = await loaders(info).metrics.load(self.campaign.id)
        logged = await logged_spend_by_channel(self.campaign.id)
        c = self.currency
        return [ChannelCost(channel=m.channel, cost=Money.of(m.cost_micros, c),
                            logged_spend=Money.of(logged.get(m.channel, 0), c),
                            total=Money.of(m.cost_micros + logged.get(m.channel, 0), c)) for m in metrics.by_channel]

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
