"""Leads (recipients, guests, visitors)."""

from tortoise import fields
from tortoise.models import Model


class Lead(Model):
    id = fields.IntField(primary_key=True)
    organization = fields.ForeignKeyField("models.Organization", related_name="leads", on_delete=fields.CASCADE)
    external_id = fields.CharField(max_length=200)
    name = fields.CharField(max_length=200, default="")
    email = fields.CharField(max_length=320, null=True)
    email_verified = fields.BooleanField(default=False)
    phone = fields.CharField(max_length=40, null=True)
    whatsapp = fields.CharField(max_length=40, null=True)
    push_token = fields.CharField(max_length=500, null=True)
    linkedin_url = fields.CharField(max_length=500, null=True)
    twitter_url = fields.CharField(max_length=500, null=True)
    tags = fields.JSONField(default=list)
    # ",a,b," — lets a tag filter be a portable LIKE on every database.
    tags_text = fields.TextField(default="")
    # Home center, and its zone (denormalized so a zone scope is one equality test).
    center = fields.ForeignKeyField("models.Center", null=True, related_name=False, on_delete=fields.SET_NULL)
    zone = fields.ForeignKeyField("models.Zone", null=True, related_name=False, on_delete=fields.SET_NULL)
    # Channels the lead unsubscribed from (list of Channel values).
    unsubscribed = fields.JSONField(default=list)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "lead"
        unique_together = (("organization", "external_id"),)
        indexes = (("organization_id", "zone_id"), ("organization_id", "center_id"))
