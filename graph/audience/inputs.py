"""GraphQL audience: input types."""

from __future__ import annotations

import strawberry

from app.audience.leads import LeadData, LeadFilterData
from graph.audience.enums import LeadStatus, LeadTrack
from graph.core import filter_text, require_id
from graph.core.enums import Channel
from graph.core.inputs import given


@strawberry.input(description="A lead to create or update (matched by externalId).")
class LeadInput:
    external_id: str = strawberry.field(description="Your id for the lead (unique in the organization).")
    name: str | None = strawberry.field(default=None, description="Display name.")
    email: str | None = strawberry.field(default=None, description="Email address.")
    email_verified: bool | None = strawberry.field(default=None, description="Whether the email is verified.")
    phone: str | None = strawberry.field(default=None, description="Phone number (SMS).")
    whatsapp: str | None = strawberry.field(default=None, description="WhatsApp number.")
    push_token: str | None = strawberry.field(default=None, description="Push token.")
    linkedin_url: str | None = strawberry.field(default=None, description="LinkedIn profile URL.")
    twitter_url: str | None = strawberry.field(default=None, description="Twitter profile URL.")
    tags: list[str] | None = strawberry.field(default=None, description="Tags (replace the current ones).")
    center_id: strawberry.ID | None = strawberry.field(default=strawberry.UNSET, description="Home center.")

    def data(self, index: int) -> LeadData:
        center_given = given(self.center_id)
        center = None
        if center_given and self.center_id is not None:
            center = require_id(self.center_id, "center", ["leads", str(index), "centerId"], "Center")
        return LeadData(self.external_id, self.name, self.email, self.email_verified, self.phone, self.whatsapp,
                        self.push_token, self.linkedin_url, self.twitter_url, self.tags, center, center_given)


@strawberry.input(description="Filter of leads (also a campaign audience).")
class LeadFilter:
    center_ids: list[strawberry.ID] | None = strawberry.field(default=None, description="Home center is one of these.")
    tags: list[str] | None = strawberry.field(default=None, description="Has any of these tags.")
    verified_only: bool = strawberry.field(default=False, description="Only leads with a verified email.")
    has_channel: list[Channel] | None = strawberry.field(
        default=None, description="Has an address for each of these channels.")
    search: str | None = strawberry.field(default=None, description="Text in name, email or phone, or exact externalId.")
    status: LeadStatus | None = strawberry.field(default=None, description="Leads KPI `active` / `inactive`.")
    track: LeadTrack | None = strawberry.field(default=None, description="Leads KPI `onTrack` / `offTrack`.")
    action_required: bool | None = strawberry.field(default=None, description="Leads KPI `actionRequired` (true).")
    engaged: bool | None = strawberry.field(default=None, description="Leads KPI `engaged` (true).")
    social_only: bool | None = strawberry.field(default=None, description="Leads KPI `socialOnly` (true).")

    def outreach(self) -> dict | None:
        """The KPI names, for the outreach domain's filter."""
        out = {"status": self.status.value if self.status else None, "track": self.track.value if self.track else None,
               "action_required": self.action_required, "engaged": self.engaged, "social_only": self.social_only}
        return {k: v for k, v in out.items() if v is not None} or None

    def data(self, field: str = "filter") -> LeadFilterData:
        centers = None
        if self.center_ids is not None:
            centers = [require_id(c, "center", [field, "centerIds"], "Center") for c in self.center_ids]
        return LeadFilterData(center_ids=centers, tags=self.tags, verified_only=self.verified_only,
                              has_channel=list(self.has_channel or []),
                              search=filter_text(self.search, [field, "search"]), outreach=self.outreach())
