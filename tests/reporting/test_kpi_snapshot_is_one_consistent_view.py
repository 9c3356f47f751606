"""A campaignKpis snapshot is read from one consistent view (issue 10 item 12): while events with costs are
ingested concurrently, every snapshot's totals.cost equals budget.spent minus the logged spend.

Under READ COMMITTED each of the snapshot's statements saw the commits made since the previous one (a frame
showed totals.cost 0.45 with budget.spent 0.30). Meaningful on PostgreSQL; on SQLite one transaction
already is one view, and the test checks the same invariant."""

from __future__ import annotations

import asyncio

from app.reporting import kpis
from graph.core import decode_id
from tests.helpers import at, ingest, launched_campaign


async def test_concurrent_ingest_never_tears_a_snapshot(tenant):
    campaign, leads = await launched_campaign(tenant.gql, 20)
    d = await tenant.gql(
        "mutation($i:SpendLogInput!){ spendLog(input:$i){ userErrors{ code message } } }",
        {"i": {"campaignId": campaign["id"], "amount": "1.00", "category": "printing", "note": "flyers"}})
    assert not d["spendLog"]["userErrors"], d
    cid = decode_id(campaign["id"], "Campaign")
    done = asyncio.Event()
    seen = torn = 0

    async def writer():
        try:
            for batch in range(30):
                r = await ingest(tenant.gql, [
                    {"idempotencyKey": f"k{batch}-{i}", "externalId": f"m{batch}-{i}", "channel": "EMAIL",
                     "type": "SENT", "occurredAt": at(batch + i / 100), "campaignId": campaign["id"],
                     "leadId": leads[(batch * 7 + i) % 20]["id"], "cost": "0.01"} for i in range(10)])
                assert r["accepted"] == 10, r
        finally:
            done.set()

    async def reader():
        nonlocal seen, torn
        while not done.is_set():
            s = await kpis.campaign_snapshot(cid)
            seen += 1
            if s.metrics.totals.cost_micros != s.campaign.spent_micros - s.logged_micros:
                torn += 1

    await asyncio.gather(writer(), reader(), reader(), reader())
    assert seen > 0
    assert torn == 0, f"{torn} of {seen} snapshots were torn"
    final = await kpis.campaign_snapshot(cid)
    assert final.metrics.totals.cost_micros == 300 * 10_000
    assert final.campaign.spent_micros == 300 * 10_000 + 1_000_000
