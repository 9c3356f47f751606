"""Goal events, their attribution to campaigns, and the analytics rollups (SPEC §9)."""

from tortoise import fields
from tortoise.models import Model

from models.enums import Channel, GoalType, RecipientGroup


class GoalEvent(Model):
    """A goal reached by a lead (sale, lead, page view, …), stored once per idempotency key."""

    id = fields.BigIntField(primary_key=True)
    organization = fields.ForeignKeyField("models.Organization", related_name=False, on_delete=fields.CASCADE)
    lead = fields.ForeignKeyField("models.Lead", related_name=False, on_delete=fields.CASCADE)
    goal_type = fields.CharEnumField(GoalType, max_length=16)
    key = fields.CharField(max_length=200, null=True)
    value_micros = fields.BigIntField(default=0)
    occurred_at = fields.DatetimeField()
    idempotency_key = fields.CharField(max_length=200)
    payload_hash = fields.CharField(max_length=64)
    received_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "goal_event"
        unique_together = (("organization", "idempotency_key"),)
        indexes = (("organization_id", "lead_id", "occurred_at"),)


class Attribution(Model):
    """A goal event attributed to a campaign for one of its recipients (windows of SPEC §9).

    `matches` says whether it is the campaign's own goal (a conversion, or a goal
    reached for assisting goals); other goals show the campaign's contribution."""

    id = fields.BigIntField(primary_key=True)
    organization = fields.ForeignKeyField("models.Organization", related_name=False, on_delete=fields.CASCADE)
    campaign = fields.ForeignKeyField("models.Campaign", related_name=False, on_delete=fields.CASCADE)
    lead = fields.ForeignKeyField("models.Lead", related_name=False, on_delete=fields.CASCADE)
    goal_event = fields.ForeignKeyField("models.GoalEvent", related_name=False, on_delete=fields.CASCADE)
    group = fields.CharEnumField(RecipientGroup, max_length=16)
    matches = fields.BooleanField()
    goal_type = fields.CharEnumField(GoalType, max_length=16)
    value_micros = fields.BigIntField(default=0)
    occurred_at = fields.DatetimeField()
    day = fields.DateField()
    # A treatment goal whose recipient had a counted click at or before it ("after a click").
    after_click = fields.BooleanField(default=False)
    # The channel of the attributing send (treatment: the send whose counted read came last at or before
    # the goal, within the windows); null for a control recipient (never messaged).
    channel = fields.CharEnumField(Channel, max_length=16, null=True)

    class Meta:
        table = "attribution"
        unique_together = (("campaign", "goal_event"),)
        indexes = (("campaign_id", "lead_id"), ("campaign_id", "day"))


class CampaignDayStat(Model):
    """Analytics per campaign and day (organization time zone): each figure on the day it
    happened — sent on the SENT day, viewed on the read day (within the view window),
    clicked on the click day, goals on the goal day (treatment, the campaign's goal)."""

    id = fields.BigIntField(primary_key=True)
    organization = fields.ForeignKeyField("models.Organization", related_name=False, on_delete=fields.CASCADE)
    campaign = fields.ForeignKeyField("models.Campaign", related_name=False, on_delete=fields.CASCADE)
    day = fields.DateField()
    sent = fields.BigIntField(default=0)
    viewed = fields.BigIntField(default=0)
    clicked = fields.BigIntField(default=0)
    goals = fields.BigIntField(default=0)
    revenue_micros = fields.BigIntField(default=0)
    # Treatment recipients first exposed (delivered) / first engaged (counted click or reply) that day.
    exposures = fields.BigIntField(default=0)
    engagements = fields.BigIntField(default=0)
    # Goals of the campaign's goal attributed to control recipients that day.
    control_goals = fields.BigIntField(default=0)
    # Of `goals` / `revenue_micros`: those whose recipient had clicked before the goal.
    goals_after_click = fields.BigIntField(default=0)
    revenue_after_click_micros = fields.BigIntField(default=0)

    class Meta:
        table = "campaign_day_stat"
        unique_together = (("campaign", "day"),)


class CampaignChannelDayStat(Model):
    """Per campaign, channel and day: treatment recipients first reached, conversions through the channel.

    Days in the organization's time zone, treatment recipients only: `exposures` counts a recipient once per channel, on the day its first send on that channel was
    delivered; `conversions` are goals of the campaign's goal attributed through a send on that channel,
    on the goal's day. Rebuilt from sends and attributions like campaign_day_stat."""

    id = fields.BigIntField(primary_key=True)
    organization = fields.ForeignKeyField("models.Organization", related_name=False, on_delete=fields.CASCADE)
    campaign = fields.ForeignKeyField("models.Campaign", related_name=False, on_delete=fields.CASCADE)
    channel = fields.CharEnumField(Channel, max_length=16)
    day = fields.DateField()
    exposures = fields.BigIntField(default=0)
    conversions = fields.BigIntField(default=0)

    class Meta:
        table = "campaign_channel_day_stat"
        unique_together = (("campaign", "channel", "day"),)


class CampaignOutcome(Model):
    """Lifetime outcome per campaign and group: converted recipients, conversions, revenue."""

    id = fields.BigIntField(primary_key=True)
    organization = fields.ForeignKeyField("models.Organization", related_name=False, on_delete=fields.CASCADE)
    campaign = fields.ForeignKeyField("models.Campaign", related_name=False, on_delete=fields.CASCADE)
    group = fields.CharEnumField(RecipientGroup, max_length=16)
    exposed = fields.BigIntField(default=0)
    engaged = fields.BigIntField(default=0)
    converters = fields.BigIntField(default=0)
    conversions = fields.BigIntField(default=0)
    revenue_micros = fields.BigIntField(default=0)

    class Meta:
        table = "campaign_outcome"
        unique_together = (("campaign", "group"),)
