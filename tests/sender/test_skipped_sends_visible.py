"""Issue 12 item 8: recipients the sender skips are counted, listed and pushed.

Hand-computed: a campaign of 8 recipients on SMS where 3 leads have no phone and 1 unsubscribed from SMS
→ 4 queued, 4 skipped (NO_ADDRESS 3, UNSUBSCRIBED 1), in metrics, the credit report, the send log
(`sends(filter:{status: SKIPPED})`) and campaignKpis; a counter rebuild gives the same numbers.
"""


from app.db import execute
from app.delivery import counters
from tests.helpers import at, ingest, make_leads
from tests.sender.conftest import drain
from tests.wsclient import connect
from tests.sender.test_sender import launch, pk

SKIP_FIELDS = "generated skipped skippedByReason{ reason count }"
VIEW = f"""query($id:ID!){{ campaign(id:$id){{
  metrics{{ totals{{ {SKIP_FIELDS} pending sent }} byChannel{{ channel {SKIP_FIELDS} }} }}
  skippedLog: sends(filter:{{status: SKIPPED}}, first: 50){{ totalCount
    edges{{ node{{ status skipReason channel credits recipient{{ id }} }} }} }}
  log: sends(first: 50){{ totalCount }} }} }}"""
REPORT = """query($ids:[ID!]){ creditConsumption(filter:{campaignIds:$ids}){
  rows{ channel targeted processed creditsConsumed skipped skippedByReason{ reason count } } totals{ skipped } } }"""
KPIS = f"""subscription($id: ID!) {{ campaignKpis(campaignId: $id) {{ totals {{ {SKIP_FIELDS} }} }} }}"""


async def test_skips_counted_listed_pushed_and_rebuilt(tenant, live_server):
    gql = tenant.gql
    with_phone = await make_leads(gql, 5, phone="+33600000000")
    without_phone = await make_leads(gql, 3)
    # One lead unsubscribes from SMS (reported by an integrator on another campaign).
    other = await launch(gql, [with_phone[0]], channels=[{"channel": "SMS", "unitCost": "0", "provider": "integrator"}])
    r = await ingest(gql, [
        {"idempotencyKey": "u-sent", "externalId": "u1", "channel": "SMS", "type": "SENT", "occurredAt": at(1),
         "campaignId": other["id"], "leadId": with_phone[0]["id"]},
        {"idempotencyKey": "u-unsub", "externalId": "u1", "channel": "SMS", "type": "UNSUBSCRIBED",
         "occurredAt": at(2)}])
    assert not r["rejected"], r

    c = await launch(gql, with_phone + without_phone,
                      channels=[{"channel": "SMS", "unitCost": "0.05", "creditsPerMessage": 1}])
    top = 'mutation{ creditsTopUp(source: SMS, amount: 100, reason:"test"){ userErrors{ code } } }'
    assert not (await gql(top))["creditsTopUp"]["userErrors"]

    ws = await connect(live_server, gql.token)
    try:
        await ws.subscribe("k", KPIS, {"id": c["id"]})
        first = (await ws.next("k"))["campaignKpis"]["totals"]
        assert first["skipped"] == 0 and first["skippedByReason"] == []

        totals = await drain(campaign_ids=[pk(c["id"])])
        assert totals["queued"] == 4 and totals["skipped"] == 4

        pushed = await ws.until("k", lambda d: d["campaignKpis"]["totals"]["skipped"] == 4)
        assert pushed["campaignKpis"]["totals"]["skippedByReason"] == [
            {"reason": "NO_ADDRESS", "count": 3}, {"reason": "UNSUBSCRIBED", "count": 1}]
        assert pushed["campaignKpis"]["totals"]["generated"] == 4
    finally:
        await ws.close()

    expected_reasons = [{"reason": "NO_ADDRESS", "count": 3}, {"reason": "UNSUBSCRIBED", "count": 1}]

    async def check():
        d = (await gql(VIEW, {"id": c["id"]}))["campaign"]
        t = d["metrics"]["totals"]
        assert (t["generated"], t["skipped"], t["sent"], t["pending"]) == (4, 4, 4, 0)
        assert t["skippedByReason"] == expected_reasons
        sms = next(m for m in d["metrics"]["byChannel"] if m["channel"] == "SMS")
        assert sms["skipped"] == 4 and sms["skippedByReason"] == expected_reasons
        # the send log lists them, filterable by status, with their reason; they carry no credits
        assert d["skippedLog"]["totalCount"] == 4 and d["log"]["totalCount"] == 8
        nodes = [e["node"] for e in d["skippedLog"]["edges"]]
        assert {n["status"] for n in nodes} == {"SKIPPED"} and {n["credits"] for n in nodes} == {0}
        by_lead = {n["recipient"]["id"]: n["skipReason"] for n in nodes}
        assert by_lead == {**{lead["id"]: "NO_ADDRESS" for lead in without_phone},
                           with_phone[0]["id"]: "UNSUBSCRIBED"}
        rep = (await gql(REPORT, {"ids": [c["id"]]}))["creditConsumption"]
        assert rep["rows"] == [{"channel": "SMS", "targeted": 8, "processed": 4, "creditsConsumed": 4, "skipped": 4,
                                "skippedByReason": expected_reasons}]
        assert rep["totals"]["skipped"] == 4

    await check()
    # Rebuildable: wipe the skip counters, rebuild from the sends, same figures.
    await execute("DELETE FROM skip_counter WHERE campaign_id = ?", [pk(c["id"])])
    await execute("UPDATE send_counter SET skipped = 0 WHERE campaign_id = ?", [pk(c["id"])])
    d = (await gql(VIEW, {"id": c["id"]}))["campaign"]
    assert d["metrics"]["totals"]["skipped"] == 0  # the API reads the counters, not the sends
    await counters.rebuild([pk(c["id"])])
    await check()

    # A skipped send never went out: provider events for it are refused, the counts stay.
    ext = f"cp-{await _a_skipped_job(pk(c['id']))}"
    r = await ingest(gql, [{"idempotencyKey": "late", "externalId": ext, "channel": "SMS", "type": "DELIVERED",
                            "occurredAt": at(3)}])
    assert [x["code"] for x in r["rejected"]] == ["ILLEGAL_TRANSITION"]
    await check()


async def _a_skipped_job(campaign_id: int) -> int:
    from models.credits import SendJob

    return (await SendJob.filter(campaign_id=campaign_id, state="SKIPPED").order_by("id").first()).id
