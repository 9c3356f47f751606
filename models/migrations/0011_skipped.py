from tortoise import migrations
from tortoise.migrations import operations as ops
from models.enums import Channel, SendStatus, SkipReason
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0010_claim_token')]

    initial = False

    operations = [
        ops.CreateModel(
            name='SkipCounter',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('organization', fields.ForeignKeyField('models.Organization', source_field='organization_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('campaign', fields.ForeignKeyField('models.Campaign', source_field='campaign_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('channel', fields.CharEnumField(description='EMAIL: EMAIL\nPUSH: PUSH\nSMS: SMS\nWHATSAPP: WHATSAPP\nSOCIAL: SOCIAL', enum_type=Channel, max_length=16)),
                ('reason', fields.CharEnumField(description='NO_ADDRESS: NO_ADDRESS\nUNSUBSCRIBED: UNSUBSCRIBED\nCHANNEL_DISABLED: CHANNEL_DISABLED', enum_type=SkipReason, max_length=32)),
                ('day', fields.DateField()),
                ('skipped', fields.BigIntField(default=0)),
            ],
            options={'table': 'skip_counter', 'app': 'models', 'unique_together': (('campaign', 'channel', 'reason', 'day'),), 'pk_attr': 'id', 'table_description': 'Skipped sends per campaign × channel × reason × day (issue 12 item 8), rebuilt from sends.'},
            bases=['Model'],
        ),
        ops.AlterField(
            model_name='Send',
            name='status',
            field=fields.CharEnumField(default=SendStatus.PENDING, description='PENDING: PENDING\nSENT: SENT\nDELIVERED: DELIVERED\nFAILED: FAILED\nBOUNCED: BOUNCED\nSKIPPED: SKIPPED', enum_type=SendStatus, max_length=16),
        ),
        ops.AddField(
            model_name='Send',
            name='skip_reason',
            field=fields.CharEnumField(null=True, description='NO_ADDRESS: NO_ADDRESS\nUNSUBSCRIBED: UNSUBSCRIBED\nCHANNEL_DISABLED: CHANNEL_DISABLED', enum_type=SkipReason, max_length=32),
        ),
        ops.AlterField(
            model_name='SendChange',
            name='status',
            field=fields.CharEnumField(description='PENDING: PENDING\nSENT: SENT\nDELIVERED: DELIVERED\nFAILED: FAILED\nBOUNCED: BOUNCED\nSKIPPED: SKIPPED', enum_type=SendStatus, max_length=16),
        ),
        ops.AddField(
            model_name='SendCounter',
            name='skipped',
            field=fields.BigIntField(default=0),
        ),
    ]
