from tortoise import migrations
from tortoise.indexes import PartialIndex
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    """Issue 15 item 4: the sender's claim and maintenance queries read partial indexes of the
    PENDING sends instead of scanning `send` (the queries name the same literal predicates)."""

    dependencies = [('models', '0013_attribution_channel')]

    initial = False

    operations = [
        ops.AddIndex(
            model_name='Send',
            index=PartialIndex(fields=['dispatch_after', 'id'], name='send_dispatch_due',
                               condition={'status': 'PENDING'}),
        ),
        ops.AddIndex(
            model_name='Send',
            index=PartialIndex(fields=['campaign_id', 'queued_at'], name='send_system_pending',
                               condition={'system': True, 'status': 'PENDING'}),
        ),
    ]
