"""GraphQL billing: query fields."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from app.billing import credits as credit_service
from app.campaigns.service import in_visible_campaigns
from app.core.errors import DomainError, check_range
from graph.core import range_error
from app.tenancy.access import resolve_unit
from graph.billing.credits import (
    CreditConsumptionFilter,
    CreditConsumptionReport,
    CreditConsumptionRow,
    CreditConsumptionTotals,
    CreditsByCenter,
    CreditsByDay,
    CreditWallet,
)
from graph.billing.types import BudgetAlert
from graph.core import (
    After,
    Connection,
    First,
    ScopeArg,
    ctx,
    paginate,
    require_id,
)
from graph.tenancy.inputs import unit_ref
from graph.tenancy.queries import principal_currency, scope_or_none
from models import budgets as mb
from models.enums import CreditSource as _Source
from models.tenancy import Center as CenterModel


@strawberry.field(description="Budget alerts of the campaigns in your scope (or a narrower one), newest first.")
async def budget_alerts(self, info: Info, scope: ScopeArg = None, first: First = 50,
                        after: After = None) -> Connection[BudgetAlert]:
    p = ctx(info).principal
    unit = await scope_or_none(info, p, scope)
    currency = await principal_currency(p)
    qs = in_visible_campaigns(mb.BudgetAlert, p, unit) if unit else mb.BudgetAlert.filter(id=-1)
    return await paginate(qs, first, after, lambda m: BudgetAlert.of(m, currency))


@strawberry.field(description="The organization's credit wallets, one per source.")
async def credit_wallets(self, info: Info) -> list[CreditWallet]:
    p = ctx(info).principal
    wallets = await credit_service.ensure_wallets(p.org_id)
    return [CreditWallet(m=wallets[s]) for s in _Source]


@strawberry.field(description="Credit consumption per campaign and channel, per center and per day.")
async def credit_consumption(
    self, info: Info,
    filter: Annotated[CreditConsumptionFilter | None, strawberry.argument(description="Range and scope.")] = None,
) -> CreditConsumptionReport:
    p = ctx(info).principal
    f = filter or CreditConsumptionFilter()
    try:
        check_range(f.date_from, f.date_to, ["filter", "dateTo"])
    except DomainError as exc:
        raise range_error(exc) from None
    try:
        unit = await resolve_unit(p, *(unit_ref(f.scope, "scope") or (None, None)))
        ids = None if f.campaign_ids is None else [require_id(i, "campaign", "campaignIds", "Campaign")
                                                 for i in f.campaign_ids]
    except DomainError:
        unit, ids = None, []
    report = await credit_service.consumption_report(p, credit_service.ConsumptionFilter(
        date_from=f.date_from, date_to=f.date_to, campaign_ids=ids, channel=f.channel, unit=unit))
    centers = {c.id: c for c in await CenterModel.filter(id__in=[k for k, _ in report.by_center if k])}
    return CreditConsumptionReport(
        rows=[CreditConsumptionRow(r=r) for r in report.rows],
        by_center=[CreditsByCenter(center_key=k, center_obj=centers.get(k), credits=v) for k, v in report.by_center],
        by_day=[CreditsByDay(day=d, credits=v, credits_reported=rep) for d, v, rep in report.by_day],
        totals=CreditConsumptionTotals(targeted=report.total_targeted, processed=report.total_processed,
                                       credits=report.total_credits, credits_reported=report.total_reported,
                                       skipped=report.total_skipped))
