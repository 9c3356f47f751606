"""GraphQL billing: input types."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import strawberry

from graph.core.enums import Channel


@strawberry.input(description="A logged (offline) spend entry, or the reversal of one.")
class SpendLogInput:
    campaign_id: strawberry.ID = strawberry.field(description="The campaign.")
    amount: Decimal = strawberry.field(description="Positive amount; for a reversal, minus the original amount.")
    category: str = strawberry.field(description="Category (e.g. 'printing').")
    note: str | None = strawberry.field(default=None, description="Note.")
    incurred_on: dt.date | None = strawberry.field(default=None, description="Day incurred (default: today, UTC).")
    channel: Channel | None = strawberry.field(default=None, description="Channel the cost belongs to.")
    reverses: strawberry.ID | None = strawberry.field(default=None, description="The entry this one reverses.")
