from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields


class Migration(migrations.Migration):
    dependencies = [('models', '0009_trust_security')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Send',
            name='claim_token',
            field=fields.CharField(null=True, max_length=32),
        ),
    ]
