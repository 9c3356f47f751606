"""Counter (rollup) tables, maintained in the transaction that moves them."""

from tortoise import fields
from tortoise.models import Model

from models.enums import Channel, SkipReason

COUNTER_FIELDS = (
    "generated", "pending", "sent", "delivered", "failed", "bounced",
    "read", "clicked", "replied", "unsubscribed", "cost_micros", "credits", "skipped",
)


class SendCounter(Model):
    """Send counters per campaign × channel × center × day."""

    id = fields.BigIntField(primary_key=True)
    organization = fields.ForeignKeyField("models.Organization", related_name=False, on_delete=fields.CASCADE)
    campaign = fields.ForeignKeyField("models.Campaign", related_name=False, on_delete=fields.CASCADE)
    channel = fields.CharEnumField(Channel, max_length=16)
    center_key = fields.IntField(default=0)
    day = fields.DateField()
    generated = fields.BigIntField(default=0)
    pending = fields.BigIntField(default=0)
    sent = fields.BigIntField(default=0)
    delivered = fields.BigIntField(default=0)
    failed = fields.BigIntField(default=0)
    bounced = fields.BigIntField(default=0)
    read = fields.BigIntField(default=0)
    clicked = fields.BigIntField(default=0)
    replied = fields.BigIntField(default=0)
    unsubscribed = fields.BigIntField(default=0)
    cost_micros = fields.BigIntField(default=0)
    credits = fields.BigIntField(default=0)
    # Sends with status SKIPPED (never queued; not in `generated`).
    skipped = fields.BigIntField(default=0)

    class Meta:
        table = "send_counter"
        unique_together = (("campaign", "channel", "center_key", "day"),)


class SkipCounter(Model):
    """Skipped sends per campaign × channel × reason × day (issue 12 item 8), rebuilt from sends."""

    id = fields.BigIntField(primary_key=True)
    organization = fields.ForeignKeyField("models.Organization", related_name=False, on_delete=fields.CASCADE)
    campaign = fields.ForeignKeyField("models.Campaign", related_name=False, on_delete=fields.CASCADE)
    channel = fields.CharEnumField(Channel, max_length=16)
    reason = fields.CharEnumField(SkipReason, max_length=32)
    day = fields.DateField()  # when the sender skipped them (organization time zone)
    skipped = fields.BigIntField(default=0)

    class Meta:
        table = "skip_counter"
        unique_together = (("campaign", "channel", "reason", "day"),)
