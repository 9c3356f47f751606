"""GraphQL campaigns: mutation fields and their payloads."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from app.campaigns import service as campaign_service
from graph.campaigns.inputs import AudienceInput, CampaignCreateInput, CampaignUpdateInput
from graph.campaigns.types import Campaign
from graph.core import ObjectId, UserError, ctx, require_id
from graph.core.mutations import attempt, user_errors_field


@strawberry.type(description="Result of a mutation that returns a campaign.")
class CampaignPayload:
    campaign: Campaign | None = strawberry.field(description="The campaign, when the mutation succeeded.")
    user_errors: list[UserError] = user_errors_field()


def _campaign_payload(result, errors) -> CampaignPayload:
    return CampaignPayload(campaign=Campaign.of(result) if result else None, user_errors=errors)


def _campaign_id(gid: str, field: str = "id") -> int:
    return require_id(gid, "campaign", field, "Campaign")


async def _transition(info: Info, gid: strawberry.ID, action: str) -> CampaignPayload:
    p = ctx(info).principal

    async def run():
        return await campaign_service.transition(p, _campaign_id(gid), action)

    return _campaign_payload(*await attempt(run))


@strawberry.mutation(description="Create a campaign (DRAFT). Owners and managers.")
async def campaign_create(self, info: Info, input: Annotated[CampaignCreateInput, strawberry.argument(description="The new campaign.")]) -> CampaignPayload:
    p = ctx(info).principal
    return _campaign_payload(*await attempt(lambda: campaign_service.create_campaign(p, input.data())))


@strawberry.mutation(description="Change a campaign. After launch only name, description, budget, endAt, goal "
                                 "and attribution may change.")
async def campaign_update(self, info: Info, id: ObjectId, input: Annotated[CampaignUpdateInput, strawberry.argument(description="The changes.")]) -> CampaignPayload:
    p = ctx(info).principal

    async def run():
        campaign, _alerts = await campaign_service.update_campaign(p, _campaign_id(id), input.data())
        return campaign

    return _campaign_payload(*await attempt(run))


@strawberry.mutation(description="Launch a draft: resolves the audience into recipients; LIVE, or SCHEDULED "
                                 "when startAt is in the future.")
async def campaign_launch(self, info: Info, id: ObjectId) -> CampaignPayload:
    return await _transition(info, id, "launch")


@strawberry.mutation(description="Pause a LIVE campaign: nothing new is queued.")
async def campaign_pause(self, info: Info, id: ObjectId) -> CampaignPayload:
    return await _transition(info, id, "pause")


@strawberry.mutation(description="Resume a PAUSED campaign with the recipients not yet messaged.")
async def campaign_resume(self, info: Info, id: ObjectId) -> CampaignPayload:
    return await _transition(info, id, "resume")


@strawberry.mutation(description="Complete a LIVE or PAUSED campaign (final).")
async def campaign_complete(self, info: Info, id: ObjectId) -> CampaignPayload:
    return await _transition(info, id, "complete")


@strawberry.mutation(description="Cancel a campaign that is not final (final).")
async def campaign_cancel(self, info: Info, id: ObjectId) -> CampaignPayload:
    return await _transition(info, id, "cancel")


@strawberry.mutation(description="Copy every setting (channels, audience, goal, budget, windows) into a new "
                                 "DRAFT with no sends and no spend.")
async def campaign_clone(self, info: Info, id: ObjectId, name: Annotated[str | None, strawberry.argument(description="Name of the copy (default: the original name + (copy)).")] = None) -> CampaignPayload:
    p = ctx(info).principal
    return _campaign_payload(*await attempt(lambda: campaign_service.clone_campaign(p, _campaign_id(id), name)))


@strawberry.mutation(description="Set a draft campaign's audience: a filter and/or a list of leads.")
async def audience_set(self, info: Info, campaign_id: Annotated[strawberry.ID, strawberry.argument(description="The draft campaign.")], input: Annotated[AudienceInput, strawberry.argument(description="The audience.")]) -> CampaignPayload:
    p = ctx(info).principal

    async def run():
        ids = [require_id(i, "lead", ["input", "leadIds"], "Lead") for i in input.lead_ids or []]
        flt = input.filter.data() if input.filter else None
        return await campaign_service.set_audience(p, _campaign_id(campaign_id, "campaignId"), ids,
                                                   input.lead_external_ids, flt)

    return _campaign_payload(*await attempt(run))
