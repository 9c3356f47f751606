"""The `leadsKpis(scope)` subscription over a real websocket (SPEC §10, §12): the current value
first, then it moves when a step is marked done, an email is sent, a reply arrives and when the
scheduler tick passes local midnight; a center-scoped subscriber sees only its leads' figures, and
a unit outside its scope is refused."""

from datetime import datetime, timedelta, timezone

from tests.helpers import create_campaign, ingest, mutate, upsert_leads
from tests.wsclient import connect

SUB = """subscription($s: ID) { leadsKpis(scope: $s) { today all { value } active { value } engaged { value }
  onTrack { value } offTrack { value } actionRequired { value } } }"""
STEPS = "mutation($c:ID!,$s:[StepInput!]!){ stepsSet(campaignId:$c, steps:$s){ userErrors{ code } } }"
ACTIONS = "{ actionRequired { id leadName step { kind } } }"
DONE = "mutation($r:ID!){ stepMarkDone(recipientStepId:$r, action:REQUEST_SENT){ alreadyDone userErrors{ code } } }"
EVENTS = "mutation($e:[OutreachEventInput!]!){ outreachEventsIngest(events:$e){ accepted duplicates } }"


def _v(data: dict) -> dict:
    k = data["leadsKpis"]
    return {n: k[n]["value"] for n in ("all", "active", "engaged", "onTrack", "offTrack", "actionRequired")}


async def _setup(tenant):
    from app.outreach.service import tick

    gql = tenant.gql
    zone = await tenant.zone()
    c1, c2 = await tenant.center(zone), await tenant.center(zone)
    leads = await upsert_leads(gql, [
        {"externalId": "a", "name": "A", "email": "a@x.test", "centerId": c1},
        {"externalId": "b", "name": "B", "email": "b@x.test", "centerId": c2}])
    campaign = await create_campaign(gql, channels=[{"channel": "EMAIL", "provider": "external"}])
    assert not (await gql(STEPS, {"c": campaign["id"], "s": [
        {"kind": "EMAIL", "dayOffset": 0}, {"kind": "LINKEDIN_REQUEST", "dayOffset": 0},
        {"kind": "LINKEDIN_MESSAGE", "dayOffset": 1}]}))["stepsSet"]["userErrors"]
    await gql("mutation($c:ID!,$i:AudienceInput!){ audienceSet(campaignId:$c, input:$i){ userErrors{ code } } }",
              {"c": campaign["id"], "i": {"leadIds": [x["id"] for x in leads]}})
    await tick(datetime.now(timezone.utc))  # the clock starts today
    assert not (await mutate(gql, "campaignLaunch", campaign["id"]))["userErrors"]
    return campaign, leads, c1, c2


async def test_leads_kpis_subscription_moves_live_and_respects_scope(tenant, live_server):
    from app.outreach.service import tick

    campaign, leads, c1, c2 = await _setup(tenant)
    owner = tenant.gql
    center = await tenant.member("MANAGER", scope=c1)
    ws = await connect(live_server, owner.token)
    wc = await connect(live_server, center.token)
    try:
        await ws.subscribe("k", SUB, {"s": None})
        first = await ws.next("k")
        today = first["leadsKpis"]["today"]
        # Current value first: both LinkedIn requests (day 0) are action required.
        assert _v(first) == {"all": 2, "active": 2, "engaged": 0, "onTrack": 2, "offTrack": 0, "actionRequired": 2}
        await wc.subscribe("c", SUB, {"s": None})
        assert _v(await wc.next("c")) == {"all": 1, "active": 1, "engaged": 0, "onTrack": 1, "offTrack": 0,
                                          "actionRequired": 1}
        # A unit outside the center user's scope: refused (NOT_FOUND), nothing leaks.
        await wc.subscribe("x", SUB, {"s": c2})
        msg = await wc.message("x")
        assert msg["type"] == "error" or msg["payload"].get("errors"), msg
        assert "leadsKpis" not in str(msg.get("payload", {}).get("data") or "")

        # A step marked done (A's request): action required 2 → 1, for both subscribers.
        a_req = [x for x in (await owner(ACTIONS))["actionRequired"] if x["leadName"] == "A"][0]
        assert not (await owner(DONE, {"r": a_req["id"]}))["stepMarkDone"]["alreadyDone"]
        assert _v(await ws.until("k", lambda d: d["leadsKpis"]["actionRequired"]["value"] == 1))["engaged"] == 0
        await wc.until("c", lambda d: d["leadsKpis"]["actionRequired"]["value"] == 0)

        # An email sent (A's, reported by the external provider): engaged 0 → 1.
        r = await ingest(owner, [{"idempotencyKey": "s-a", "externalId": "m-a", "channel": "EMAIL", "type": "SENT",
                                  "occurredAt": datetime.now(timezone.utc).isoformat(),
                                  "campaignId": campaign["id"], "leadId": leads[0]["id"]}])
        assert r["accepted"] == 1, r
        await ws.until("k", lambda d: d["leadsKpis"]["engaged"]["value"] == 1)
        await wc.until("c", lambda d: d["leadsKpis"]["engaged"]["value"] == 1)

        # A reply (B): its sequence stops, its request is no longer action required: 1 → 0.
        ev = [{"idempotencyKey": "rep-b", "type": "REPLIED", "campaignId": campaign["id"],
               "leadId": leads[1]["id"], "occurredAt": datetime.now(timezone.utc).isoformat()}]
        assert (await owner(EVENTS, {"e": ev}))["outreachEventsIngest"]["accepted"] == 1
        got = _v(await ws.until("k", lambda d: d["leadsKpis"]["actionRequired"]["value"] == 0))
        assert got == {"all": 2, "active": 2, "engaged": 1, "onTrack": 2, "offTrack": 0, "actionRequired": 0}

        # Local midnight passes (the scheduler tick): A's LinkedIn message (day 1) is due.
        moved = await tick(datetime.now(timezone.utc) + timedelta(days=1))
        assert moved
        data = await ws.until("k", lambda d: d["leadsKpis"]["today"] != today)
        assert _v(data)["actionRequired"] == 1
        cdata = await wc.until("c", lambda d: d["leadsKpis"]["today"] != today)
        assert _v(cdata) == {"all": 1, "active": 1, "engaged": 1, "onTrack": 1, "offTrack": 0, "actionRequired": 1}
    finally:
        await ws.close()
        await wc.close()


async def test_leads_kpis_subscription_of_another_organization_sees_nothing_of_it(tenant, tenant_factory,
                                                                                 live_server):
    from app.outreach.service import tick

    await _setup(tenant)
    other = await tenant_factory()
    ws = await connect(live_server, other.gql.token)
    try:
        await ws.subscribe("k", SUB, {"s": None})
        first = await ws.next("k")
        assert _v(first) == {"all": 0, "active": 0, "engaged": 0, "onTrack": 0, "offTrack": 0,
                                          "actionRequired": 0}
        # The first organization's unit id: not found for the other organization.
        zone = await tenant.zone()
        await ws.subscribe("z", SUB, {"s": zone})
        msg = await ws.message("z")
        assert msg["type"] == "error" or msg["payload"].get("errors"), msg
        await tick(datetime.now(timezone.utc) + timedelta(days=1))
        data = await ws.until("k", lambda d: d["leadsKpis"]["today"] != first["leadsKpis"]["today"])
        assert _v(data)["all"] == 0
    finally:
        await ws.close()
