"""Mutations: decode ids, call a service, shape the payload. Expected failures are userErrors."""

from __future__ import annotations

from typing import Awaitable, Callable, TypeVar

from typing import Annotated

import strawberry
from strawberry.types import Info

from app.billing import budget as budget_service
from app.campaigns import service as campaign_service
from app.delivery import ingest as ingest_service
from app.audience import leads as lead_service
from app.tenancy import service as tenancy_service
from app.core.errors import DomainError
from app.delivery.ingest import SendEventData
from graph.core import ErrorCode, ObjectId, UserError, ctx, decode_id, require_id
from graph.inputs import (AudienceInput, CampaignCreateInput, CampaignUpdateInput, LeadInput,
                          OrganizationCreateInput, SendEventInput, SpendLogInput, TokenCreateInput, unit_ref)
from graph.types import ApiToken, BudgetAlert, Campaign, Center, Lead, Organization, SpendEntry, User, Zone

R = TypeVar("R")


async def attempt(fn: Callable[[], Awaitable[R]]) -> tuple[R | None, list[UserError]]:
    try:
        return await fn(), []
    except DomainError as exc:
        return None, [UserError.of(exc)]


def _errors_field():
    return strawberry.field(description="Expected failures; empty on success.")


@strawberry.type(description="Result of a mutation that returns a campaign.")
class CampaignPayload:
    campaign: Campaign | None = strawberry.field(description="The campaign, when the mutation succeeded.")
    user_errors: list[UserError] = _errors_field()


@strawberry.type(description="Result of leadsUpsert.")
class LeadsUpsertPayload:
    leads: list[Lead] = strawberry.field(description="The leads, in input order (empty on failure).")
    user_errors: list[UserError] = _errors_field()


@strawberry.type(description="Result of spendLog.")
class SpendLogPayload:
    entry: SpendEntry | None = strawberry.field(description="The new entry.")
    campaign: Campaign | None = strawberry.field(description="The campaign, with its updated budget.")
    alerts: list[BudgetAlert] = strawberry.field(description="Budget alerts this entry raised.")
    user_errors: list[UserError] = _errors_field()


@strawberry.type(description="Why one event of a batch was rejected.")
class RejectedEvent:
    index: int = strawberry.field(description="Position of the event in the batch (0-based).")
    code: ErrorCode = strawberry.field(description="Machine-readable reason.")
    message: str = strawberry.field(description="Human-readable reason.")


@strawberry.type(description="Result of sendEventsIngest.")
class SendEventsIngestPayload:
    accepted: int = strawberry.field(description="Events applied (new idempotency keys).")
    duplicates: int = strawberry.field(description="Events whose key and payload were already received: no effect.")
    rejected: list[RejectedEvent] = strawberry.field(description="Events refused, with the reason.")
    user_errors: list[UserError] = _errors_field()


@strawberry.type(description="Result of tokenCreate / organizationCreate: the secret is shown only here.")
class TokenCreatePayload:
    token: str | None = strawberry.field(description="The bearer token. Store it: it cannot be shown again.")
    api_token: ApiToken | None = strawberry.field(description="The token's record.")
    user: User | None = strawberry.field(description="The member it authenticates.")
    organization: Organization | None = strawberry.field(description="The organization (organizationCreate).")
    user_errors: list[UserError] = _errors_field()


@strawberry.type(description="Result of tokenRevoke.")
class TokenRevokePayload:
    api_token: ApiToken | None = strawberry.field(description="The revoked token.")
    user_errors: list[UserError] = _errors_field()


@strawberry.type(description="Result of zoneCreate.")
class ZonePayload:
    zone: Zone | None = strawberry.field(description="The new zone.")
    user_errors: list[UserError] = _errors_field()


@strawberry.type(description="Result of centerCreate.")
class CenterPayload:
    center: Center | None = strawberry.field(description="The new center.")
    user_errors: list[UserError] = _errors_field()


def _campaign_payload(result, errors) -> CampaignPayload:
    return CampaignPayload(campaign=Campaign.of(result) if result else None, user_errors=errors)


def _campaign_id(gid: str, field: str = "id") -> int:
    return require_id(gid, "campaign", field, "Campaign")


async def _transition(info: Info, gid: strawberry.ID, action: str) -> CampaignPayload:
    p = ctx(info).principal

    async def run():
        return await campaign_service.transition(p, _campaign_id(gid), action)

    return _campaign_payload(*await attempt(run))


@strawberry.type(description="Writes.")
class Mutation:
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

    @strawberry.mutation(description="Create or update leads by externalId (all or nothing, up to 5000).")
    async def leads_upsert(self, info: Info, leads: Annotated[list[LeadInput], strawberry.argument(description="Leads to create or update.")]) -> LeadsUpsertPayload:
        p = ctx(info).principal

        async def run():
            return await lead_service.upsert_leads(p, [lead.data(i) for i, lead in enumerate(leads)])

        result, errors = await attempt(run)
        return LeadsUpsertPayload(leads=[Lead.of(m) for m in result or []], user_errors=errors)

    @strawberry.mutation(description="Log an offline cost on a campaign, or reverse an entry (`reverses`).")
    async def spend_log(self, info: Info, input: Annotated[SpendLogInput, strawberry.argument(description="The entry.")]) -> SpendLogPayload:
        p = ctx(info).principal

        async def run():
            data = budget_service.SpendData(
                campaign_id=_campaign_id(input.campaign_id, "campaignId"), amount=input.amount,
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
        return SpendLogPayload(entry=SpendEntry.of(entry, currency), campaign=Campaign.of(campaign),
                               alerts=[BudgetAlert.of(a, currency) for a in alerts], user_errors=[])

    @strawberry.mutation(description="Ingest a batch of send events (at least once, any order). Repeated keys are "
                                     "duplicates; each event is accepted, a duplicate, or rejected with a reason.")
    async def send_events_ingest(self, info: Info, events: Annotated[list[SendEventInput], strawberry.argument(description="The events (up to 5000 per call).")]) -> SendEventsIngestPayload:
        p = ctx(info).principal
        data = []
        for e in events:
            invalid = None
            campaign_id = lead_id = None
            if e.campaign_id is not None:
                campaign_id = decode_id(e.campaign_id, "Campaign")
                invalid = None if campaign_id else "campaign not found"
            if e.lead_id is not None and invalid is None:
                lead_id = decode_id(e.lead_id, "Lead")
                invalid = None if lead_id else "lead not found"
            data.append(SendEventData(
                idempotency_key=e.idempotency_key, external_id=e.external_id, channel=e.channel, type=e.type,
                occurred_at=e.occurred_at, campaign_id=campaign_id, lead_id=lead_id,
                lead_external_id=e.lead_external_id, cost=e.cost, credits=e.credits, reason=e.reason,
                machine=e.machine, url=e.url, bounce_type=e.bounce_type, invalid=invalid))
        settings = ctx(info).settings
        max_batch = settings.max_batch_size if settings else 5000
        result, errors = await attempt(lambda: ingest_service.ingest_send_events(p, data, max_batch))
        if result is None:
            return SendEventsIngestPayload(accepted=0, duplicates=0, rejected=[], user_errors=errors)
        return SendEventsIngestPayload(
            accepted=result.accepted, duplicates=result.duplicates,
            rejected=[RejectedEvent(index=r.index, code=r.code, message=r.message) for r in result.rejected],
            user_errors=[])

    @strawberry.mutation(description="Create or update a member and issue it a token. Owners only.")
    async def token_create(self, info: Info, input: Annotated[TokenCreateInput, strawberry.argument(description="Member and token.")]) -> TokenCreatePayload:
        p = ctx(info).principal

        async def run():
            scope = unit_ref(input.scope_unit_id, "scopeUnitId")
            return await tenancy_service.token_create(
                p, input.email, input.role, *(scope or (None, None)), name=input.name or "", can_export=input.can_export)

        issued, errors = await attempt(run)
        if issued is None:
            return TokenCreatePayload(token=None, api_token=None, user=None, organization=None, user_errors=errors)
        return TokenCreatePayload(token=issued.token, api_token=ApiToken.of(issued.record), user=User.of(issued.user),
                                  organization=None, user_errors=[])

    @strawberry.mutation(description="Revoke a token (yours, or any in the organization for owners).")
    async def token_revoke(self, info: Info, id: ObjectId) -> TokenRevokePayload:
        p = ctx(info).principal

        async def run():
            return await tenancy_service.token_revoke(p, require_id(id, "token", "id", "ApiToken"))

        token, errors = await attempt(run)
        return TokenRevokePayload(api_token=ApiToken.of(token) if token else None, user_errors=errors)

    @strawberry.mutation(description="Create a new organization with its first owner and token. Owners only "
                                     "(the CLI `pulse org create` does the same on a fresh install).")
    async def organization_create(self, info: Info, input: Annotated[OrganizationCreateInput, strawberry.argument(description="The organization.")]) -> TokenCreatePayload:
        p = ctx(info).principal

        async def run():
            p.require(p.role.OWNER)
            return await tenancy_service.create_organization(input.name, input.owner_email, input.currency, input.timezone)

        issued, errors = await attempt(run)
        if issued is None:
            return TokenCreatePayload(token=None, api_token=None, user=None, organization=None, user_errors=errors)
        org = await issued.user.organization
        return TokenCreatePayload(token=issued.token, api_token=ApiToken.of(issued.record), user=User.of(issued.user),
                                  organization=Organization.of(org), user_errors=[])

    @strawberry.mutation(description="Create a zone. Owners only.")
    async def zone_create(self, info: Info, name: Annotated[str, strawberry.argument(description="Zone name.")]) -> ZonePayload:
        p = ctx(info).principal
        zone, errors = await attempt(lambda: tenancy_service.zone_create(p, name))
        return ZonePayload(zone=Zone.of(zone) if zone else None, user_errors=errors)

    @strawberry.mutation(description="Create a center in a zone. Owners only.")
    async def center_create(self, info: Info, zone_id: Annotated[strawberry.ID, strawberry.argument(description="The zone.")], name: Annotated[str, strawberry.argument(description="Center name.")]) -> CenterPayload:
        p = ctx(info).principal

        async def run():
            return await tenancy_service.center_create(p, require_id(zone_id, "zone", "zoneId", "Zone"), name)

        center, errors = await attempt(run)
        return CenterPayload(center=Center.of(center) if center else None, user_errors=errors)



