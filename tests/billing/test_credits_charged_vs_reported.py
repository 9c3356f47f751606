"""Issue 12 item 2 (naming part): credits charged to a wallet vs credits reported on the sends.

An integrator-sent campaign (provider `external`, 3 credits per SMS): s1 SENT (carries the channel's 3),
s2 SENT reporting 5 credits, s3 FAILED before it was sent (0). No wallet is charged for messages the
product did not send itself, so the report's creditsConsumed is 0 while creditsReported is 3 + 5 = 8,
the same figure as metrics.totals.credits.
"""

from tests.helpers import metrics
from tests.reporting.test_kpis import Events, ingest_ok, launch_with
from tests.helpers import make_leads

REPORT = """query($f: CreditConsumptionFilter){ creditConsumption(filter:$f){
  rows{ campaignName channel processed creditsConsumed creditsReported }
  totals{ processed credits creditsReported } } }"""


async def test_credits_charged_and_reported_are_named_apart(tenant):
    gql = tenant.gql
    leads = await make_leads(gql, 3)
    c = await launch_with(gql, leads, channels=[{"channel": "SMS", "creditsPerMessage": 3, "provider": "external"}])
    E = Events(c)
    await ingest_ok(gql, E.send("s1", leads[0], "SMS", [("SENT", 1, {})]) +
                    E.send("s2", leads[1], "SMS", [("SENT", 1, {"credits": 5})]) +
                    E.send("s3", leads[2], "SMS", [("FAILED", 1, {})]))
    m = await metrics(gql, c["id"])
    assert m["totals"]["credits"] == 8
    d = (await gql(REPORT, {"f": {"campaignIds": [c["id"]]}}))["creditConsumption"]
    assert [(r["channel"], r["processed"], r["creditsConsumed"], r["creditsReported"]) for r in d["rows"]] == \
        [("SMS", 2, 0, 8)]
    assert d["totals"] == {"processed": 2, "credits": 0, "creditsReported": 8}
