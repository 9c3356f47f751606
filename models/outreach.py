"""Outreach sequences (SPEC §10): steps, per-recipient step states, manual actions,
outreach events, per-lead flags, leads-KPI counters and their daily snapshots."""

from tortoise import fields
from tortoise.models import Model


class OutreachStep(Model):
    """One ordered step of a campaign's sequence: a channel action with a day offset."""

    id = fields.IntField(primary_key=True)
    organization = fields.ForeignKeyField("models.Organization", related_name=False, on_delete=fields.CASCADE)
    campaign = fields.ForeignKeyField("models.Campaign", related_name=False, on_delete=fields.CASCADE)
    position = fields.IntField()
    kind = fields.CharField(max_length=32)  # StepKind
    day_offset = fields.IntField(default=0)
    condition = fields.CharField(max_length=32, default="NONE")  # StepCondition
    note = fields.CharField(max_length=500, default="")
    # Added after launch: applies to recipients whose day for it is on or after this day.
    applies_from = fields.DateField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "outreach_step"
        indexes = (("campaign_id", "position"),)


class OutreachRecipient(Model):
    """A treatment recipient of a campaign with steps: the day its sequence starts (organization time zone)."""

    id = fields.IntField(primary_key=True)
    organization = fields.ForeignKeyField("models.Organization", related_name=False, on_delete=fields.CASCADE)
    campaign = fields.ForeignKeyField("models.Campaign", related_name=False, on_delete=fields.CASCADE)
    lead = fields.ForeignKeyField("models.Lead", related_name=False, on_delete=fields.CASCADE)
    start_day = fields.DateField()

    class Meta:
        table = "outreach_recipient"
        unique_together = (("campaign", "lead"),)


class RecipientStep(Model):
    """The derived state of one recipient at one step (rebuildable from the facts)."""

    id = fields.BigIntField(primary_key=True)
    organization = fields.ForeignKeyField("models.Organization", related_name=False, on_delete=fields.CASCADE)
    campaign = fields.ForeignKeyField("models.Campaign", related_name=False, on_delete=fields.CASCADE)
    lead = fields.ForeignKeyField("models.Lead", related_name=False, on_delete=fields.CASCADE)
    step = fields.ForeignKeyField("models.OutreachStep", related_name=False, on_delete=fields.CASCADE)
    # the lead's home center and zone (0 = none): the access functions' scope columns
    zone_id = fields.IntField(default=0)
    center_id = fields.IntField(default=0)
    due_day = fields.DateField()
    state = fields.CharField(max_length=32, default="SCHEDULED")
    action_required = fields.BooleanField(default=False)
    overdue = fields.BooleanField(default=False)
    touched = fields.BooleanField(default=False)
    done_at = fields.DatetimeField(null=True)
    done_by = fields.ForeignKeyField("models.User", null=True, related_name=False, on_delete=fields.SET_NULL)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "outreach_recipient_step"
        unique_together = (("step", "lead"),)
        indexes = (("organization_id", "action_required", "due_day"), ("campaign_id", "lead_id"), ("lead_id",))


class OutreachAction(Model):
    """A manual step marked done by a person (who and when), undone within a short window."""

    id = fields.BigIntField(primary_key=True)
    organization = fields.ForeignKeyField("models.Organization", related_name=False, on_delete=fields.CASCADE)
    recipient_step = fields.ForeignKeyField("models.RecipientStep", related_name=False, on_delete=fields.CASCADE)
    action = fields.CharField(max_length=32)
    done_by = fields.ForeignKeyField("models.User", null=True, related_name=False, on_delete=fields.SET_NULL)
    done_at = fields.DatetimeField()
    undone_at = fields.DatetimeField(null=True)
    undone_by = fields.ForeignKeyField("models.User", null=True, related_name=False, on_delete=fields.SET_NULL)

    class Meta:
        table = "outreach_action"
        indexes = (("recipient_step_id", "undone_at"),)


class OutreachEvent(Model):
    """An integrator's event on a recipient (reply, RSVP, LinkedIn accepted, exit, opted out)."""

    id = fields.BigIntField(primary_key=True)
    organization = fields.ForeignKeyField("models.Organization", related_name=False, on_delete=fields.CASCADE)
    campaign = fields.ForeignKeyField("models.Campaign", related_name=False, on_delete=fields.CASCADE)
    lead = fields.ForeignKeyField("models.Lead", related_name=False, on_delete=fields.CASCADE)
    idempotency_key = fields.CharField(max_length=200)
    payload_hash = fields.CharField(max_length=64)
    type = fields.CharField(max_length=32)
    occurred_at = fields.DatetimeField()
    received_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "outreach_event"
        unique_together = (("organization", "idempotency_key"),)
        indexes = (("campaign_id", "lead_id"),)


class LeadOutreach(Model):
    """Per-lead figures behind the leads KPIs, kept in the transaction of each change."""

    lead_id = fields.IntField(primary_key=True)
    organization = fields.ForeignKeyField("models.Organization", related_name=False, on_delete=fields.CASCADE)
    zone_id = fields.IntField(default=0)
    center_id = fields.IntField(default=0)
    verified = fields.BooleanField(default=False)
    social_only = fields.BooleanField(default=False)
    live = fields.IntField(default=0)  # LIVE campaigns the lead is a treatment recipient of
    touches = fields.IntField(default=0)  # emails sent + LinkedIn messages sent
    steps = fields.IntField(default=0)  # recipient steps (in a sequence when > 0)
    overdue = fields.IntField(default=0)
    actions = fields.IntField(default=0)  # steps that are action required

    class Meta:
        table = "lead_outreach"
        indexes = (("organization_id", "center_id"),)


KPI_COLUMNS = ("total", "active", "verified", "social_only", "engaged", "in_sequence", "off_track", "action_required")


class LeadKpiCounter(Model):
    """Leads KPIs per (organization, zone, center): a scope sums a handful of rows."""

    id = fields.IntField(primary_key=True)
    organization = fields.ForeignKeyField("models.Organization", related_name=False, on_delete=fields.CASCADE)
    zone_id = fields.IntField(default=0)
    center_id = fields.IntField(default=0)
    total = fields.IntField(default=0)
    active = fields.IntField(default=0)
    verified = fields.IntField(default=0)
    social_only = fields.IntField(default=0)
    engaged = fields.IntField(default=0)
    in_sequence = fields.IntField(default=0)
    off_track = fields.IntField(default=0)
    action_required = fields.IntField(default=0)

    class Meta:
        table = "lead_kpi_counter"
        unique_together = (("organization", "zone_id", "center_id"),)


class LeadKpiSnapshot(Model):
    """The counters at the end of an organization-local day (taken at the next local midnight)."""

    id = fields.IntField(primary_key=True)
    organization = fields.ForeignKeyField("models.Organization", related_name=False, on_delete=fields.CASCADE)
    day = fields.DateField()
    zone_id = fields.IntField(default=0)
    center_id = fields.IntField(default=0)
    total = fields.IntField(default=0)
    active = fields.IntField(default=0)
    verified = fields.IntField(default=0)
    social_only = fields.IntField(default=0)
    engaged = fields.IntField(default=0)
    in_sequence = fields.IntField(default=0)
    off_track = fields.IntField(default=0)
    action_required = fields.IntField(default=0)

    class Meta:
        table = "lead_kpi_snapshot"
        unique_together = (("organization", "day", "zone_id", "center_id"),)


class OutreachClock(Model):
    """The organization-local day the scheduler last moved to, and the campaigns' LIVE status it saw."""

    organization_id = fields.IntField(primary_key=True)
    day = fields.DateField()

    class Meta:
        table = "outreach_clock"


class OutreachCampaign(Model):
    """Whether the leads' `live` figures count this campaign (kept equal to status = LIVE)."""

    campaign_id = fields.IntField(primary_key=True)
    organization = fields.ForeignKeyField("models.Organization", related_name=False, on_delete=fields.CASCADE)
    counted_live = fields.BooleanField(default=False)

    class Meta:
        table = "outreach_campaign"
