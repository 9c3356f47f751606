"""Logged spend and budget alerts."""

from tortoise import fields
from tortoise.models import Model

from models.enums import Channel


class SpendEntry(Model):
    """A manual (offline) cost. Never edited: corrected by a reversing entry."""

    id = fields.IntField(primary_key=True)
    organization = fields.ForeignKeyField("models.Organization", related_name=False, on_delete=fields.CASCADE)
    campaign = fields.ForeignKeyField("models.Campaign", related_name="spend_entries", on_delete=fields.CASCADE)
    amount_micros = fields.BigIntField()
    category = fields.CharField(max_length=100)
    note = fields.TextField(default="")
    incurred_on = fields.DateField()
    channel = fields.CharEnumField(Channel, max_length=16, null=True)
    reverses = fields.OneToOneField("models.SpendEntry", null=True, related_name="reversed_by", on_delete=fields.RESTRICT)
    logged_by = fields.ForeignKeyField("models.User", null=True, related_name=False, on_delete=fields.SET_NULL)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "spend_entry"


class BudgetAlert(Model):
    """Raised once per campaign and threshold (80, 90, 100 % utilization)."""

    id = fields.IntField(primary_key=True)
    organization = fields.ForeignKeyField("models.Organization", related_name=False, on_delete=fields.CASCADE)
    campaign = fields.ForeignKeyField("models.Campaign", related_name="budget_alerts", on_delete=fields.CASCADE)
    threshold = fields.IntField()
    spent_micros = fields.BigIntField()
    budget_micros = fields.BigIntField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "budget_alert"
        unique_together = (("campaign", "threshold"),)
