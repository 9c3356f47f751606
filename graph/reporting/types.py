"""GraphQL reporting: object types."""

from __future__ import annotations

import strawberry

from app.reporting import kpis
from graph.core import Money
from graph.core.enums import Channel
from graph.core.execution import SharedPayload
from graph.tenancy.types import OrgUnit


@strawberry.type(description="A computed hint about a campaign's data.")
class Insight:
    code: str = strawberry.field(
        description="HIGH_FAILURE_RATE, LOW_REACH, BUDGET_NEARLY_SPENT or ZERO_SENDS.")
    severity: str = strawberry.field(description="INFO, WARNING or CRITICAL.")
    channel: Channel | None = strawberry.field(description="The channel concerned, when it applies.")
    message: str = strawberry.field(description="Human-readable explanation.")


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

    @strawberry.field(description="Message costs plus logged spend, over all campaigns of the scope (any status, "
                                  "with or without a budget).")
    def total_spent(self) -> Money:
        return Money.of(self.d.total_spent_micros, self.currency)

    @strawberry.field(description="Sum of allocated budgets over all campaigns of the scope (any status, drafts "
                                  "included). Not the denominator of budgetUtilization: see activeBudget.")
    def total_budget(self) -> Money:
        return Money.of(self.d.total_budget_micros, self.currency)

    @strawberry.field(description="Sum of allocated budgets of the LIVE campaigns that have a budget "
                                  "(the denominator of budgetUtilization).")
    def active_budget(self) -> Money:
        return Money.of(self.d.active_budget_micros, self.currency)

    @strawberry.field(description="Spend (message costs plus logged spend) of the LIVE campaigns that have a budget "
                                  "(the numerator of budgetUtilization).")
    def budgeted_spent(self) -> Money:
        return Money.of(self.d.budgeted_spent_micros, self.currency)

    @strawberry.field(description="Spend (message costs plus logged spend) of the LIVE campaigns without a budget; "
                                  "not part of budgetUtilization.")
    def unbudgeted_spent(self) -> Money:
        return Money.of(self.d.unbudgeted_spent_micros, self.currency)

    @strawberry.field(description="budgetedSpent / activeBudget: spend over budget of the same campaigns, the LIVE "
                                  "ones that have a budget (0 when none has). 1.0 = 100 %.")
    def budget_utilization(self) -> float:
        return self.d.budget_utilization
