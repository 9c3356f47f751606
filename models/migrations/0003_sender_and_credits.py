from tortoise import migrations
from tortoise.migrations import operations as ops
from models.enums import Channel, CreditEntryKind, CreditSource
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0002_send_change')]

    initial = False

    operations = [
        ops.CreateModel(
            name='CreditWallet',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('organization', fields.ForeignKeyField('models.Organization', source_field='organization_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('source', fields.CharEnumField(description='ALWAYS_ON: ALWAYS_ON\nEMAIL: EMAIL\nSMS: SMS\nWHATSAPP: WHATSAPP\nPUSH: PUSH', enum_type=CreditSource, max_length=16)),
                ('balance', fields.BigIntField(default=0)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'credit_wallet', 'app': 'models', 'unique_together': (('organization', 'source'),), 'pk_attr': 'id', 'table_description': 'One wallet per organization and credit source. `balance` always equals the'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='CreditEntry',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('organization', fields.ForeignKeyField('models.Organization', source_field='organization_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('wallet', fields.ForeignKeyField('models.CreditWallet', source_field='wallet_id', db_constraint=True, to_field='id', related_name='entries', on_delete=OnDelete.CASCADE)),
                ('kind', fields.CharEnumField(description='TOPUP: TOPUP\nCONSUMPTION: CONSUMPTION\nREFUND: REFUND', enum_type=CreditEntryKind, max_length=16)),
                ('amount', fields.BigIntField()),
                ('campaign', fields.ForeignKeyField('models.Campaign', source_field='campaign_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
                ('send', fields.ForeignKeyField('models.Send', source_field='send_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
                ('channel', fields.CharEnumField(null=True, description='EMAIL: EMAIL\nPUSH: PUSH\nSMS: SMS\nWHATSAPP: WHATSAPP\nSOCIAL: SOCIAL', enum_type=Channel, max_length=16)),
                ('center_key', fields.IntField(default=0)),
                ('day', fields.DateField()),
                ('reason', fields.CharField(default='', max_length=500)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'credit_entry', 'app': 'models', 'indexes': [Index(fields=['organization_id', 'day']), Index(fields=['campaign_id', 'channel'])], 'pk_attr': 'id', 'table_description': 'A ledger entry: top-up (+), consumption (−) or refund (+), with who/why/when.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='SendJob',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('organization', fields.ForeignKeyField('models.Organization', source_field='organization_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('campaign', fields.ForeignKeyField('models.Campaign', source_field='campaign_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('lead', fields.ForeignKeyField('models.Lead', source_field='lead_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('channel', fields.CharEnumField(description='EMAIL: EMAIL\nPUSH: PUSH\nSMS: SMS\nWHATSAPP: WHATSAPP\nSOCIAL: SOCIAL', enum_type=Channel, max_length=16)),
                ('state', fields.CharField(default='READY', max_length=16)),
                ('skip_reason', fields.CharField(null=True, max_length=100)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('done_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'send_job', 'app': 'models', 'unique_together': (('campaign', 'lead', 'channel'),), 'indexes': [Index(fields=['state', 'campaign_id', 'id'])], 'pk_attr': 'id', 'table_description': 'One message to queue: a treatment recipient × an enabled channel of a campaign.'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Campaign',
            name='reserved_micros',
            field=fields.BigIntField(default=0),
        ),
        ops.AddField(
            model_name='Send',
            name='dispatch_after',
            field=fields.DatetimeField(null=True, db_index=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Send',
            name='dispatch_attempts',
            field=fields.IntField(default=0),
        ),
        ops.AddField(
            model_name='Send',
            name='provider',
            field=fields.CharField(null=True, max_length=64),
        ),
        ops.AddField(
            model_name='Send',
            name='reserved_micros',
            field=fields.BigIntField(default=0),
        ),
        ops.AddField(
            model_name='Send',
            name='system',
            field=fields.BooleanField(default=False),
        ),
    ]
