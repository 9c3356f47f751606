"""The schema: merges every domain's queries and mutations."""

import strawberry
from graphql import specified_rules
from strawberry.extensions import MaxAliasesLimiter, ParserCache, QueryDepthLimiter, ValidationCache

from graph.analytics import GoalMutation
from graph.credits import CreditMutation, CreditQuery
from graph.execution import PulseExecutionContext
from graph.exports.mutations import ExportMutation
from graph.exports.queries import ExportQuery
from graph.exports.subscriptions import ExportSubscription
from graph.exports.types import Export
from graph.mutations import Mutation as CoreMutation
from graph.queries import Query as CoreQuery
from graph.subscriptions import Subscription as CoreSubscription
from graph.types import ApiToken, BudgetAlert, Campaign, Center, Lead, Organization, Send, SpendEntry, User, Zone


@strawberry.type(description="Reads. Every read is scoped to the caller.")
class Query(CoreQuery, CreditQuery, ExportQuery):
    pass


@strawberry.type(description="Writes. Expected failures come back as `userErrors` with a code.")
class Mutation(CoreMutation, CreditMutation, GoalMutation, ExportMutation):
    pass


@strawberry.type(description="Live updates over a websocket (graphql-transport-ws).")
class Subscription(CoreSubscription, ExportSubscription):
    pass


class PulseSchema(strawberry.Schema):
    """The limits (depth, aliases, tokens) set on each operation's execution context directly.

    As extensions they cost, per operation, hook context managers and a new tuple of ~30 rules;
    a subscription keeps its execution context for its whole life, so that was memory per
    connection. Every operation gets the same tuple of rules (ValidationCache keys on it)."""

    def __init__(self, *args, limits: tuple[tuple, int], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.limit_rules, self.max_tokens = limits

    def _create_execution_context(self, *args, **kwargs):
        context = super()._create_execution_context(*args, **kwargs)
        context.validation_rules = self.limit_rules
        context.parse_options["max_tokens"] = self.max_tokens
        return context


def build_schema(max_depth: int = 12, max_aliases: int = 30, max_tokens: int = 5000, mask_errors: bool = False):
    from strawberry.extensions import MaskErrors

    from app.errors import should_mask

    # Factories, not instances: Strawberry builds them per request (an instance is shared by
    # concurrent requests and its `execution_context` is overwritten by each one: MaskErrors could
    # then mask another request's result). The limit rules are built once: QueryDepthLimiter and
    # MaxAliasesLimiter make a new rule class per instance, which would defeat ValidationCache.
    rules = (*specified_rules, *QueryDepthLimiter(max_depth=max_depth).validation_rules,
             *MaxAliasesLimiter(max_alias_count=max_aliases).validation_rules)
    extensions = [
        # Clients (dashboards, thousands of mobile subscribers) send the same few documents; both
        # caches live at module level (keyed by maxsize): shared by every request.
        lambda: ParserCache(maxsize=512),
        lambda: ValidationCache(maxsize=512),
    ]
    if mask_errors:
        extensions.append(lambda: MaskErrors(should_mask_error=should_mask))
    return PulseSchema(
        limits=(rules, max_tokens),
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[Campaign, Lead, Send, SpendEntry, BudgetAlert, Organization, Zone, Center, User, ApiToken, Export],
        extensions=extensions,
        execution_context_class=PulseExecutionContext,
    )


# The default schema (for `strawberry export-schema graph.schema:schema` and tests).
schema = build_schema()
