"""Interop with a third-party client, tenant isolation under load, slow consumers,
one snapshot per change, metrics."""

import asyncio

import httpx
from gql import Client, gql
from gql.transport.websockets import WebsocketsTransport

from subscriptions.hubs import get_registry
from tests.helpers import ingest, launched_campaign
from tests.subscriptions.test_live import DASH, KPIS, STREAM, sent_event
from tests.wsclient import WsClient, connect


async def test_gql_python_client_interop(tenant, live_server):
    campaign, leads = await launched_campaign(tenant.gql, 2)
    transport = WebsocketsTransport(
        url=live_server.replace("http", "ws") + "/graphql",
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
        init_payload={"authorization": f"Bearer {tenant.gql.token}"},
    )
    seen = []
    async with Client(transport=transport) as session:
        subscription = gql("subscription($id: ID!) { campaignKpis(campaignId: $id) { totals { sent } } }")
        async for result in session.subscribe(subscription, variable_values={"id": campaign["id"]}):
            seen.append(result["campaignKpis"]["totals"]["sent"])
            if len(seen) == 1:
                await ingest(tenant.gql, [sent_event("g1", "gm1", campaign, leads[0])])
            if seen[-1] == 1:
                break
    assert seen[0] == 0 and seen[-1] == 1


async def test_no_foreign_or_out_of_scope_messages_while_thousands_of_events_flow(tenant, tenant_factory, live_server):
    zone_a = await tenant.zone()
    center_a = await tenant.center(zone_a)
    zone_b = await tenant.zone()
    center_b = await tenant.center(zone_b)
    zone_user = await tenant.member("ANALYST", scope=zone_a)
    mine, my_leads = await launched_campaign(tenant.gql, 1, {"centerId": center_a}, ownerUnitId=center_a)
    other_zone, oz_leads = await launched_campaign(tenant.gql, 1, {"centerId": center_b}, ownerUnitId=center_b)
    other = await tenant_factory()
    foreign, f_leads = await launched_campaign(other.gql, 1)

    ws = await connect(live_server, zone_user.token)
    try:
        await ws.subscribe("d", DASH)
        await ws.subscribe("k", KPIS, {"id": mine["id"]})
        await ws.subscribe("s", STREAM, {"id": mine["id"]})
        await ws.next("d")
        await ws.next("k")
        # the zone user may not even subscribe to the other zone's campaign
        await ws.subscribe("x", KPIS, {"id": other_zone["id"]})
        assert (await ws.message("x"))["payload"]["errors"][0]["message"] == "campaign not found"

        for batch in range(2):
            await ingest(other.gql, [sent_event(f"F{batch}-{i}", f"F{batch}-{i}", foreign, f_leads[0])
                                     for i in range(1000)])
            await ingest(tenant.gql, [sent_event(f"Z{batch}-{i}", f"Z{batch}-{i}", other_zone, oz_leads[0])
                                      for i in range(500)])
        await asyncio.sleep(1.0)
        assert ws.pending("d") == 0 and ws.pending("k") == 0 and ws.pending("s") == 0
        await ingest(tenant.gql, [sent_event("own", "own", mine, my_leads[0])])
        change = (await ws.next("s"))["sendStatusChanged"]
        assert change["send"]["externalId"] == "own"
        assert (await ws.next("k"))["campaignKpis"]["totals"]["sent"] == 1
    finally:
        await ws.close()


async def test_a_stalled_subscriber_delays_nobody_and_holds_one_value(tenant, live_server):
    campaign, leads = await launched_campaign(tenant.gql, 1)
    stalled = WsClient(live_server)
    await stalled.connect(max_size=2**20, max_queue=1)
    await stalled.init(tenant.gql.token)
    stalled.stall()  # never reads again: TCP back-pressure reaches the server
    await stalled.subscribe("k", KPIS, {"id": campaign["id"]})
    healthy = await connect(live_server, tenant.gql.token)
    try:
        await healthy.subscribe("k", KPIS, {"id": campaign["id"]})
        await healthy.next("k")
        for i in range(60):
            await ingest(tenant.gql, [sent_event(f"sl{i}", f"sl{i}", campaign, leads[0], minute=i)])
        await healthy.until("k", lambda d: d["campaignKpis"]["totals"]["generated"] == 60, timeout=5)
        hub = get_registry().hubs[("campaign", int(__import__("base64").b64decode(campaign["id"]).decode().split(":")[1]))]
        assert all(s.pending() <= 1 for s in hub.subs)  # KPI mailboxes keep only the latest value
    finally:
        await healthy.close()
        await stalled.close()


async def test_a_stream_subscriber_that_falls_behind_is_closed_with_a_retryable_code(tenant, live_server):
    registry = get_registry()
    saved = registry.stream_limit
    registry.stream_limit = 20
    campaign, leads = await launched_campaign(tenant.gql, 1)
    slow = WsClient(live_server)
    await slow.connect(max_queue=1)
    await slow.init(tenant.gql.token)
    slow.stall()
    try:
        await slow.subscribe("s", STREAM, {"id": campaign["id"]})
        await asyncio.sleep(0.3)
        for i in range(4):
            await ingest(tenant.gql, [sent_event(f"ov{i}-{j}", f"ov{i}-{j}", campaign, leads[0]) for j in range(400)])
        code, reason = await slow.wait_closed(timeout=10)
        assert code == 4008 and "after" in reason
    finally:
        registry.stream_limit = saved
        await slow.close()


async def test_one_snapshot_per_change_whatever_the_number_of_subscribers(tenant, live_server):
    from app import metrics

    campaign, leads = await launched_campaign(tenant.gql, 1)
    clients = [await connect(live_server, tenant.gql.token) for _ in range(3)]
    try:
        for i, c in enumerate(clients):
            for j in range(10):
                await c.subscribe(f"k{j}", KPIS, {"id": campaign["id"]})
        for c in clients:
            for j in range(10):
                await c.next(f"k{j}")
        await asyncio.sleep(0.5)
        before = metrics.SNAPSHOTS.labels("campaign")._value.get()
        await ingest(tenant.gql, [sent_event("one", "one", campaign, leads[0])])
        for c in clients:
            for j in range(10):
                await c.until(f"k{j}", lambda d: d["campaignKpis"]["totals"]["sent"] == 1)
        assert metrics.SNAPSHOTS.labels("campaign")._value.get() - before == 1
    finally:
        for c in clients:
            await c.close()


async def test_alike_subscribers_share_one_execution_per_change(tenant, live_server):
    """graph/core/execution.py: one execution per event for subscribers with the same document, variables
    and access; another role or another document is executed on its own, with the same figures."""
    from app import metrics

    campaign, leads = await launched_campaign(tenant.gql, 1)
    manager = await tenant.member("MANAGER")
    owners = [await connect(live_server, tenant.gql.token) for _ in range(3)]
    other = await connect(live_server, manager.token)
    narrow = "subscription($id: ID!) { campaignKpis(campaignId: $id) { totals { sent } } }"
    try:
        for c in owners:
            for j in range(10):
                await c.subscribe(f"k{j}", KPIS, {"id": campaign["id"]})
        await owners[0].subscribe("narrow", narrow, {"id": campaign["id"]})
        await other.subscribe("m", KPIS, {"id": campaign["id"]})
        for c in owners:
            for j in range(10):
                await c.next(f"k{j}")
        await owners[0].next("narrow")
        await other.next("m")
        await asyncio.sleep(0.5)
        direct = metrics.DIRECT_FRAMES._value.get()
        executed = metrics.SHARED_EXECUTIONS.labels("executed")._value.get()
        reused = metrics.SHARED_EXECUTIONS.labels("reused")._value.get()

        await ingest(tenant.gql, [sent_event("share", "share", campaign, leads[0])])
        got = [await c.until(f"k{j}", lambda d: d["campaignKpis"]["totals"]["sent"] == 1)
               for c in owners for j in range(10)]
        mine = await other.until("m", lambda d: d["campaignKpis"]["totals"]["sent"] == 1)
        assert (await owners[0].until("narrow", lambda d: d["campaignKpis"]["totals"]["sent"] == 1)) == {
            "campaignKpis": {"totals": {"sent": 1}}}
        assert all(g == got[0] for g in got) and mine == got[0]
        # owners' KPIS, the manager's KPIS, the owner's narrow document: three executions; 29 reused
        assert metrics.SHARED_EXECUTIONS.labels("executed")._value.get() - executed == 3
        assert metrics.SHARED_EXECUTIONS.labels("reused")._value.get() - reused == 29
        # and every update went out as a ready frame
        assert metrics.DIRECT_FRAMES._value.get() - direct == 32
    finally:
        for c in [*owners, other]:
            await c.close()


async def test_a_subscriber_that_left_is_freed_while_others_keep_the_hub(tenant, live_server):
    """Nothing the first subscriber's task started (the organization's feed, the topic's hub)
    keeps its connection alive after it left (a contextvar once did)."""
    import gc
    import weakref

    from graph.core import Context

    campaign, _ = await launched_campaign(tenant.gql, 1)
    manager = await tenant.member("MANAGER")
    first = await connect(live_server, manager.token)  # creates the feed and the hub
    await first.subscribe("k", KPIS, {"id": campaign["id"]})
    await first.next("k")
    other = await connect(live_server, tenant.gql.token)  # keeps them running
    await other.subscribe("k", KPIS, {"id": campaign["id"]})
    await other.next("k")
    try:
        [context] = [o for o in gc.get_objects() if type(o) is Context and o.ws_handler is not None
                     and o.principal_ is not None and o.principal_.role.value == "MANAGER"]
        gone = weakref.ref(context)
        del context
        await first.close()
        for _ in range(50):
            await asyncio.sleep(0.05)
            gc.collect()
            if gone() is None:
                break
        assert gone() is None, "the first subscriber's connection is still referenced"
    finally:
        await other.close()


async def test_many_subscribers_of_one_send_stream_get_every_change(tenant, live_server):
    """Stream events are shared objects too (their `send { recipient }` resolvers are async)."""
    campaign, leads = await launched_campaign(tenant.gql, 3)
    clients = [await connect(live_server, tenant.gql.token) for _ in range(2)]
    try:
        for c in clients:
            for j in range(5):
                await c.subscribe(f"s{j}", STREAM, {"id": campaign["id"]})
        await asyncio.sleep(0.5)
        from app import metrics

        direct = metrics.DIRECT_FRAMES._value.get()
        await ingest(tenant.gql, [sent_event(f"st{i}", f"stm{i}", campaign, leads[i]) for i in range(3)])
        for c in clients:
            for j in range(5):
                got = [(await c.next(f"s{j}"))["sendStatusChanged"] for _ in range(3)]
                assert [g["send"]["externalId"] for g in got] == ["stm0", "stm1", "stm2"]
                assert all(g["send"]["recipient"]["name"] and g["status"] == "SENT" for g in got)
        assert metrics.DIRECT_FRAMES._value.get() - direct == 30  # 10 subscriptions × 3 changes
    finally:
        for c in clients:
            await c.close()


async def test_metrics_endpoint_counts_sockets_and_subscriptions(tenant, live_server):
    ws = await connect(live_server, tenant.gql.token)
    try:
        await ws.subscribe("d", DASH)
        await ws.next("d")
        async with httpx.AsyncClient() as client:
            text = (await client.get(live_server + "/metrics")).text
        assert "pulse_ws_connections" in text and "pulse_subscriptions_active" in text
        assert "pulse_subscription_messages_total" in text
        gauge = [line for line in text.splitlines() if line.startswith("pulse_ws_connections ")]
        assert float(gauge[0].split()[1]) >= 1
    finally:
        await ws.close()
