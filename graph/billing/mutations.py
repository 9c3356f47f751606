"""GraphQL billing: mutation fields and their payloads."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from app.billing import budget as budget_service
from app.billing import credits as credit_service
from app.campaigns import service as campaign_service
from graph.billing.credits import CreditSource, CreditsTopUpPayload, CreditWallet
from graph.billing.inputs import SpendLogInput
from graph.billing.types import BudgetAlert, SpendEntry
from graph.core import (
    CampaignRef,
    UserError,
    ctx,
    node_of,
    require_id,
)
from graph.core.mutations import attempt, user_errors_field


@strawberry.type(description="Result of spendLog.")
class SpendLogPayload:
    entry: SpendEntry | None = strawberry.field(description="The new entry.")
    campaign: CampaignRef | None = strawberry.field(description="The campaign, with its updated budget.")
    alerts: list[BudgetAlert] = strawberry.field(description="Budget alerts this entry raised.")
    user_errors: list[UserError] = user_errors_field()


@strawberry.mutation(description="Log an offline cost on a campaign, or reverse an entry (`reverses`).")
async def spend_log(self, info: Info, input: Annotated[SpendLogInput, strawberry.argument(description="The entry.")]) -> SpendLogPayload:
    p = ctx(info).principal

    async def run():
        data = budget_service.SpendData(
            campaign_id=require_id(input.campaign_id, "campaign", "campaignId", "Campaign"), amount=input.amount,
            category=input.category, note=input.note, incurred_on=input.incurred_on, channel=input.channel,
            reverses=require_id(input.reverses, "spend entry", "reverses", "SpendEntry") if input.reverses else None,
        )
        return await budget_service.log_spend(p, data)

    result, errors = await attempt(run)
    if not result:
        return SpendLogPayload(entry=None, campaign=None, alerts=[], user_errors=errors)
    entry, alerts = result
    campaign = await campaign_service.get_campaign(p, entry.campaign_id)
    currency = (await campaign.organization).currency
    return SpendLogPayload(entry=SpendEntry.of(entry, currency), campaign=node_of("Campaign", campaign),
                           alerts=[BudgetAlert.of(a, currency) for a in alerts], user_errors=[])


@strawberry.mutation(description="Add credits to a wallet. Owners only.")
async def credits_top_up(
    self, info: Info,
    source: Annotated[CreditSource, strawberry.argument(description="The wallet.")],
    amount: Annotated[int, strawberry.argument(description="Credits to add (positive).")],
    reason: Annotated[str | None, strawberry.argument(description="Why (kept in the ledger).")] = None,
) -> CreditsTopUpPayload:
    p = ctx(info).principal
    wallet, errors = await attempt(lambda: credit_service.top_up(p, source, amount, reason))
    return CreditsTopUpPayload(wallet=CreditWallet(m=wallet) if wallet else None, user_errors=errors)
