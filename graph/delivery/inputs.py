"""GraphQL delivery: input types."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import strawberry

from graph.core.enums import BounceType, Channel, SendEventType


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
