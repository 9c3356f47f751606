"""Issue 12 item 2 (days): the credit report's byDay comes from the sends' own queue days, for credits
charged to a wallet and for credits reported on the sends alike.

An integrator-sent campaign (provider `external`, 3 credits per SMS), organization time zone UTC, T0 = 2026-11-20:
  s1 SENT on T0           → 3 credits reported on 2026-11-20
  s2 SENT on T0 + 1 day, reporting 5 credits → 5 on 2026-11-21
  s3 SENT on T0 + 7 days  → 3 on 2026-11-27; s4 FAILED on T0 + 7 days (never sent) → 0
No wallet is charged (the integrator sent them): `credits` is 0 every day, `creditsReported` 3 / 5 / 3.
A range from 2026-11-21 to 2026-11-27 keeps the last two days: reported 5 + 3 = 8.
"""

from tests.helpers import make_leads
from tests.reporting.test_kpis import Events, ingest_ok, launch_with

REPORT = """query($f: CreditConsumptionFilter){ creditConsumption(filter:$f){
  byDay{ day credits creditsReported } totals{ credits creditsReported } } }"""


async def test_by_day_follows_the_sends_queue_days(tenant):
    gql = tenant.gql
    leads = await make_leads(gql, 4)
    c = await launch_with(gql, leads, channels=[{"channel": "SMS", "creditsPerMessage": 3, "provider": "external"}])
    E = Events(c)
    await ingest_ok(gql, E.send("s1", leads[0], "SMS", [("SENT", 1, {})]) +
                    E.send("s2", leads[1], "SMS", [("SENT", 1, {"credits": 5})], day=1) +
                    E.send("s3", leads[2], "SMS", [("SENT", 1, {})], day=7) +
                    E.send("s4", leads[3], "SMS", [("FAILED", 1, {})], day=7))
    d = (await gql(REPORT, {"f": {"campaignIds": [c["id"]]}}))["creditConsumption"]
    assert d["byDay"] == [{"day": "2026-11-20", "credits": 0, "creditsReported": 3},
                          {"day": "2026-11-21", "credits": 0, "creditsReported": 5},
                          {"day": "2026-11-27", "credits": 0, "creditsReported": 3}]
    assert d["totals"] == {"credits": 0, "creditsReported": 11}
    d = (await gql(REPORT, {"f": {"campaignIds": [c["id"]], "dateFrom": "2026-11-21", "dateTo": "2026-11-27"}}))
    assert [(x["day"], x["creditsReported"]) for x in d["creditConsumption"]["byDay"]] == \
        [("2026-11-21", 5), ("2026-11-27", 3)]
    assert d["creditConsumption"]["totals"]["creditsReported"] == 8
