"""Credit wallets and their ledger (SPEC §8)."""

from tortoise import fields
from tortoise.models import Model

from models.enums import Channel, CreditEntryKind, CreditSource


class CreditWallet(Model):
    """One wallet per organization and credit source. `balance` always equals the
    sum of its ledger entries; it only moves together with a new entry."""

    id = fields.IntField(primary_key=True)
    organization = fields.ForeignKeyField("models.Organization", related_name=False, on_delete=fields.CASCADE)
    source = fields.CharEnumField(CreditSource, max_length=16)
    balance = fields.BigIntField(default=0)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "credit_wallet"
        unique_together = (("organization", "source"),)


class CreditEntry(Model):
    """A ledger entry: top-up (+), consumption (−) or refund (+), with who/why/when."""

    id = fields.BigIntField(primary_key=True)
    organization = fields.ForeignKeyField("models.Organization", related_name=False, on_delete=fields.CASCADE)
    wallet = fields.ForeignKeyField("models.CreditWallet", related_name="entries", on_delete=fields.CASCADE)
    kind = fields.CharEnumField(CreditEntryKind, max_length=16)
    amount = fields.BigIntField()
    campaign = fields.ForeignKeyField("models.Campaign", null=True, related_name=False, on_delete=fields.SET_NULL)
    send = fields.ForeignKeyField("models.Send", null=True, related_name=False, on_delete=fields.SET_NULL)
    channel = fields.CharEnumField(Channel, max_length=16, null=True)
    # For the consumption report: the recipient's home center (0 = none) and the day (org time zone).
    center_key = fields.IntField(default=0)
    day = fields.DateField()
    reason = fields.CharField(max_length=500, default="")
    user = fields.ForeignKeyField("models.User", null=True, related_name=False, on_delete=fields.SET_NULL)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "credit_entry"
        indexes = (("organization_id", "day"), ("campaign_id", "channel"))


class SendJob(Model):
    """One message to queue: a treatment recipient × an enabled channel of a campaign.

    Created at launch (and when an ALWAYS_ON campaign gains a recipient);
    workers claim READY jobs (`FOR UPDATE SKIP LOCKED` on PostgreSQL), so each
    recipient gets at most one message per channel and resume picks up
    exactly the jobs not yet done."""

    id = fields.BigIntField(primary_key=True)
    organization = fields.ForeignKeyField("models.Organization", related_name=False, on_delete=fields.CASCADE)
    campaign = fields.ForeignKeyField("models.Campaign", related_name=False, on_delete=fields.CASCADE)
    lead = fields.ForeignKeyField("models.Lead", related_name=False, on_delete=fields.CASCADE)
    channel = fields.CharEnumField(Channel, max_length=16)
    state = fields.CharField(max_length=16, default="READY")  # READY, QUEUED, SKIPPED
    skip_reason = fields.CharField(max_length=100, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    done_at = fields.DatetimeField(null=True)

    class Meta:
        table = "send_job"
        unique_together = (("campaign", "lead", "channel"),)
        indexes = (("state", "campaign_id", "id"),)
