"""A lost publish does not leave live values stale (issue 10 item 11): hubs check every
PULSE_SUBSCRIPTION_RECONCILE_INTERVAL_S whether their topic moved without a bus message and then run a round."""

from __future__ import annotations

import asyncio
import time

import pytest

from subscriptions.bus import get_bus
from subscriptions.hubs import get_registry
from tests.helpers import ingest, launched_campaign
from tests.subscriptions.test_live import sent_event
from tests.wsclient import connect

KPIS = "subscription($id: ID!) { campaignKpis(campaignId: $id) { totals { sent } } }"
DASH = "subscription { dashboardKpis { totalSpent { amount } } }"
STREAM = "subscription($id: ID!) { sendStatusChanged(campaignId: $id) { send { externalId } } }"
INTERVAL = 0.5


@pytest.fixture
def lost_publishes(monkeypatch):
    """Every publish is lost (as in a crash between commit and publish); hubs reconcile every INTERVAL s."""
    async def lost(_topic, _message):
        return None

    monkeypatch.setattr(get_bus(), "publish", lost)
    monkeypatch.setattr(get_registry(), "reconcile_interval", INTERVAL)


async def test_subscribers_get_a_change_whose_publish_was_lost(tenant, live_server, lost_publishes):
    campaign, leads = await launched_campaign(tenant.gql, 2)
    ws = await connect(live_server, tenant.gql.token)
    try:
        await ws.subscribe("k", KPIS, {"id": campaign["id"]})
        await ws.subscribe("d", DASH)
        await ws.subscribe("s", STREAM, {"id": campaign["id"]})
        assert (await ws.next("k"))["campaignKpis"]["totals"]["sent"] == 0
        spent0 = (await ws.next("d"))["dashboardKpis"]["totalSpent"]["amount"]
        await asyncio.sleep(INTERVAL * 2.5)  # the hubs settle (their first checks find nothing new)
        assert ws.pending("k") == 0 and ws.pending("s") == 0

        started = time.monotonic()
        r = await ingest(tenant.gql, [sent_event("lost1", "lost1", campaign, leads[0], cost="0.02")])
        assert r["accepted"] == 1, r
        # No bus message: the reconciliation finds the change within an interval (plus a round).
        assert (await ws.next("k", timeout=INTERVAL * 4))["campaignKpis"]["totals"]["sent"] == 1
        assert (await ws.next("s", timeout=INTERVAL * 4))["sendStatusChanged"]["send"]["externalId"] == "lost1"
        dash = await ws.until("d", lambda d: d["dashboardKpis"]["totalSpent"]["amount"] != spent0,
                              timeout=INTERVAL * 4)
        assert float(dash["dashboardKpis"]["totalSpent"]["amount"]) == float(spent0) + 0.02
        assert time.monotonic() - started < INTERVAL * 4
    finally:
        await ws.close()
