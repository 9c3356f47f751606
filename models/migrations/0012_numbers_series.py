from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    """Issue 12 items 10–11: daily exposures/engagements and control goals, goals after a click."""

    dependencies = [('models', '0011_skipped')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Attribution',
            name='after_click',
            field=fields.BooleanField(default=False),
        ),
        ops.AddField(
            model_name='CampaignDayStat',
            name='exposures',
            field=fields.BigIntField(default=0),
        ),
        ops.AddField(
            model_name='CampaignDayStat',
            name='engagements',
            field=fields.BigIntField(default=0),
        ),
        ops.AddField(
            model_name='CampaignDayStat',
            name='control_goals',
            field=fields.BigIntField(default=0),
        ),
        ops.AddField(
            model_name='CampaignDayStat',
            name='goals_after_click',
            field=fields.BigIntField(default=0),
        ),
        ops.AddField(
            model_name='CampaignDayStat',
            name='revenue_after_click_micros',
            field=fields.BigIntField(default=0),
        ),
    ]
