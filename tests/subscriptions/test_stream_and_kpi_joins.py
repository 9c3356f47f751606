"""A large batch reaches a stream subscriber whole; a KPI subscriber that was there before a newcomer ends on the final value.

Regression tests: each proved a bug found in review (now fixed) through the public API.
"""

from __future__ import annotations

import asyncio

from tests.helpers import at, ingest, launched_campaign
from tests.wsclient import connect

STREAM = """subscription($id: ID!, $after: String) {
  sendStatusChanged(campaignId: $id, after: $after) { cursor status send { externalId } } }"""
KPIS = """subscription($id: ID!) { campaignKpis(campaignId: $id) { totals { sent generated } } }"""


def ev(key, ext, campaign, lead, minute=1, type_="SENT", channel="EMAIL", **kw):
    e = {"idempotencyKey": key, "externalId": ext, "channel": channel, "type": type_, "occurredAt": at(minute),
         "campaignId": campaign["id"], "leadId": lead["id"]}
    e.update(kw)
    return e


# ---------------------------------------------------------------- subscriptions


# Regression (failed on 43dea8d: StreamHub.round fetched one page of 1000 changes per notification; fixed in
# cb2c262, 'stream rounds drain all pages').
async def test_send_stream_delivers_every_change_of_a_large_batch(tenant, live_server):
    campaign, leads = await launched_campaign(tenant.gql, 3)
    n = 1200
    ws = await connect(live_server, tenant.gql.token)
    try:
        await ws.subscribe("s", STREAM, {"id": campaign["id"]})
        await asyncio.sleep(0.5)  # the subscription is registered on the hub
        r = await ingest(tenant.gql, [ev(f"k{i}", f"m{i}", campaign, leads[i % 3]) for i in range(n)])
        assert r["accepted"] == n and not r["rejected"], r
        got = set()
        try:
            while len(got) < n:
                data = await ws.next("s", timeout=5)
                got.add(data["sendStatusChanged"]["send"]["externalId"])
        except asyncio.TimeoutError:
            pass
        assert len(got) == n, f"received {len(got)} of {n} changes"
    finally:
        await ws.close()


# Regression (failed on 43dea8d: SnapshotHub.current() stored the newcomer's snapshot, and the pending round found
# it 'unchanged'; fixed in cb2c262, per-subscriber last fingerprint).
async def test_existing_subscriber_gets_the_final_value_when_another_joins(tenant, live_server):
    campaign, leads = await launched_campaign(tenant.gql, 3)
    a = await connect(live_server, tenant.gql.token)
    b = await connect(live_server, tenant.gql.token)  # connected and acknowledged in advance
    try:
        await a.subscribe("a", KPIS, {"id": campaign["id"]})
        assert (await a.next("a"))["campaignKpis"]["totals"]["sent"] == 0
        await ingest(tenant.gql, [ev("k1", "m1", campaign, leads[0])])
        await a.until("a", lambda d: d["campaignKpis"]["totals"]["sent"] == 1)
        # A round just ran: the next change waits for the coalescing interval (0.25 s) ...
        await ingest(tenant.gql, [ev("k2", "m2", campaign, leads[1])])
        # ... and a second subscriber joins meanwhile (it gets the fresh value first).
        await b.subscribe("b", KPIS, {"id": campaign["id"]})
        assert (await b.next("b"))["campaignKpis"]["totals"]["sent"] == 2
        # The first subscriber must end on the final state too.
        data = await a.until("a", lambda d: d["campaignKpis"]["totals"]["sent"] == 2, timeout=3)
        assert data["campaignKpis"]["totals"]["sent"] == 2
    finally:
        await a.close()
        await b.close()
