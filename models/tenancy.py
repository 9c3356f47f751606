"""Organizations, zones, centers, users and API tokens."""

from tortoise import fields
from tortoise.models import Model

from models.enums import Role, UnitKind


class Organization(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=200, unique=True)
    currency = fields.CharField(max_length=3, default="EUR")
    timezone = fields.CharField(max_length=64, default="UTC")
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "organization"


class Zone(Model):
    id = fields.IntField(primary_key=True)
    organization = fields.ForeignKeyField("models.Organization", related_name="zones", on_delete=fields.CASCADE)
    name = fields.CharField(max_length=200)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "zone"
        unique_together = (("organization", "name"),)


class Center(Model):
    id = fields.IntField(primary_key=True)
    organization = fields.ForeignKeyField("models.Organization", related_name="centers", on_delete=fields.CASCADE)
    zone = fields.ForeignKeyField("models.Zone", related_name="centers", on_delete=fields.CASCADE)
    name = fields.CharField(max_length=200)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "center"
        unique_together = (("organization", "name"),)


class User(Model):
    id = fields.IntField(primary_key=True)
    organization = fields.ForeignKeyField("models.Organization", related_name="users", on_delete=fields.CASCADE)
    email = fields.CharField(max_length=320)
    name = fields.CharField(max_length=200, default="")
    role = fields.CharEnumField(Role, max_length=16)
    scope_kind = fields.CharEnumField(UnitKind, max_length=16, default=UnitKind.ORGANIZATION)
    scope_zone = fields.ForeignKeyField("models.Zone", null=True, related_name=False, on_delete=fields.CASCADE)
    scope_center = fields.ForeignKeyField("models.Center", null=True, related_name=False, on_delete=fields.CASCADE)
    can_export = fields.BooleanField(default=False)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "app_user"
        unique_together = (("organization", "email"),)


class ApiToken(Model):
    id = fields.IntField(primary_key=True)
    user = fields.ForeignKeyField("models.User", related_name="tokens", on_delete=fields.CASCADE)
    name = fields.CharField(max_length=200, default="")
    prefix = fields.CharField(max_length=16)
    token_hash = fields.CharField(max_length=64, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    last_used_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "api_token"


class MemberChange(Model):
    """A recorded change of a member's role, scope or export permission (memberUpdate)."""

    id = fields.IntField(primary_key=True)
    organization = fields.ForeignKeyField("models.Organization", related_name=False, on_delete=fields.CASCADE)
    member = fields.ForeignKeyField("models.User", related_name="changes", on_delete=fields.CASCADE)
    changed_by = fields.ForeignKeyField("models.User", null=True, related_name=False, on_delete=fields.SET_NULL)
    token_id = fields.IntField(null=True)
    before = fields.JSONField()
    after = fields.JSONField()
    changed_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "member_change"
