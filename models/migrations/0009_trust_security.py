from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0008_exports')]

    initial = False

    operations = [
        ops.CreateModel(
            name='MemberChange',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('organization', fields.ForeignKeyField('models.Organization', source_field='organization_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('member', fields.ForeignKeyField('models.User', source_field='member_id', db_constraint=True, to_field='id', related_name='changes', on_delete=OnDelete.CASCADE)),
                ('changed_by', fields.ForeignKeyField('models.User', source_field='changed_by_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
                ('token_id', fields.IntField(null=True)),
                ('before', fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                ('after', fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                ('changed_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'member_change', 'app': 'models', 'pk_attr': 'id', 'table_description': "A recorded change of a member's role, scope or export permission (memberUpdate)."},
            bases=['Model'],
        ),
    ]
