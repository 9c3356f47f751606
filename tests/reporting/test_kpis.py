"""KPI arithmetic (SPEC §4 counters, §5 dashboard, §6 budget, §7 insights).

Every expected number below is worked out by hand from a small explicit
scenario; nothing re-implements the product's formulas.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from tests.helpers import at, create_campaign, ingest, make_leads, metrics, mutate, upsert_leads

# ---------------------------------------------------------------- helpers


def money(m: dict) -> Decimal:
    return Decimal(m["amount"])


async def launch_with(gql, leads: list[dict], **overrides) -> dict:
    """Create a campaign with exactly these leads as audience, and launch it."""
    campaign = await create_campaign(gql, **overrides)
    d = await gql("mutation($c:ID!,$i:AudienceInput!){ audienceSet(campaignId:$c, input:$i){ userErrors{ code message } } }",
                  {"c": campaign["id"], "i": {"leadIds": [lead["id"] for lead in leads]}})
    assert not d["audienceSet"]["userErrors"], d
    r = await mutate(gql, "campaignLaunch", campaign["id"])
    assert not r["userErrors"] and r["campaign"]["status"] == "LIVE", r
    return r["campaign"]


class Events:
    """Builds SendEventInputs of one campaign with unique keys."""

    def __init__(self, campaign: dict):
        self.campaign = campaign
        self.n = 0

    def send(self, ext: str, lead: dict, channel: str, steps: list, *, day: int = 0) -> list[dict]:
        """steps: [(type, minute, extra)]; the first event names the send's context."""
        out = []
        for i, (type_, minute, extra) in enumerate(steps):
            self.n += 1
            e = {"idempotencyKey": f"{self.campaign['id']}-{self.n}", "externalId": f"{self.campaign['id']}-{ext}",
                 "channel": channel, "type": type_, "occurredAt": at(day * 1440 + minute), **extra}
            if i == 0:
                e.update(campaignId=self.campaign["id"], leadId=lead["id"])
            out.append(e)
        return out


async def ingest_ok(gql, events: list[dict]) -> None:
    r = await ingest(gql, events)
    assert r["rejected"] == [] and r["userErrors"] == [] and r["accepted"] == len(events), r


BUDGET_Q = """query($id:ID!){ campaign(id:$id){ budget{
  allocated{ amount currency } spent{ amount } remaining{ amount } utilization loggedSpend{ amount }
  byChannel{ channel cost{ amount } }
  spendEntries(first: 50){ totalCount edges{ node{ id amount{ amount } category note channel reverses loggedBy } } }
  alerts{ threshold spent{ amount } budget{ amount } }
} } }"""


async def budget(gql, campaign_id: str) -> dict:
    return (await gql(BUDGET_Q, {"id": campaign_id}))["campaign"]["budget"]


SPEND_M = """mutation($i:SpendLogInput!){ spendLog(input:$i){ entry{ id amount{ amount } reverses }
  campaign{ budget{ spent{ amount } } } alerts{ threshold } userErrors{ field code message } } }"""


async def spend(gql, campaign_id: str, amount: str, reverses: str | None = None, **extra) -> dict:
    inp = {"campaignId": campaign_id, "amount": amount, "category": extra.pop("category", "media"), **extra}
    if reverses:
        inp["reverses"] = reverses
    return (await gql(SPEND_M, {"i": inp}))["spendLog"]


async def spend_ok(gql, campaign_id: str, amount: str, reverses: str | None = None, **extra) -> dict:
    r = await spend(gql, campaign_id, amount, reverses, **extra)
    assert r["userErrors"] == [], r
    return r


async def insights(gql, campaign_id: str) -> list[dict]:
    d = await gql("query($id:ID!){ campaign(id:$id){ insights{ code severity channel message } } }", {"id": campaign_id})
    return d["campaign"]["insights"]


def codes_of(found: list[dict], code: str) -> list:
    return [i["channel"] for i in found if i["code"] == code]


DASH_Q = """query($s:ID){ dashboard(scope:$s){ activeCampaigns totalReach totalSpent{ amount currency }
  totalBudget{ amount } budgetUtilization scope{ kind id } } }"""


async def dashboard(gql, scope: str | None = None) -> dict | None:
    return (await gql(DASH_Q, {"s": scope}))["dashboard"]


# ---------------------------------------------------------------- counters and rates


async def test_counters_and_rates_per_channel_and_in_total(tenant):
    gql = tenant.gql
    zone = await tenant.zone()
    c1, c2 = await tenant.center(zone), await tenant.center(zone)
    # Leads in two centers and none: counters are kept per center and per day, metrics add them up.
    leads = await upsert_leads(gql, [
        {"externalId": "k-a", "name": "A", "email": "a@example.test", "centerId": c1},
        {"externalId": "k-b", "name": "B", "email": "b@example.test", "centerId": c2},
        {"externalId": "k-c", "name": "C", "email": "c@example.test"},
    ])
    a, b, c = leads
    campaign = await launch_with(gql, leads, channels=[
        {"channel": "EMAIL", "unitCost": "0.01", "creditsPerMessage": 1},
        {"channel": "SMS", "unitCost": "0.05", "creditsPerMessage": 2},
        {"channel": "PUSH", "unitCost": "0.001"},
    ])
    E = Events(campaign)
    events = [
        # EMAIL
        *E.send("e1", a, "EMAIL", [("SENT", 1, {}), ("DELIVERED", 2, {}), ("OPENED", 3, {}), ("CLICKED", 4, {})]),
        *E.send("e2", b, "EMAIL", [("SENT", 1, {}), ("DELIVERED", 2, {}), ("OPENED", 3, {})], day=1),
        *E.send("e3", c, "EMAIL", [("SENT", 1, {}), ("DELIVERED", 2, {}), ("OPENED", 3, {"machine": True})]),
        *E.send("e4", a, "EMAIL", [("SENT", 1, {}), ("BOUNCED", 2, {})], day=1),
        *E.send("e5", b, "EMAIL", [("FAILED", 1, {"reason": "bad address"})]),
        *E.send("e6", c, "EMAIL", [("QUEUED", 1, {})]),
        *E.send("e7", a, "EMAIL", [("SENT", 1, {}), ("DELIVERED", 2, {}), ("OPENED", 3, {}), ("REPLIED", 4, {}),
                                   ("UNSUBSCRIBED", 5, {})], day=2),
        *E.send("e8", b, "EMAIL", [("SENT", 1, {})]),
        # SMS
        *E.send("s1", a, "SMS", [("SENT", 1, {"cost": "0.15", "credits": 6}), ("DELIVERED", 2, {})]),
        *E.send("s2", b, "SMS", [("FAILED", 1, {})]),
        *E.send("s3", c, "SMS", [("FAILED", 1, {})], day=1),
        # PUSH: nothing
    ]
    await ingest_ok(gql, events)
    m = await metrics(gql, campaign["id"])
    ch = {x["channel"]: x for x in m["byChannel"]}
    assert len(m["byChannel"]) == 3 and set(ch) == {"EMAIL", "SMS", "PUSH"}

    def check(x: dict, generated, pending, sent, delivered, failed, bounced, read, clicked, replied, unsub,
              cost, credits, rates):
        got = (x["generated"], x["pending"], x["sent"], x["delivered"], x["failed"], x["bounced"], x["read"],
               x["clicked"], x["replied"], x["unsubscribed"], money(x["cost"]), x["credits"])
        assert got == (generated, pending, sent, delivered, failed, bounced, read, clicked, replied, unsub,
                       Decimal(cost), credits)
        assert (x["bounceRate"], x["failureRate"], x["deliveryRate"], x["readRate"], x["clickRate"]) == \
            pytest.approx(rates)

    # EMAIL: 8 created; e6 pending; sent = e1 e2 e3 e4 e7 e8; delivered = e1 e2 e3 e7; e5 failed; e4 bounced;
    # read = e1 e2 e7 (e3's open is a machine open); clicked e1; replied and unsubscribed e7;
    # cost 6 × 0.01, credits 6 × 1.
    check(ch["EMAIL"], 8, 1, 6, 4, 1, 1, 3, 1, 1, 1, "0.06", 6, (1 / 6, 1 / 8, 4 / 6, 3 / 4, 1 / 4))
    # SMS: 3 created; s1 sent+delivered at the reported 0.15 / 6 credits; s2 s3 failed before sending (free).
    check(ch["SMS"], 3, 0, 1, 1, 2, 0, 0, 0, 0, 0, "0.15", 6, (0 / 1, 2 / 3, 1 / 1, 0 / 1, 0 / 1))
    # PUSH: configured, nothing sent: every rate is 0 (zero denominators).
    check(ch["PUSH"], 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, "0", 0, (0, 0, 0, 0, 0))
    # Totals: EMAIL + SMS.
    check(m["totals"], 11, 1, 7, 5, 3, 1, 3, 1, 1, 1, "0.21", 12, (1 / 7, 3 / 11, 5 / 7, 3 / 5, 1 / 5))


async def test_rates_are_zero_without_denominator(tenant):
    gql = tenant.gql
    leads = await make_leads(gql, 1)
    campaign = await launch_with(gql, leads, channels=[{"channel": "EMAIL", "unitCost": "0.01"}])
    E = Events(campaign)
    # Two sends, both failed before sending: generated 2, sent 0, delivered 0.
    await ingest_ok(gql, E.send("f1", leads[0], "EMAIL", [("FAILED", 1, {})]) +
                    E.send("f2", leads[0], "EMAIL", [("FAILED", 1, {})]))
    t = (await metrics(gql, campaign["id"]))["totals"]
    assert (t["generated"], t["sent"], t["delivered"], t["failed"]) == (2, 0, 0, 2)
    assert t["failureRate"] == 1.0
    assert (t["bounceRate"], t["deliveryRate"], t["readRate"], t["clickRate"]) == (0, 0, 0, 0)
    assert money(t["cost"]) == 0


# ---------------------------------------------------------------- dashboard


async def test_dashboard_for_the_org_and_narrower_scopes(tenant):
    gql = tenant.gql
    z1, z2 = await tenant.zone(), await tenant.zone()
    c1, c2, c3 = await tenant.center(z1), await tenant.center(z1), await tenant.center(z2)

    async def leads_in(center: str | None, n: int) -> list[dict]:
        p = f"d{uuid.uuid4().hex[:6]}"
        return await upsert_leads(gql, [{"externalId": f"{p}-{i}", "name": f"L{i}", "email": f"{p}-{i}@example.test",
                                         **({"centerId": center} if center else {})} for i in range(n)])

    email = [{"channel": "EMAIL", "unitCost": "0.50"}]
    # A: org-owned, LIVE, 4 recipients, budget 100; messages 2 × 0.50 + logged 10 -> spent 11.
    la = await leads_in(None, 4)
    A = await launch_with(gql, la, channels=email, budget="100")
    # B: zone z1, LIVE, 3 recipients, budget 50; logged 20 -> spent 20.
    lb = await leads_in(c2, 3)
    B = await launch_with(gql, lb, channels=email, budget="50", ownerUnitId=z1)
    # C: center c1, LIVE, 2 recipients, budget 20; message 1 × 0.50 + logged 4 -> spent 4.50.
    lc = await leads_in(c1, 2)
    C = await launch_with(gql, lc, channels=email, budget="20", ownerUnitId=c1)
    # D: center c3, PAUSED (not active, reach not counted), 2 recipients, budget 10; logged 1 -> spent 1.
    D = await launch_with(gql, await leads_in(c3, 2), channels=email, budget="10", ownerUnitId=c3)
    assert not (await mutate(gql, "campaignPause", D["id"]))["userErrors"]
    # E: center c1, COMPLETED, 1 recipient, no budget; logged 5 -> spent 5.
    E = await launch_with(gql, await leads_in(c1, 1), channels=email, ownerUnitId=c1)
    # F: zone z2, DRAFT, no budget, nothing spent.
    await create_campaign(gql, channels=email, ownerUnitId=z2)

    EA, EC = Events(A), Events(C)
    await ingest_ok(gql, EA.send("a1", la[0], "EMAIL", [("SENT", 1, {})]) +
                    EA.send("a2", la[1], "EMAIL", [("DELIVERED", 2, {})]) +
                    EC.send("c1", lc[0], "EMAIL", [("SENT", 2, {})]) +
                    # a send that failed before it was sent costs nothing
                    EC.send("c2", lc[1], "EMAIL", [("FAILED", 2, {})]))
    for cid, amount in ((A["id"], "10"), (B["id"], "20"), (C["id"], "4"), (D["id"], "1"), (E["id"], "5")):
        await spend_ok(gql, cid, amount)
    assert not (await mutate(gql, "campaignComplete", E["id"]))["userErrors"]

    # Organization: active A B C; reach 4 + 3 + 2; spent 11 + 20 + 4.50 + 1 + 5; budget 100 + 50 + 20 + 10.
    d = await dashboard(gql)
    assert d["scope"]["kind"] == "ORGANIZATION"
    assert (d["activeCampaigns"], d["totalReach"]) == (3, 9)
    assert money(d["totalSpent"]) == Decimal("41.50") and d["totalSpent"]["currency"] == "EUR"
    assert money(d["totalBudget"]) == Decimal("180")
    # Utilization is over the LIVE campaigns that have a budget, on both sides: (11 + 20 + 4.50) / (100 + 50 + 20).
    assert d["budgetUtilization"] == pytest.approx(35.5 / 170)
    assert await dashboard(gql, tenant.org_id) == d

    # Zone z1: B (zone-owned), C and E (centers of z1). Active B C; reach 3 + 2; spent 20 + 4.50 + 5; budget 70.
    d = await dashboard(gql, z1)
    assert d["scope"] == {"kind": "ZONE", "id": z1}
    assert (d["activeCampaigns"], d["totalReach"]) == (2, 5)
    assert money(d["totalSpent"]) == Decimal("29.50") and money(d["totalBudget"]) == Decimal("70")
    assert d["budgetUtilization"] == pytest.approx(24.5 / 70)

    # Center c1: C and E. Active C; reach 2; spent 9.50; budget 20.
    d = await dashboard(gql, c1)
    assert (d["activeCampaigns"], d["totalReach"], money(d["totalSpent"]), money(d["totalBudget"])) == \
        (1, 2, Decimal("9.50"), Decimal("20"))
    assert d["budgetUtilization"] == pytest.approx(4.5 / 20)

    # Center c3: only the paused D. Nothing active, no reach; its spend still counts.
    d = await dashboard(gql, c3)
    assert (d["activeCampaigns"], d["totalReach"], money(d["totalSpent"]), money(d["totalBudget"])) == \
        (0, 0, Decimal("1"), Decimal("10"))
    assert d["budgetUtilization"] == 0  # D is paused: not active

    # Zone z2: D and the draft F. Center c2 owns nothing (B's leads live there, but B is owned by z1).
    d = await dashboard(gql, z2)
    assert (d["activeCampaigns"], d["totalReach"], money(d["totalSpent"]), money(d["totalBudget"])) == \
        (0, 0, Decimal("1"), Decimal("10"))
    d = await dashboard(gql, c2)
    assert (d["activeCampaigns"], d["totalReach"], money(d["totalSpent"]), money(d["totalBudget"]),
            d["budgetUtilization"]) == (0, 0, Decimal("0"), Decimal("0"), 0)

    # A zone-scoped analyst sees its zone by default, and nothing outside it.
    analyst = await tenant.member("ANALYST", z1)
    d = await dashboard(analyst)
    assert d["scope"] == {"kind": "ZONE", "id": z1} and d["activeCampaigns"] == 2
    assert money(d["totalSpent"]) == Decimal("29.50")
    assert await dashboard(analyst, c3) is None
    assert await dashboard(analyst, tenant.org_id) is None

    # Live: a new message cost and a new logged entry move totalSpent at once.
    await ingest_ok(gql, Events(B).send("b1", lb[0], "EMAIL", [("SENT", 3, {})]))
    await spend_ok(gql, B["id"], "0.25")
    d = await dashboard(gql, z1)
    assert money(d["totalSpent"]) == Decimal("30.25")
    assert money((await dashboard(gql))["totalSpent"]) == Decimal("42.25")


# ---------------------------------------------------------------- budget tab and spend log


async def test_budget_tab(tenant):
    gql = tenant.gql
    leads = await make_leads(gql, 3)
    campaign = await launch_with(gql, leads, budget="100", channels=[
        {"channel": "EMAIL", "unitCost": "0.01"}, {"channel": "SMS", "unitCost": "0.05"}])
    cid = campaign["id"]
    E = Events(campaign)
    await ingest_ok(gql, [
        *E.send("e1", leads[0], "EMAIL", [("SENT", 1, {})]),
        *E.send("e2", leads[1], "EMAIL", [("DELIVERED", 1, {})]),
        *E.send("e3", leads[2], "EMAIL", [("BOUNCED", 1, {})]),
        *E.send("e4", leads[2], "EMAIL", [("FAILED", 1, {})]),
        *E.send("s1", leads[0], "SMS", [("SENT", 1, {"cost": "0.20"})]),
    ])
    design = (await spend_ok(gql, cid, "10", category="design", note="agency"))["entry"]
    printing = (await spend_ok(gql, cid, "5", category="printing", channel="SMS"))["entry"]
    reversal = await spend_ok(gql, cid, "-5", reverses=printing["id"], category="correction")
    assert reversal["entry"]["reverses"] == printing["id"]
    assert money(reversal["entry"]["amount"]) == Decimal("-5")

    b = await budget(gql, cid)
    # messages: 3 × 0.01 (sent, delivered, bounced; the failed one is free) + 0.20 reported; logged 10 + 5 − 5.
    assert money(b["allocated"]) == Decimal("100") and b["allocated"]["currency"] == "EUR"
    assert money(b["spent"]) == Decimal("10.23")
    assert money(b["remaining"]) == Decimal("89.77")
    assert b["utilization"] == pytest.approx(0.1023)
    assert money(b["loggedSpend"]) == Decimal("10")
    costs = {x["channel"]: money(x["cost"]) for x in b["byChannel"]}
    assert costs == {"EMAIL": Decimal("0.03"), "SMS": Decimal("0.20")}
    entries = [e["node"] for e in b["spendEntries"]["edges"]]
    assert b["spendEntries"]["totalCount"] == 3
    # Newest first.
    assert [e["id"] for e in entries] == [reversal["entry"]["id"], printing["id"], design["id"]]
    assert [money(e["amount"]) for e in entries] == [Decimal("-5"), Decimal("5"), Decimal("10")]
    assert [e["category"] for e in entries] == ["correction", "printing", "design"]
    assert entries[2]["note"] == "agency" and entries[1]["channel"] == "SMS"
    assert entries[0]["reverses"] == printing["id"] and entries[1]["reverses"] is None
    assert all(e["loggedBy"] and e["loggedBy"].startswith("owner@") for e in entries)
    assert b["alerts"] == []

    # No budget: utilization 0, remaining null (no budget is not a negative remainder).
    free = await launch_with(gql, leads[:1], channels=[{"channel": "EMAIL", "unitCost": "0.01"}])
    await spend_ok(gql, free["id"], "3")
    b = await budget(gql, free["id"])
    assert (money(b["allocated"]), money(b["spent"]), b["utilization"]) == (0, Decimal("3"), 0)
    assert b["remaining"] is None
    assert b["alerts"] == []


async def test_spend_log_reversal_rules(tenant):
    gql = tenant.gql
    leads = await make_leads(gql, 1)
    campaign = await launch_with(gql, leads, budget="100", channels=[{"channel": "EMAIL", "unitCost": "0.01"}])
    cid = campaign["id"]
    entry = (await spend_ok(gql, cid, "10"))["entry"]
    other = (await spend_ok(gql, cid, "7"))["entry"]

    async def refused(amount: str, reverses: str | None, code: str):
        r = await spend(gql, cid, amount, reverses)
        assert r["entry"] is None and [e["code"] for e in r["userErrors"]] == [code], r

    # A plain entry must be positive.
    await refused("0", None, "OUT_OF_RANGE")
    await refused("-3", None, "OUT_OF_RANGE")
    # A reversal must negate the entry exactly.
    await refused("-4", entry["id"], "REVERSAL_MISMATCH")
    await refused("10", entry["id"], "REVERSAL_MISMATCH")
    await refused("-7", entry["id"], "REVERSAL_MISMATCH")
    assert money((await budget(gql, cid))["spent"]) == Decimal("17")

    rev = (await spend_ok(gql, cid, "-10", entry["id"]))["entry"]
    assert money((await budget(gql, cid))["spent"]) == Decimal("7")
    # Only once.
    await refused("-10", entry["id"], "ALREADY_REVERSED")
    # A reversal cannot itself be reversed.
    await refused("10", rev["id"], "REVERSAL_MISMATCH")
    # An entry of another campaign is not found from this one.
    other_campaign = await launch_with(gql, leads, channels=[{"channel": "EMAIL"}])
    r = await spend(gql, other_campaign["id"], "-7", other["id"])
    assert [e["code"] for e in r["userErrors"]] == ["NOT_FOUND"], r

    b = await budget(gql, cid)
    assert money(b["spent"]) == Decimal("7") and money(b["loggedSpend"]) == Decimal("7")
    assert b["spendEntries"]["totalCount"] == 3


# ---------------------------------------------------------------- budget alerts


ALERTS_Q = """query($s:ID){ budgetAlerts(scope:$s, first: 100){ totalCount
  edges{ node{ threshold utilization spent{ amount } budget{ amount } campaign{ id } } } } }"""

async def alert_list(gql, campaign_id: str, scope: str | None = None) -> list[int]:
    """Thresholds of one campaign's alerts, through the `budgetAlerts` query."""
    d = await gql(ALERTS_Q, {"s": scope})
    return sorted(e["node"]["threshold"] for e in d["budgetAlerts"]["edges"] if e["node"]["campaign"]["id"] == campaign_id)


async def campaign_alerts(gql, campaign_id: str) -> list[int]:
    """Thresholds of one campaign's alerts, through `campaign.budget.alerts`."""
    return [a["threshold"] for a in (await budget(gql, campaign_id))["alerts"]]


async def _alerts_through_reversals(gql) -> str:
    """Budget 100; spend crosses, drops through reversals, and crosses again. Returns the campaign id."""
    leads = await make_leads(gql, 1)
    campaign = await launch_with(gql, leads, budget="100", channels=[{"channel": "EMAIL", "unitCost": "0.01"}])
    cid = campaign["id"]

    async def step(amount: str, expect_new: list[int], reverses: str | None = None) -> dict:
        r = await spend_ok(gql, cid, amount, reverses)
        assert sorted(a["threshold"] for a in r["alerts"]) == expect_new, (amount, r)
        return r["entry"]

    await step("50", [])                          # 50 %
    e35 = await step("35", [80])                  # 85 %: crosses 80
    await step("-35", [], e35["id"])              # back to 50 %
    e35b = await step("35", [])                   # 85 % again: 80 already raised
    e10 = await step("10", [90])                  # 95 %: crosses 90
    await step("-10", [], e10["id"])              # 85 %
    await step("-35", [], e35b["id"])             # 50 %
    e60 = await step("60", [100])                 # 110 %: 80 and 90 already raised, 100 is new
    await step("-60", [], e60["id"])              # 50 %
    await step("60", [])                          # 110 % again: nothing new
    return cid


async def test_budget_alerts_once_per_threshold_through_reversals(tenant):
    gql = tenant.gql
    cid = await _alerts_through_reversals(gql)
    b = await budget(gql, cid)
    assert [a["threshold"] for a in b["alerts"]] == [80, 90, 100]
    # Each alert records the spend at the moment it was raised.
    assert [money(a["spent"]) for a in b["alerts"]] == [Decimal("85"), Decimal("95"), Decimal("110")]
    assert all(money(a["budget"]) == Decimal("100") for a in b["alerts"])


async def test_budget_alerts_query_lists_each_threshold_once(tenant):
    gql = tenant.gql
    cid = await _alerts_through_reversals(gql)
    assert await alert_list(gql, cid) == [80, 90, 100]
    d = await gql(ALERTS_Q, {"s": None})
    assert d["budgetAlerts"]["totalCount"] == 3  # a fresh organization: these are all its alerts
    assert sorted(e["node"]["utilization"] for e in d["budgetAlerts"]["edges"]) == pytest.approx([0.85, 0.95, 1.10])


async def _alerts_from_message_costs(tenant) -> tuple[str, str, str]:
    gql = tenant.gql
    zone = await tenant.zone()
    center = await tenant.center(zone)
    leads = await upsert_leads(gql, [{"externalId": "al-1", "name": "X", "email": "x@example.test", "centerId": center}])
    # Budget 0.05, 0.01 per email: the 4th send reaches 80 %, the 5th 100 % (90 and 100 together).
    campaign = await launch_with(gql, leads, budget="0.05", ownerUnitId=center,
                                 channels=[{"channel": "EMAIL", "unitCost": "0.01"}])
    cid = campaign["id"]
    E = Events(campaign)
    await ingest_ok(gql, [e for i in range(3) for e in E.send(f"m{i}", leads[0], "EMAIL", [("SENT", 1, {})])])
    assert await campaign_alerts(gql, cid) == []
    await ingest_ok(gql, E.send("m3", leads[0], "EMAIL", [("SENT", 1, {})]))
    assert await campaign_alerts(gql, cid) == [80]
    await ingest_ok(gql, E.send("m4", leads[0], "EMAIL", [("SENT", 1, {}), ("DELIVERED", 2, {})]))
    assert await campaign_alerts(gql, cid) == [80, 90, 100]
    # Over budget (integrator-reported sends are tracked whatever they cost): nothing new.
    await ingest_ok(gql, E.send("m5", leads[0], "EMAIL", [("SENT", 1, {})]))
    assert await campaign_alerts(gql, cid) == [80, 90, 100]
    assert money((await budget(gql, cid))["spent"]) == Decimal("0.06")
    return cid, zone, center


async def test_budget_alerts_from_message_costs(tenant):
    await _alerts_from_message_costs(tenant)


async def test_budget_alerts_query_by_scope(tenant):
    gql = tenant.gql
    cid, zone, center = await _alerts_from_message_costs(tenant)
    assert await alert_list(gql, cid) == [80, 90, 100]
    assert await alert_list(gql, cid, zone) == [80, 90, 100]
    assert await alert_list(gql, cid, center) == [80, 90, 100]
    assert await alert_list(gql, cid, await tenant.zone()) == []


# ---------------------------------------------------------------- insights


async def test_insight_high_failure_rate(tenant):
    gql = tenant.gql
    leads = await make_leads(gql, 2)
    chans = [{"channel": "EMAIL", "unitCost": "0.01"}, {"channel": "SMS", "unitCost": "0.05"}]

    async def campaign_with(generated: int, failed: int) -> dict:
        campaign = await launch_with(gql, leads, channels=chans)
        E = Events(campaign)
        events = []
        for i in range(generated):
            events += E.send(f"s{i}", leads[i % 2], "SMS", [("FAILED" if i < failed else "SENT", 1, {})])
        # Email: 1 failed out of 1 (100 %) but far under 20 generated.
        events += E.send("e0", leads[0], "EMAIL", [("FAILED", 1, {})])
        await ingest_ok(gql, events)
        return campaign

    # 20 generated, 3 failed = 15 % > 10 %: raised, on SMS only.
    hot = await campaign_with(20, 3)
    found = await insights(gql, hot["id"])
    assert codes_of(found, "HIGH_FAILURE_RATE") == ["SMS"]
    assert all(i["message"] and i["severity"] for i in found)
    # 19 generated, 3 failed = 15.8 %: too few messages to say.
    assert codes_of(await insights(gql, (await campaign_with(19, 3))["id"]), "HIGH_FAILURE_RATE") == []
    # 20 generated, 2 failed = exactly 10 %: not over 10 %.
    assert codes_of(await insights(gql, (await campaign_with(20, 2))["id"]), "HIGH_FAILURE_RATE") == []


async def test_insight_low_reach(tenant):
    gql = tenant.gql
    leads = await make_leads(gql, 10)
    # Org-owned, reach 1 of 10 leads in the organization: 10 %, not under it.
    campaign = await launch_with(gql, leads[:1], channels=[{"channel": "EMAIL"}])
    assert campaign["reach"] == 1
    assert codes_of(await insights(gql, campaign["id"]), "LOW_REACH") == []
    # An 11th lead in the organization: reach 1 of 11 < 10 %.
    await make_leads(gql, 1)
    found = await insights(gql, campaign["id"])
    assert codes_of(found, "LOW_REACH") == [None]

    # Center-owned: only the center's leads count, not the organization's 11 + 2.
    zone = await tenant.zone()
    center = await tenant.center(zone)
    local = await upsert_leads(gql, [{"externalId": f"lr-{i}", "name": f"L{i}", "email": f"lr{i}@example.test",
                                      "centerId": center} for i in range(2)])
    local_campaign = await launch_with(gql, local[:1], channels=[{"channel": "EMAIL"}], ownerUnitId=center)
    assert codes_of(await insights(gql, local_campaign["id"]), "LOW_REACH") == []  # 1 of 2 leads


async def test_insight_budget_nearly_spent(tenant):
    gql = tenant.gql
    leads = await make_leads(gql, 1)
    campaign = await launch_with(gql, leads, budget="100", channels=[{"channel": "EMAIL"}])
    await spend_ok(gql, campaign["id"], "89.99")
    assert codes_of(await insights(gql, campaign["id"]), "BUDGET_NEARLY_SPENT") == []
    await spend_ok(gql, campaign["id"], "0.01")  # exactly 90 %
    assert codes_of(await insights(gql, campaign["id"]), "BUDGET_NEARLY_SPENT") == [None]
    await spend_ok(gql, campaign["id"], "20")  # over budget: still flagged
    assert codes_of(await insights(gql, campaign["id"]), "BUDGET_NEARLY_SPENT") == [None]
    # No budget: never flagged.
    free = await launch_with(gql, leads, channels=[{"channel": "EMAIL"}])
    await spend_ok(gql, free["id"], "1000")
    assert codes_of(await insights(gql, free["id"]), "BUDGET_NEARLY_SPENT") == []


async def _age(campaign_id: str, hours: float) -> None:
    """Pretend the campaign went LIVE `hours` ago.

    There is no public way to move time, so this test writes `live_since`
    directly through the ORM (decoding the Relay global id).
    """
    from graph.core import from_global_id
    from models.campaigns import Campaign

    kind, pk = from_global_id(campaign_id)
    assert kind == "Campaign"
    await Campaign.filter(id=pk).update(live_since=datetime.now(timezone.utc) - timedelta(hours=hours))


async def test_insight_zero_sends(tenant):
    gql = tenant.gql
    leads = await make_leads(gql, 2)
    campaign = await launch_with(gql, leads, channels=[
        {"channel": "EMAIL", "unitCost": "0.01"}, {"channel": "SMS", "unitCost": "0.05"},
        {"channel": "PUSH", "enabled": False}, {"channel": "WHATSAPP"}])
    cid = campaign["id"]
    E = Events(campaign)
    # EMAIL has a sent message; WHATSAPP only a failed one (nothing sent); SMS nothing at all; PUSH disabled.
    await ingest_ok(gql, E.send("e", leads[0], "EMAIL", [("SENT", 1, {})]) +
                    E.send("w", leads[1], "WHATSAPP", [("FAILED", 1, {})]))
    # Live for less than an hour: no hint yet.
    assert codes_of(await insights(gql, cid), "ZERO_SENDS") == []
    await _age(cid, 0.9)
    assert codes_of(await insights(gql, cid), "ZERO_SENDS") == []
    await _age(cid, 2)
    assert sorted(codes_of(await insights(gql, cid), "ZERO_SENDS")) == ["SMS", "WHATSAPP"]
    # Once SMS sends, only WHATSAPP remains.
    await ingest_ok(gql, E.send("s", leads[0], "SMS", [("DELIVERED", 2, {})]))
    assert codes_of(await insights(gql, cid), "ZERO_SENDS") == ["WHATSAPP"]
    # A paused campaign is not live: no hint.
    assert not (await mutate(gql, "campaignPause", cid))["userErrors"]
    assert codes_of(await insights(gql, cid), "ZERO_SENDS") == []
