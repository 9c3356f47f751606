from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0007_outreach')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Export',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('organization', fields.ForeignKeyField('models.Organization', source_field='organization_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('campaign', fields.ForeignKeyField('models.Campaign', source_field='campaign_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
                ('campaign_name', fields.CharField(default='', max_length=200)),
                ('campaign_type', fields.CharField(null=True, max_length=16)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
                ('user_email', fields.CharField(default='', max_length=320)),
                ('reason', fields.TextField(default='', unique=False)),
                ('status', fields.CharField(default='PENDING', db_index=True, max_length=16)),
                ('refusal', fields.CharField(null=True, max_length=32)),
                ('error', fields.CharField(null=True, max_length=500)),
                ('progress', fields.FloatField(default=0.0)),
                ('rows_done', fields.BigIntField(default=0)),
                ('rows_total', fields.BigIntField(default=0)),
                ('campaign_rows', fields.IntField(default=0)),
                ('stat_rows', fields.IntField(default=0)),
                ('recipient_rows', fields.IntField(default=0)),
                ('user_rows', fields.IntField(default=0)),
                ('key_material', fields.TextField(null=True, unique=False)),
                ('token_hash', fields.CharField(null=True, max_length=64)),
                ('storage', fields.CharField(null=True, max_length=16)),
                ('file_key', fields.CharField(null=True, max_length=200)),
                ('file_size', fields.BigIntField(default=0)),
                ('lease_owner', fields.CharField(null=True, max_length=64)),
                ('lease_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('attempts', fields.IntField(default=0)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('started_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('finished_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('downloaded_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('download_ip', fields.CharField(null=True, max_length=64)),
                ('download_user_agent', fields.CharField(null=True, max_length=500)),
                ('deleted_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('once_campaign_id', fields.IntField(null=True, unique=True)),
            ],
            options={'table': 'export', 'app': 'models', 'indexes': [Index(fields=['organization_id', 'id']), Index(fields=['campaign_id', 'id'])], 'pk_attr': 'id', 'table_description': 'One export request: who, when, why, which campaign, its progress, its single-use link.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ExportAttempt',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('organization', fields.ForeignKeyField('models.Organization', source_field='organization_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('export', fields.ForeignKeyField('models.Export', source_field='export_id', db_constraint=True, to_field='id', related_name='refused_attempts', on_delete=OnDelete.CASCADE)),
                ('code', fields.CharField(max_length=32)),
                ('ip', fields.CharField(null=True, max_length=64)),
                ('user_agent', fields.CharField(null=True, max_length=500)),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'export_attempt', 'app': 'models', 'indexes': [Index(fields=['export_id', 'id'])], 'pk_attr': 'id', 'table_description': 'A refused use of a download link (second use, expired, wrong token, not ready).'},
            bases=['Model'],
        ),
    ]
