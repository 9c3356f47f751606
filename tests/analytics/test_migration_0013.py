"""Migration 0013 on a database that already holds figures (SQLite, or PostgreSQL when the suite runs on it):
migrated to 0012, filled as the application of that time left it (attributions without a channel), then
migrated to the head. The backfill records the channel of the attributing send and fills the per-channel
rollup from the sends; an attribution no send explains keeps a null channel.

Run in a subprocess: migrating re-initialises Tortoise, which must not touch the test app's connections."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

from tests.conftest import PG_URL, _drop_pg_database, _fresh_pg_database

SCRIPT = r'''
import asyncio, json, sys
from datetime import datetime, timezone
from tortoise import Tortoise, connections
from tortoise.migrations.api import migrate
from app.db import tortoise_config

URL = sys.argv[1]
T = lambda d, h, m=0: datetime(2026, 3, d, h, m, tzinfo=timezone.utc)


async def main():
    config = tortoise_config(URL)
    await migrate(config=config, target="models.0012_numbers_series")
    await Tortoise.close_connections()
    await Tortoise.init(config=config)
    from models.campaigns import Campaign, Recipient
    from models.goals import GoalEvent
    from models.leads import Lead
    from models.sends import Send
    from models.tenancy import Organization

    org = await Organization.create(name="m13", currency="EUR", timezone="Asia/Kolkata")
    c = await Campaign.create(organization=org, name="c", status="LIVE", goal_type="SALE", reach=3)
    leads = [await Lead.create(organization=org, external_id=f"l{i}") for i in range(3)]
    for lead in leads:
        await Recipient.create(campaign=c, lead=lead, group="TREATMENT")
    common = dict(organization=org, campaign=c, was_sent=True, status="DELIVERED")
    # l0: EMAIL delivered 2026-03-01 20:00 UTC (02 March in Kolkata), read 21:00; SMS delivered 20:00, read 22:00
    await Send.create(lead=leads[0], channel="EMAIL", external_id="e0", day="2026-03-02", queued_at=T(1, 20),
                      sent_at=T(1, 20), delivered_at=T(1, 20), read_at=T(1, 21), **common)
    await Send.create(lead=leads[0], channel="SMS", external_id="s0", day="2026-03-02", queued_at=T(1, 20),
                      sent_at=T(1, 20), delivered_at=T(1, 20), read_at=T(1, 22), **common)
    # l1: EMAIL delivered 2026-03-02 10:00 UTC, read 11:00
    await Send.create(lead=leads[1], channel="EMAIL", external_id="e1", day="2026-03-02", queued_at=T(2, 10),
                      sent_at=T(2, 10), delivered_at=T(2, 10), read_at=T(2, 11), **common)
    goals = []
    for i, (lead, at) in enumerate(((leads[0], T(1, 23)), (leads[1], T(2, 12)), (leads[2], T(2, 12)))):
        goals.append(await GoalEvent.create(organization=org, lead=lead, goal_type="SALE", value_micros=10_000_000,
                                            occurred_at=at, idempotency_key=f"g{i}", payload_hash="x"))
    conn = connections.get("default")
    pg = conn.capabilities.dialect == "postgres"
    for g, lead in zip(goals, leads):
        day = g.occurred_at.date() if g.occurred_at.hour < 18 else datetime(2026, 3, g.occurred_at.day + 1).date()
        values = [org.id, c.id, lead.id, g.id, "TREATMENT", True, "SALE", 10_000_000, g.occurred_at,
                  day if pg else day.isoformat(), False]
        marks = ", ".join(f"${i + 1}" if pg else "?" for i in range(len(values)))
        await conn.execute_query(
            'INSERT INTO attribution (organization_id, campaign_id, lead_id, goal_event_id, "group", matches, '
            f"goal_type, value_micros, occurred_at, day, after_click) VALUES ({marks})", values)
    await Tortoise.close_connections()

    await migrate(config=config)
    await Tortoise.close_connections()
    await Tortoise.init(config=config)
    conn = connections.get("default")
    _, rows = await conn.execute_query("SELECT lead_id, channel FROM attribution ORDER BY lead_id")
    channels = [r["channel"] for r in rows]
    _, rows = await conn.execute_query(
        "SELECT channel, day, exposures, conversions FROM campaign_channel_day_stat ORDER BY channel, day")
    stats = [[r["channel"], str(r["day"])[:10], r["exposures"], r["conversions"]] for r in rows]
    await Tortoise.close_connections()
    print(json.dumps({"channels": channels, "stats": stats}))


asyncio.run(main())
'''


async def _run(url: str) -> dict:
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    out = subprocess.run([sys.executable, "-c", SCRIPT, url], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-4000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


async def test_migration_0013_backfills_channels_from_the_sends():
    if PG_URL:
        url, name = await _fresh_pg_database(PG_URL)
        try:
            result = await _run(url)
        finally:
            await _drop_pg_database(PG_URL, name)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            result = await _run(f"sqlite://{tmp}/m13.db")
    # l0's goal (23:00 UTC) follows both reads: the SMS read (22:00) is the later one → SMS.
    # l1's goal follows its EMAIL read → EMAIL. l2 has no send: its (inconsistent) attribution keeps null.
    assert result["channels"] == ["SMS", "EMAIL", None]
    # Days in Kolkata (UTC+05:30): 2026-03-01 20:00 UTC is 2 March; l0's goal at 23:00 UTC is 2 March too.
    assert result["stats"] == [
        ["EMAIL", "2026-03-02", 2, 1],   # l0 and l1 first delivered on EMAIL; l1's goal through EMAIL
        ["SMS", "2026-03-02", 1, 1],     # l0 first delivered on SMS; l0's goal through SMS
    ]
