"""Protected data exports (SPEC §11): the download history and its refused attempts."""

from tortoise import fields
from tortoise.models import Model


class Export(Model):
    """One export request: who, when, why, which campaign, its progress, its single-use link.

    A refused request is a row too (status REFUSED, `refusal` says why), so the history
    shows every attempt. The password is never stored; `key_material` holds the file's
    random data key and the password-derived key envelope only while the file is being
    built, then it is wiped."""

    id = fields.BigIntField(primary_key=True)
    organization = fields.ForeignKeyField("models.Organization", related_name=False, on_delete=fields.CASCADE)
    campaign = fields.ForeignKeyField("models.Campaign", null=True, related_name=False, on_delete=fields.SET_NULL)
    campaign_name = fields.CharField(max_length=200, default="")
    campaign_type = fields.CharField(max_length=16, null=True)
    user = fields.ForeignKeyField("models.User", null=True, related_name=False, on_delete=fields.SET_NULL)
    user_email = fields.CharField(max_length=320, default="")
    reason = fields.TextField(default="")
    # PENDING → RUNNING → READY → DOWNLOADED | EXPIRED; CANCELLED, FAILED, REFUSED.
    status = fields.CharField(max_length=16, default="PENDING", db_index=True)
    refusal = fields.CharField(max_length=32, null=True)
    error = fields.CharField(max_length=500, null=True)
    progress = fields.FloatField(default=0.0)
    rows_done = fields.BigIntField(default=0)
    rows_total = fields.BigIntField(default=0)
    campaign_rows = fields.IntField(default=0)
    stat_rows = fields.IntField(default=0)
    recipient_rows = fields.IntField(default=0)
    user_rows = fields.IntField(default=0)
    key_material = fields.TextField(null=True)
    token_hash = fields.CharField(max_length=64, null=True)
    storage = fields.CharField(max_length=16, null=True)
    file_key = fields.CharField(max_length=200, null=True)
    file_size = fields.BigIntField(default=0)
    # Worker lease: who builds it and until when (a dead worker's job is taken over).
    lease_owner = fields.CharField(max_length=64, null=True)
    lease_until = fields.DatetimeField(null=True)
    attempts = fields.IntField(default=0)
    created_at = fields.DatetimeField(auto_now_add=True)
    started_at = fields.DatetimeField(null=True)
    finished_at = fields.DatetimeField(null=True)
    expires_at = fields.DatetimeField(null=True)
    downloaded_at = fields.DatetimeField(null=True)
    download_ip = fields.CharField(max_length=64, null=True)
    download_user_agent = fields.CharField(max_length=500, null=True)
    deleted_at = fields.DatetimeField(null=True)
    # Set on the download of a SCHEDULED campaign's export: the database lets one download
    # per such campaign happen, whatever the concurrency.
    once_campaign_id = fields.IntField(null=True, unique=True)

    class Meta:
        table = "export"
        indexes = (("organization_id", "id"), ("campaign_id", "id"))


class ExportAttempt(Model):
    """A refused use of a download link (second use, expired, wrong token, not ready)."""

    id = fields.BigIntField(primary_key=True)
    organization = fields.ForeignKeyField("models.Organization", related_name=False, on_delete=fields.CASCADE)
    export = fields.ForeignKeyField("models.Export", related_name="refused_attempts", on_delete=fields.CASCADE)
    code = fields.CharField(max_length=32)
    ip = fields.CharField(max_length=64, null=True)
    user_agent = fields.CharField(max_length=500, null=True)
    at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "export_attempt"
        indexes = (("export_id", "id"),)
