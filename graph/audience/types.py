"""GraphQL audience: object types."""

from __future__ import annotations

import datetime as dt

import strawberry
from strawberry.types import Info

from graph.core import Node, to_global_id
from graph.core.enums import Channel
from graph.core.loaders import loaders
from graph.tenancy.types import Center
from models import leads as ml

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
