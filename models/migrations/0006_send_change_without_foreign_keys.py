from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields


async def drop_foreign_keys(apps, schema_editor):
    """AlterField does not drop a constraint when db_constraint turns off: drop them here.
    (SQLite cannot drop a constraint in place; it does not enforce these by default either.)"""
    if schema_editor.client.capabilities.dialect != "postgres":
        return
    for column in ("campaign_id", "organization_id", "send_id"):
        await schema_editor._run_sql(f"ALTER TABLE send_change DROP CONSTRAINT IF EXISTS send_change_{column}_fkey")


class Migration(migrations.Migration):
    dependencies = [('models', '0005_read_indexes')]

    initial = False

    operations = [
        ops.AlterField(
            model_name='SendChange',
            name='campaign',
            field=fields.ForeignKeyField('models.Campaign', source_field='campaign_id', db_constraint=False, to_field='id', related_name=False, on_delete=OnDelete.CASCADE),
        ),
        ops.AlterField(
            model_name='SendChange',
            name='organization',
            field=fields.ForeignKeyField('models.Organization', source_field='organization_id', db_constraint=False, to_field='id', related_name=False, on_delete=OnDelete.CASCADE),
        ),
        ops.AlterField(
            model_name='SendChange',
            name='send',
            field=fields.ForeignKeyField('models.Send', source_field='send_id', db_constraint=False, to_field='id', related_name=False, on_delete=OnDelete.CASCADE),
        ),
        ops.RunPython(drop_foreign_keys, ops.RunPython.noop),
    ]
