"""Sends (one message to one recipient on one channel) and their event history."""

from tortoise import fields
from tortoise.indexes import PartialIndex
from tortoise.models import Model

from models.enums import BounceType, Channel, SendEventType, SendStatus, SkipReason


class Send(Model):
    id = fields.BigIntField(primary_key=True)
    organization = fields.ForeignKeyField("models.Organization", related_name=False, on_delete=fields.CASCADE)
    campaign = fields.ForeignKeyField("models.Campaign", related_name="sends", on_delete=fields.CASCADE)
    lead = fields.ForeignKeyField("models.Lead", related_name=False, on_delete=fields.CASCADE)
    channel = fields.CharEnumField(Channel, max_length=16)
    # The lead's home center when the send was created (0 = none): the counter key.
    center_key = fields.IntField(default=0)
    # Day bucket of the counters this send is counted in (organization time zone).
    day = fields.DateField()
    external_id = fields.CharField(max_length=200)
    status = fields.CharEnumField(SendStatus, max_length=16, default=SendStatus.PENDING)
    was_sent = fields.BooleanField(default=False)
    cost_micros = fields.BigIntField(default=0)
    credits = fields.IntField(default=0)
    queued_at = fields.DatetimeField()
    sent_at = fields.DatetimeField(null=True)
    delivered_at = fields.DatetimeField(null=True)
    failed_at = fields.DatetimeField(null=True)
    failure_reason = fields.CharField(max_length=500, null=True)
    # Why the sender skipped it (status SKIPPED only).
    skip_reason = fields.CharEnumField(SkipReason, max_length=32, null=True)
    bounced_at = fields.DatetimeField(null=True)
    bounce_type = fields.CharEnumField(BounceType, max_length=8, null=True)
    read_at = fields.DatetimeField(null=True)
    clicked_at = fields.DatetimeField(null=True)
    replied_at = fields.DatetimeField(null=True)
    unsubscribed_at = fields.DatetimeField(null=True)
    # Sends queued by Campaign Pulse's own sender (not reported by an integrator):
    # budget reserved while PENDING, credits consumed at queue time, and the
    # hand-off to the provider (an outbox: retried until handed or FAILED).
    system = fields.BooleanField(default=False)
    provider = fields.CharField(max_length=64, null=True)
    reserved_micros = fields.BigIntField(default=0)
    dispatch_after = fields.DatetimeField(null=True, db_index=True)
    dispatch_attempts = fields.IntField(default=0)
    # The fence of the current dispatch claim: a claim writes a fresh token; lease renewals and
    # outcomes apply only where it is still the claimer's (a worker whose lease expired is a stranger).
    claim_token = fields.CharField(max_length=32, null=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "send"
        unique_together = (("organization", "channel", "external_id"),)
        indexes = (
            ("campaign_id", "id"), ("campaign_id", "channel", "status"), ("campaign_id", "lead_id"),
            # The sender's outbox (migration 0013): PENDING sends in hand-off order — the dispatch claim
            # reads the due ones from the front; finished sends are not in it, however many there are.
            PartialIndex(fields=("dispatch_after", "id"), name="send_dispatch_due", condition={"status": "PENDING"}),
            # Messages the sender queued and that have not left PENDING (receipt expiry, campaign
            # completion, queue metrics).
            PartialIndex(fields=("campaign_id", "queued_at"), name="send_system_pending",
                         condition={"system": True, "status": "PENDING"}),
        )


class SendEvent(Model):
    """One accepted event of a send, kept forever (the send's history)."""

    id = fields.BigIntField(primary_key=True)
    organization = fields.ForeignKeyField("models.Organization", related_name=False, on_delete=fields.CASCADE)
    send = fields.ForeignKeyField("models.Send", related_name="events", on_delete=fields.CASCADE)
    idempotency_key = fields.CharField(max_length=200)
    payload_hash = fields.CharField(max_length=64)
    type = fields.CharEnumField(SendEventType, max_length=16)
    occurred_at = fields.DatetimeField()
    received_at = fields.DatetimeField(auto_now_add=True)
    cost_micros = fields.BigIntField(null=True)
    credits = fields.IntField(null=True)
    reason = fields.CharField(max_length=500, null=True)
    bounce_type = fields.CharEnumField(BounceType, max_length=8, null=True)
    machine = fields.BooleanField(default=False)
    url = fields.CharField(max_length=2000, null=True)

    class Meta:
        table = "send_event"
        unique_together = (("organization", "idempotency_key"),)
        indexes = (("send_id", "occurred_at"),)


class SendChange(Model):
    """Append-only log of send status/engagement changes: the resumable cursor
    of `sendStatusChanged`. Ids grow in commit order per campaign (writers hold
    the campaign row lock while appending)."""

    id = fields.BigIntField(primary_key=True)
    # No foreign-key constraints: the log is appended in the same transaction as the sends it
    # names (ingestion and the sender only), and nothing deletes sends, campaigns or
    # organizations. Checking three foreign keys per appended row cost more than the append.
    organization = fields.ForeignKeyField("models.Organization", related_name=False, on_delete=fields.CASCADE,
                                          db_constraint=False)
    campaign = fields.ForeignKeyField("models.Campaign", related_name=False, on_delete=fields.CASCADE,
                                      db_constraint=False)
    send = fields.ForeignKeyField("models.Send", related_name=False, on_delete=fields.CASCADE, db_constraint=False)
    channel = fields.CharEnumField(Channel, max_length=16)
    status = fields.CharEnumField(SendStatus, max_length=16)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "send_change"
        indexes = (("campaign_id", "id"),)
