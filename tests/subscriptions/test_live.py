"""Subscriptions over a real websocket against the running app (SPEC §12)."""

import asyncio

from tests.helpers import at, create_campaign, ingest, launched_campaign, mutate
from tests.wsclient import WsClient, connect

KPIS = """subscription($id: ID!) { campaignKpis(campaignId: $id) {
  campaignId status statusReason reach totals { generated sent delivered read cost { amount } }
  byChannel { channel sent } budget { spent { amount } utilization loggedSpend { amount } } } }"""
DASH = """subscription($scope: ID) { dashboardKpis(scope: $scope) {
  activeCampaigns totalReach totalSpent { amount } totalBudget { amount } budgetUtilization } }"""
ALERTS = "subscription { budgetAlerts { threshold utilization campaign { id } } }"
STREAM = """subscription($id: ID!, $after: String, $f: SendStreamFilter) {
  sendStatusChanged(campaignId: $id, after: $after, filter: $f) {
    cursor status channel send { externalId status recipient { name } cost { amount } } } }"""


def sent_event(key, ext, campaign, lead, minute=1, type_="SENT", channel="EMAIL", **kw):
    e = {"idempotencyKey": key, "externalId": ext, "channel": channel, "type": type_, "occurredAt": at(minute),
         "campaignId": campaign["id"], "leadId": lead["id"]}
    e.update(kw)
    return e


async def test_campaign_kpis_snapshot_first_then_changes(tenant, live_server):
    campaign, leads = await launched_campaign(tenant.gql, 3, budget="10")
    ws = await connect(live_server, tenant.gql.token)
    try:
        await ws.subscribe("k", KPIS, {"id": campaign["id"]})
        first = (await ws.next("k"))["campaignKpis"]
        assert first["status"] == "LIVE" and first["totals"]["generated"] == 0 and first["reach"] == 3

        await ingest(tenant.gql, [sent_event("s1", "m1", campaign, leads[0]),
                                  sent_event("s2", "m2", campaign, leads[1], channel="SMS")])
        data = await ws.until("k", lambda d: d["campaignKpis"]["totals"]["sent"] == 2)
        kpis = data["campaignKpis"]
        assert kpis["totals"]["cost"]["amount"] == "0.06"
        assert {c["channel"]: c["sent"] for c in kpis["byChannel"]} == {"EMAIL": 1, "SMS": 1}

        await tenant.gql('mutation($c:ID!){ spendLog(input:{campaignId:$c, amount:"2.5", category:"print"}){ userErrors{ code } } }',
                         {"c": campaign["id"]})
        data = await ws.until("k", lambda d: d["campaignKpis"]["budget"]["loggedSpend"]["amount"] == "2.50")
        assert data["campaignKpis"]["budget"]["spent"]["amount"] == "2.56"

        await mutate(tenant.gql, "campaignPause", campaign["id"])
        data = await ws.until("k", lambda d: d["campaignKpis"]["status"] == "PAUSED")
        assert data["campaignKpis"]["statusReason"] == "MANUAL"
        await mutate(tenant.gql, "campaignResume", campaign["id"])
        await ws.until("k", lambda d: d["campaignKpis"]["status"] == "LIVE")
    finally:
        await ws.close()


async def test_updates_are_coalesced_but_the_last_value_is_the_final_state(tenant, live_server):
    campaign, leads = await launched_campaign(tenant.gql, 5)
    ws = await connect(live_server, tenant.gql.token)
    try:
        await ws.subscribe("k", KPIS, {"id": campaign["id"]})
        await ws.next("k")
        for i in range(20):  # 20 quick changes
            await ingest(tenant.gql, [sent_event(f"c{i}", f"cm{i}", campaign, leads[i % 5])])
        data = await ws.until("k", lambda d: d["campaignKpis"]["totals"]["sent"] == 20, timeout=15)
        assert data["campaignKpis"]["totals"]["generated"] == 20
        await asyncio.sleep(0.6)
        received = ws.pending("k")
        assert received <= 2  # nothing lagging behind the final value
    finally:
        await ws.close()


async def test_a_send_that_stays_pending_still_reaches_kpi_subscribers(tenant, live_server):
    campaign, leads = await launched_campaign(tenant.gql, 2)
    ws = await connect(live_server, tenant.gql.token)
    try:
        await ws.subscribe("k", KPIS, {"id": campaign["id"]})
        assert (await ws.next("k"))["campaignKpis"]["totals"]["generated"] == 0
        await ingest(tenant.gql, [sent_event("pq1", "pq1", campaign, leads[0], type_="QUEUED")])
        data = await ws.until("k", lambda d: d["campaignKpis"]["totals"]["generated"] == 1, timeout=5)
        assert data["campaignKpis"]["totals"]["sent"] == 0
    finally:
        await ws.close()


async def test_dashboard_kpis_live_and_scoped(tenant, tenant_factory, live_server):
    other = await tenant_factory()
    ws = await connect(live_server, tenant.gql.token)
    try:
        await ws.subscribe("d", DASH)
        first = (await ws.next("d"))["dashboardKpis"]
        assert first["activeCampaigns"] == 0
        campaign, leads = await launched_campaign(tenant.gql, 2, budget="100")
        data = await ws.until("d", lambda d: d["dashboardKpis"]["activeCampaigns"] == 1)
        assert data["dashboardKpis"]["totalReach"] == 2
        # another organization's activity never reaches this subscriber
        foreign, foreign_leads = await launched_campaign(other.gql, 2)
        await ingest(other.gql, [sent_event(f"f{i}", f"fm{i}", foreign, foreign_leads[0]) for i in range(50)])
        await asyncio.sleep(0.8)
        while ws.pending("d"):
            assert (await ws.next("d"))["dashboardKpis"]["activeCampaigns"] == 1
    finally:
        await ws.close()


async def test_budget_alerts_stream_each_threshold_once(tenant, live_server):
    campaign, _ = await launched_campaign(tenant.gql, 1, budget="10")
    ws = await connect(live_server, tenant.gql.token)
    try:
        await ws.subscribe("a", ALERTS)
        await asyncio.sleep(0.3)
        log = 'mutation($c:ID!,$a:Decimal!){ spendLog(input:{campaignId:$c, amount:$a, category:"x"}){ userErrors{ code } } }'
        await tenant.gql(log, {"c": campaign["id"], "a": "8.5"})   # 85 % → 80
        first = (await ws.next("a"))["budgetAlerts"]
        assert first["threshold"] == 80 and first["campaign"]["id"] == campaign["id"]
        await tenant.gql(log, {"c": campaign["id"], "a": "2"})     # 105 % → 90 and 100
        got = sorted([(await ws.next("a"))["budgetAlerts"]["threshold"] for _ in range(2)])
        assert got == [90, 100]
        await tenant.gql(log, {"c": campaign["id"], "a": "1"})     # nothing new
        await asyncio.sleep(0.6)
        assert ws.pending("a") == 0
    finally:
        await ws.close()


async def test_send_stream_filters_and_resumes_from_a_cursor(tenant, live_server):
    campaign, leads = await launched_campaign(tenant.gql, 3)
    ws = await connect(live_server, tenant.gql.token)
    try:
        await ws.subscribe("s", STREAM, {"id": campaign["id"]})
        await asyncio.sleep(0.3)
        await ingest(tenant.gql, [sent_event("q1", "x1", campaign, leads[0])])
        first = (await ws.next("s"))["sendStatusChanged"]
        assert first["status"] == "SENT" and first["send"]["externalId"] == "x1"
        assert first["send"]["recipient"]["name"] == "Lead " + first["send"]["recipient"]["name"].split(" ", 1)[1]
        cursor = first["cursor"]
    finally:
        await ws.close()

    # while disconnected: three more changes
    await ingest(tenant.gql, [sent_event("q2", "x1", campaign, leads[0], 2, "DELIVERED"),
                              sent_event("q3", "x2", campaign, leads[1], 3, "SENT", channel="SMS"),
                              sent_event("q4", "x3", campaign, leads[2], 4, "FAILED", reason="bad number")])
    ws = await connect(live_server, tenant.gql.token)
    try:
        await ws.subscribe("s", STREAM, {"id": campaign["id"], "after": cursor})
        replay = [(await ws.next("s"))["sendStatusChanged"] for _ in range(3)]
        # one batch: its changes come in send order (the order of one batch is not the order of its events)
        assert sorted((r["send"]["externalId"], r["status"]) for r in replay) == [
            ("x1", "DELIVERED"), ("x2", "SENT"), ("x3", "FAILED")]
        assert [r["cursor"] for r in replay] == sorted((r["cursor"] for r in replay),
                                                       key=lambda c: int(__import__("base64").b64decode(c).split(b":")[1]))
        # then live, filtered
        await ws.subscribe("f", STREAM, {"id": campaign["id"], "f": {"channel": "SMS"}})
        await asyncio.sleep(0.3)
        await ingest(tenant.gql, [sent_event("q5", "x2", campaign, leads[1], 5, "DELIVERED", channel="SMS"),
                                  sent_event("q6", "x1", campaign, leads[0], 6, "OPENED")])
        only_sms = (await ws.next("f"))["sendStatusChanged"]
        assert only_sms["channel"] == "SMS" and only_sms["status"] == "DELIVERED"
        live = [(await ws.next("s"))["sendStatusChanged"]["send"]["externalId"] for _ in range(2)]
        assert sorted(live) == ["x1", "x2"]
        await asyncio.sleep(0.5)
        assert ws.pending("f") == 0
    finally:
        await ws.close()


async def test_foreign_campaign_is_not_found(tenant, tenant_factory, live_server):
    other = await tenant_factory()
    foreign = await create_campaign(other.gql)
    ws = await connect(live_server, tenant.gql.token)
    try:
        await ws.subscribe("x", KPIS, {"id": foreign["id"]})
        message = await ws.message("x")
        # an execution error: `next` with errors and no data (exactly like a missing id), then `complete`
        assert message["type"] in ("next", "error")
        errors = message["payload"]["errors"] if message["type"] == "next" else message["payload"]
        assert errors[0]["message"] == "campaign not found"
        assert message["type"] == "error" or message["payload"].get("data") is None
        await ws.subscribe("y", KPIS, {"id": "Q2FtcGFpZ246OTk5OTk5"})  # Campaign:999999, never existed
        missing = await ws.message("y")
        assert missing["payload"] == message["payload"]
    finally:
        await ws.close()


async def test_close_codes(tenant, live_server):
    bad = WsClient(live_server)
    await bad.connect()
    await bad.init("cp_not_a_token", expect_ack=False)
    assert (await bad.wait_closed())[0] == 4403

    missing = WsClient(live_server)
    await missing.connect()
    await missing.init(None, expect_ack=False)
    assert (await missing.wait_closed())[0] == 4403

    early = WsClient(live_server)
    await early.connect()
    await early.send({"id": "1", "type": "subscribe", "payload": {"query": DASH}})
    assert (await early.wait_closed())[0] == 4401

    twice = WsClient(live_server)
    await twice.connect()
    await twice.init(tenant.gql.token)
    await twice.send({"type": "connection_init", "payload": {"authorization": f"Bearer {tenant.gql.token}"}})
    assert (await twice.wait_closed())[0] == 4429

    dup = await connect(live_server, tenant.gql.token)
    await dup.subscribe("same", DASH)
    await dup.subscribe("same", DASH)
    assert (await dup.wait_closed())[0] == 4409


async def test_revoking_a_token_closes_its_subscriptions(tenant, live_server):
    analyst = await tenant.member("ANALYST")
    ws = await connect(live_server, analyst.token)
    await ws.subscribe("d", DASH)
    await ws.next("d")
    tokens = await analyst("{ tokens { edges { node { id } } } }")
    await tenant.gql("mutation($id:ID!){ tokenRevoke(id:$id){ userErrors{ code } } }",
                     {"id": tokens["tokens"]["edges"][0]["node"]["id"]})
    code, _ = await ws.wait_closed(timeout=8)
    assert code == 4403


async def test_ping_pong(tenant, live_server):
    ws = WsClient(live_server)
    await ws.connect()
    await ws.init(tenant.gql.token)
    ws.stall()
    await ws.send({"type": "ping"})
    import json
    reply = json.loads(await asyncio.wait_for(ws.ws.recv(), 5))
    assert reply["type"] == "pong"
    await ws.close()


async def test_init_timeout_subscription_cap_and_origins(app, tenant, live_server):
    from datetime import timedelta

    import websockets

    view = app.state.graphql
    saved_timeout, saved_cap = view.connection_init_wait_timeout, view.max_subscriptions_per_connection
    view.connection_init_wait_timeout, view.max_subscriptions_per_connection = timedelta(seconds=0.5), 3
    try:
        silent = WsClient(live_server)
        await silent.connect()
        assert (await silent.wait_closed(timeout=5))[0] == 4408  # no connection_init in time

        ws = await connect(live_server, tenant.gql.token)
        for i in range(3):
            await ws.subscribe(f"d{i}", DASH)
            await ws.next(f"d{i}")
        await ws.subscribe("d3", DASH)
        refused = await ws.message("d3")
        assert refused["type"] == "error" and "limit" in refused["payload"][0]["message"].lower()
        await ws.close()
    finally:
        view.connection_init_wait_timeout, view.max_subscriptions_per_connection = saved_timeout, saved_cap

    url = live_server.replace("http://", "ws://") + "/graphql"
    try:
        await websockets.connect(url, subprotocols=["graphql-transport-ws"], origin="https://evil.example")
        raised = False
    except websockets.InvalidStatus as exc:
        raised = exc.response.status_code == 403
    assert raised, "a cross-origin page that is not allowed must be refused"
    same = await websockets.connect(url, subprotocols=["graphql-transport-ws"], origin=live_server)
    await same.close()
