"""Issue 12 item 10: the channel of the attributing send on each attribution, and the per-channel daily
rollup (treatment recipients first reached per channel, conversions attributed through a channel).

Existing rows are backfilled from the sends with the rule of app.analytics (the attributing send is the one
whose counted read came last at or before the goal, within the campaign's windows); an attribution no send
explains any more keeps a null channel until `pulse rebuild-analytics` recomputes it. The rule is copied here
(a migration must not import the application, which keeps moving)."""

from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops

from models.enums import Channel


def _dt(v):
    if v is None or isinstance(v, datetime):
        return v if v is None or v.tzinfo else v.replace(tzinfo=timezone.utc)
    t = datetime.fromisoformat(str(v).replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def _day(v) -> date:
    return v if isinstance(v, date) and not isinstance(v, datetime) else date.fromisoformat(str(v)[:10])


async def backfill(apps, schema_editor, campaign_ids=None):
    """`campaign_ids`: only these campaigns (tests run it on rows they cleared); all by default."""
    client = schema_editor.client
    pg = client.capabilities.dialect == "postgres"

    def q(sql: str) -> str:
        if not pg:
            return sql
        parts = sql.split("?")
        return "".join(p + (f"${i + 1}" if i < len(parts) - 1 else "") for i, p in enumerate(parts))

    async def rows(sql: str, params=()):
        return [dict(r) for r in (await client.execute_query(q(sql), list(params)))[1]]

    zones = {r["id"]: ZoneInfo(r["timezone"]) for r in await rows("SELECT id, timezone FROM organization")}
    campaigns = await rows("SELECT id, organization_id, view_window_hours, goal_window_hours, "
                           "goal_after_view_window_hours FROM campaign ORDER BY id")
    for c in campaigns:
        if campaign_ids is not None and c["id"] not in campaign_ids:
            continue
        cid, org_id, tz = c["id"], c["organization_id"], zones[c["organization_id"]]
        view = timedelta(hours=c["view_window_hours"])
        window = timedelta(hours=c["goal_window_hours"])
        after_view = timedelta(hours=c["goal_after_view_window_hours"])
        treatment = {r["lead_id"] for r in await rows(
            "SELECT lead_id FROM recipient WHERE campaign_id = ? AND \"group\" = 'TREATMENT'", [cid])}
        sends = defaultdict(list)
        for s in await rows("SELECT id, lead_id, channel, queued_at, sent_at, delivered_at, read_at FROM send "
                            "WHERE campaign_id = ?", [cid]):
            sends[s["lead_id"]].append({k: _dt(v) if k.endswith("_at") else v for k, v in s.items()})
        counts = defaultdict(lambda: [0, 0])  # (channel, day) -> [exposures, conversions]
        for lead_id in treatment:
            first = {}
            for s in sends.get(lead_id, []):
                if s["delivered_at"] and (s["channel"] not in first or s["delivered_at"] < first[s["channel"]]):
                    first[s["channel"]] = s["delivered_at"]
            for channel, t in first.items():
                counts[(channel, t.astimezone(tz).date())][0] += 1
        for a in await rows("SELECT id, lead_id, occurred_at, day, matches FROM attribution "
                            "WHERE campaign_id = ? AND \"group\" = 'TREATMENT'", [cid]):
            goal_at, best = _dt(a["occurred_at"]), None
            for s in sends.get(a["lead_id"], []):
                t0 = s["sent_at"] or s["delivered_at"] or s["queued_at"]
                read = s["read_at"] if s["read_at"] and s["read_at"] - t0 <= view else None
                if read is not None and t0 <= goal_at <= t0 + window and read <= goal_at <= read + after_view:
                    if best is None or (read, s["id"]) > best[0]:
                        best = ((read, s["id"]), s["channel"])
            if best is None:
                continue
            await client.execute_query(q("UPDATE attribution SET channel = ? WHERE id = ?"), [best[1], a["id"]])
            if a["matches"]:
                counts[(best[1], _day(a["day"]))][1] += 1
        for (channel, day), (exposures, conversions) in sorted(counts.items()):
            await client.execute_query(q(
                "INSERT INTO campaign_channel_day_stat (organization_id, campaign_id, channel, day, exposures, "
                "conversions) VALUES (?, ?, ?, ?, ?, ?)"),
                [org_id, cid, channel, day if pg else day.isoformat(), exposures, conversions])


class Migration(migrations.Migration):
    dependencies = [('models', '0012_numbers_series')]

    initial = False

    operations = [
        ops.CreateModel(
            name='CampaignChannelDayStat',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('organization', fields.ForeignKeyField('models.Organization', source_field='organization_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('campaign', fields.ForeignKeyField('models.Campaign', source_field='campaign_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('channel', fields.CharEnumField(description='EMAIL: EMAIL\nPUSH: PUSH\nSMS: SMS\nWHATSAPP: WHATSAPP\nSOCIAL: SOCIAL', enum_type=Channel, max_length=16)),
                ('day', fields.DateField()),
                ('exposures', fields.BigIntField(default=0)),
                ('conversions', fields.BigIntField(default=0)),
            ],
            options={'table': 'campaign_channel_day_stat', 'app': 'models', 'unique_together': (('campaign', 'channel', 'day'),), 'pk_attr': 'id', 'table_description': 'Per campaign, channel and day: treatment recipients first reached, conversions through the channel.'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Attribution',
            name='channel',
            field=fields.CharEnumField(null=True, description='EMAIL: EMAIL\nPUSH: PUSH\nSMS: SMS\nWHATSAPP: WHATSAPP\nSOCIAL: SOCIAL', enum_type=Channel, max_length=16),
        ),
        ops.RunPython(backfill, ops.RunPython.noop),
    ]
