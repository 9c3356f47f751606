"""Campaigns, their channels, audience and recipients."""

from tortoise import fields
from tortoise.models import Model

from models.enums import CampaignStatus, CampaignType, Channel, GoalType, RecipientGroup, StatusReason, UnitKind


class Campaign(Model):
    id = fields.IntField(primary_key=True)
    organization = fields.ForeignKeyField("models.Organization", related_name="campaigns", on_delete=fields.CASCADE)
    name = fields.CharField(max_length=200)
    description = fields.TextField(default="")
    type = fields.CharEnumField(CampaignType, max_length=16, default=CampaignType.SCHEDULED)
    status = fields.CharEnumField(CampaignStatus, max_length=16, default=CampaignStatus.DRAFT, db_index=True)
    status_reason = fields.CharEnumField(StatusReason, max_length=32, null=True)
    # Owner unit. For a center-owned campaign `zone` holds the center's zone too,
    # so that a zone scope is one equality test.
    owner_kind = fields.CharEnumField(UnitKind, max_length=16, default=UnitKind.ORGANIZATION)
    zone = fields.ForeignKeyField("models.Zone", null=True, related_name=False, on_delete=fields.RESTRICT)
    center = fields.ForeignKeyField("models.Center", null=True, related_name=False, on_delete=fields.RESTRICT)
    control_group_percent = fields.IntField(default=0)
    goal_type = fields.CharEnumField(GoalType, max_length=16, null=True)
    goal_key = fields.CharField(max_length=200, null=True)
    view_window_hours = fields.IntField(default=168)
    goal_window_hours = fields.IntField(default=720)
    goal_after_view_window_hours = fields.IntField(default=168)
    start_at = fields.DatetimeField(null=True)
    end_at = fields.DatetimeField(null=True)
    # Money is stored as integer micro-units of the organization currency
    # (1 EUR = 1_000_000), so SQL sums are exact on every database.
    budget_micros = fields.BigIntField(default=0)
    # Denormalized rollup, maintained in the same transaction as the change:
    # send costs + logged spend. Rebuildable from sends and spend entries.
    spent_micros = fields.BigIntField(default=0)
    # Budget reserved by messages the sender queued and providers have not accepted yet.
    reserved_micros = fields.BigIntField(default=0)
    audience_filter = fields.JSONField(null=True)
    audience_size = fields.IntField(default=0)
    reach = fields.IntField(default=0)
    control_size = fields.IntField(default=0)
    cloned_from = fields.ForeignKeyField("models.Campaign", null=True, related_name=False, on_delete=fields.SET_NULL)
    created_by = fields.ForeignKeyField("models.User", null=True, related_name=False, on_delete=fields.SET_NULL)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)
    launched_at = fields.DatetimeField(null=True)
    live_since = fields.DatetimeField(null=True)
    ended_at = fields.DatetimeField(null=True)

    class Meta:
        table = "campaign"
        indexes = (("organization_id", "status"), ("organization_id", "zone_id"), ("organization_id", "center_id"))


class CampaignChannel(Model):
    id = fields.IntField(primary_key=True)
    campaign = fields.ForeignKeyField("models.Campaign", related_name="channels", on_delete=fields.CASCADE)
    channel = fields.CharEnumField(Channel, max_length=16)
    enabled = fields.BooleanField(default=True)
    unit_cost_micros = fields.BigIntField(default=0)
    credits_per_message = fields.IntField(default=0)
    provider = fields.CharField(max_length=64, default="simulated")

    class Meta:
        table = "campaign_channel"
        unique_together = (("campaign", "channel"),)


class AudienceMember(Model):
    """An explicitly listed lead of a campaign's audience (before launch)."""

    id = fields.IntField(primary_key=True)
    campaign = fields.ForeignKeyField("models.Campaign", related_name="audience_members", on_delete=fields.CASCADE)
    lead = fields.ForeignKeyField("models.Lead", related_name=False, on_delete=fields.CASCADE)

    class Meta:
        table = "audience_member"
        unique_together = (("campaign", "lead"),)


class Recipient(Model):
    """A lead resolved into a campaign's audience at launch (or later for ALWAYS_ON)."""

    id = fields.IntField(primary_key=True)
    campaign = fields.ForeignKeyField("models.Campaign", related_name="recipients", on_delete=fields.CASCADE)
    lead = fields.ForeignKeyField("models.Lead", related_name=False, on_delete=fields.CASCADE)
    group = fields.CharEnumField(RecipientGroup, max_length=16)
    added_at = fields.DatetimeField(auto_now_add=True)
    # Funnel flags, kept by ingestion and attribution (the funnel never scans sends).
    exposed_at = fields.DatetimeField(null=True)  # first delivery of any of its sends
    engaged_at = fields.DatetimeField(null=True)  # first click or reply
    converted_at = fields.DatetimeField(null=True)  # first attributed goal of the campaign's goal

    class Meta:
        table = "recipient"
        unique_together = (("campaign", "lead"),)
        indexes = (("campaign_id", "id"), ("lead_id",))
