from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0004_goals_and_analytics')]

    initial = False

    operations = [
        ops.AddIndex(
            model_name='Recipient',
            index=Index(fields=['campaign_id', 'id']),
        ),
        ops.AddIndex(
            model_name='Recipient',
            index=Index(fields=['lead_id']),
        ),
        ops.AddIndex(
            model_name='Send',
            index=Index(fields=['campaign_id', 'lead_id']),
        ),
    ]
