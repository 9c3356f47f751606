from tortoise import migrations
from tortoise.migrations import operations as ops
from models.enums import GoalType, RecipientGroup
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0003_sender_and_credits')]

    initial = False

    operations = [
        ops.CreateModel(
            name='CampaignDayStat',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('organization', fields.ForeignKeyField('models.Organization', source_field='organization_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('campaign', fields.ForeignKeyField('models.Campaign', source_field='campaign_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('day', fields.DateField()),
                ('sent', fields.BigIntField(default=0)),
                ('viewed', fields.BigIntField(default=0)),
                ('clicked', fields.BigIntField(default=0)),
                ('goals', fields.BigIntField(default=0)),
                ('revenue_micros', fields.BigIntField(default=0)),
            ],
            options={'table': 'campaign_day_stat', 'app': 'models', 'unique_together': (('campaign', 'day'),), 'pk_attr': 'id', 'table_description': 'Analytics per campaign and day (organization time zone): each figure on the day it'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='CampaignOutcome',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('organization', fields.ForeignKeyField('models.Organization', source_field='organization_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('campaign', fields.ForeignKeyField('models.Campaign', source_field='campaign_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('group', fields.CharEnumField(description='TREATMENT: TREATMENT\nCONTROL: CONTROL', enum_type=RecipientGroup, max_length=16)),
                ('exposed', fields.BigIntField(default=0)),
                ('engaged', fields.BigIntField(default=0)),
                ('converters', fields.BigIntField(default=0)),
                ('conversions', fields.BigIntField(default=0)),
                ('revenue_micros', fields.BigIntField(default=0)),
            ],
            options={'table': 'campaign_outcome', 'app': 'models', 'unique_together': (('campaign', 'group'),), 'pk_attr': 'id', 'table_description': 'Lifetime outcome per campaign and group: converted recipients, conversions, revenue.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='GoalEvent',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('organization', fields.ForeignKeyField('models.Organization', source_field='organization_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('lead', fields.ForeignKeyField('models.Lead', source_field='lead_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('goal_type', fields.CharEnumField(description='SALE: SALE\nLEAD: LEAD\nPAGE_VIEWS: PAGE_VIEWS\nOTHER: OTHER', enum_type=GoalType, max_length=16)),
                ('key', fields.CharField(null=True, max_length=200)),
                ('value_micros', fields.BigIntField(default=0)),
                ('occurred_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('idempotency_key', fields.CharField(max_length=200)),
                ('payload_hash', fields.CharField(max_length=64)),
                ('received_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'goal_event', 'app': 'models', 'unique_together': (('organization', 'idempotency_key'),), 'indexes': [Index(fields=['organization_id', 'lead_id', 'occurred_at'])], 'pk_attr': 'id', 'table_description': 'A goal reached by a lead (sale, lead, page view, …), stored once per idempotency key.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Attribution',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('organization', fields.ForeignKeyField('models.Organization', source_field='organization_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('campaign', fields.ForeignKeyField('models.Campaign', source_field='campaign_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('lead', fields.ForeignKeyField('models.Lead', source_field='lead_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('goal_event', fields.ForeignKeyField('models.GoalEvent', source_field='goal_event_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('group', fields.CharEnumField(description='TREATMENT: TREATMENT\nCONTROL: CONTROL', enum_type=RecipientGroup, max_length=16)),
                ('matches', fields.BooleanField()),
                ('goal_type', fields.CharEnumField(description='SALE: SALE\nLEAD: LEAD\nPAGE_VIEWS: PAGE_VIEWS\nOTHER: OTHER', enum_type=GoalType, max_length=16)),
                ('value_micros', fields.BigIntField(default=0)),
                ('occurred_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('day', fields.DateField()),
            ],
            options={'table': 'attribution', 'app': 'models', 'unique_together': (('campaign', 'goal_event'),), 'indexes': [Index(fields=['campaign_id', 'lead_id']), Index(fields=['campaign_id', 'day'])], 'pk_attr': 'id', 'table_description': 'A goal event attributed to a campaign for one of its recipients (windows of SPEC §9).'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Recipient',
            name='converted_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Recipient',
            name='engaged_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Recipient',
            name='exposed_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
    ]
