from tortoise import migrations
from tortoise.migrations import operations as ops
from models.enums import Channel, SendStatus
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='SendChange',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('organization', fields.ForeignKeyField('models.Organization', source_field='organization_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('campaign', fields.ForeignKeyField('models.Campaign', source_field='campaign_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('send', fields.ForeignKeyField('models.Send', source_field='send_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('channel', fields.CharEnumField(description='EMAIL: EMAIL\nPUSH: PUSH\nSMS: SMS\nWHATSAPP: WHATSAPP\nSOCIAL: SOCIAL', enum_type=Channel, max_length=16)),
                ('status', fields.CharEnumField(description='PENDING: PENDING\nSENT: SENT\nDELIVERED: DELIVERED\nFAILED: FAILED\nBOUNCED: BOUNCED', enum_type=SendStatus, max_length=16)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'send_change', 'app': 'models', 'indexes': [Index(fields=['campaign_id', 'id'])], 'pk_attr': 'id', 'table_description': 'Append-only log of send status/engagement changes: the resumable cursor'},
            bases=['Model'],
        ),
    ]
