"""Issue 12 "numbers that mean what they say": one fixture organization whose figures are all worked
out by hand below, read back through the public API (dashboard, budget tab, funnel, lift, stats vs
metrics, range arguments, spendLog channels).

The fixture (organization currency EUR, time zone UTC):

- A: LIVE, budget 100, EMAIL at 1.00. Sends a1 (SENT→DELIVERED) and a2 (SENT): cost 2.00.
  Logged spend 10 on EMAIL. Spent 12.00; EMAIL row: cost 2, logged 10, total 12.
- B: LIVE, no budget, EMAIL at 0.50. One send accepted: 0.50. Logged 3 without a channel. Spent 3.50.
- D: DRAFT, budget 1000, control group 10 %. Nothing spent.
- F: LIVE, no budget, goal SALE, EMAIL at 0, 4 treatment recipients (no control group):
  f1 delivered+read, goal 20; f2 delivered+read, goal 30; f3 delivered+read+clicked; f4 delivered and
  read 8 days later (outside the 7-day view window).
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.helpers import at, create_campaign
from tests.reporting.test_kpis import Events, budget, ingest_ok, launch_with, money, spend, spend_ok

DASH_Q = """query{ dashboard{ activeCampaigns totalSpent{ amount } totalBudget{ amount } activeBudget{ amount }
  budgetedSpent{ amount } unbudgetedSpent{ amount } budgetUtilization } }"""

ANALYTICS_Q = """query($id:ID!){ campaign(id:$id){
  metrics{ totals{ read clicked } }
  stats{ totals{ sent viewed clicked goals revenue{ amount } } }
  funnel{ prospects exposures engagements conversions exposureRate engagementRate
          engagementRateOfProspects engagementRateOfExposures conversionRateOfProspects conversionRateOfEngagements
          steps{ name count rateOfProspects rateOfPrevious } }
  lift{ available unavailableReason treatmentConversionRate } } }"""

GOALS = """mutation($e:[GoalEventInput!]!){ goalEventsIngest(events:$e){ accepted rejected{ index code message } } }"""


def approx(x):
    return pytest.approx(x, abs=1e-9)


@pytest.fixture
async def fixture_org(tenant):
    gql = tenant.gql
    from tests.helpers import make_leads

    email = lambda cost: [{"channel": "EMAIL", "unitCost": cost}]  # noqa: E731
    la = await make_leads(gql, 2)
    A = await launch_with(gql, la, channels=email("1.00"), budget="100")
    lb = await make_leads(gql, 1)
    B = await launch_with(gql, lb, channels=email("0.50"))
    D = await create_campaign(gql, channels=email("1"), budget="1000", controlGroupPercent=10)
    lf = await make_leads(gql, 4)
    F = await launch_with(gql, lf, channels=email("0"), goal={"type": "SALE"})

    EA, EB, EF = Events(A), Events(B), Events(F)
    await ingest_ok(gql,
                    EA.send("a1", la[0], "EMAIL", [("SENT", 1, {}), ("DELIVERED", 2, {})]) +
                    EA.send("a2", la[1], "EMAIL", [("SENT", 1, {})]) +
                    EB.send("b1", lb[0], "EMAIL", [("SENT", 1, {})]) +
                    EF.send("f1", lf[0], "EMAIL", [("DELIVERED", 1, {}), ("OPENED", 2, {})]) +
                    EF.send("f2", lf[1], "EMAIL", [("DELIVERED", 1, {}), ("OPENED", 3, {})]) +
                    EF.send("f3", lf[2], "EMAIL", [("DELIVERED", 1, {}), ("OPENED", 4, {}), ("CLICKED", 5, {})]) +
                    EF.send("f4", lf[3], "EMAIL", [("DELIVERED", 1, {}), ("OPENED", 8 * 1440, {})]))
    r = (await gql(GOALS, {"e": [
        {"idempotencyKey": f"{F['id']}-g1", "leadId": lf[0]["id"], "goalType": "SALE", "value": "20",
         "occurredAt": at(60)},
        {"idempotencyKey": f"{F['id']}-g2", "leadId": lf[1]["id"], "goalType": "SALE", "value": "30",
         "occurredAt": at(60)},
    ]}))["goalEventsIngest"]
    assert r["accepted"] == 2 and r["rejected"] == [], r
    await spend_ok(gql, A["id"], "10", channel="EMAIL")
    await spend_ok(gql, B["id"], "3")
    return {"gql": gql, "A": A, "B": B, "D": D, "F": F}


async def test_dashboard_utilization_over_live_campaigns_with_a_budget(fixture_org):
    """Item 1: A is the only LIVE campaign with a budget: 12 / 100. B and F (no budget) are
    unbudgeted spend; D (draft) is in totalBudget but not in the utilization."""
    d = (await fixture_org["gql"](DASH_Q))["dashboard"]
    assert d["activeCampaigns"] == 3  # A, B, F
    assert money(d["totalSpent"]) == Decimal("15.50")  # 12 + 3.50 + 0
    assert money(d["totalBudget"]) == Decimal("1100")  # 100 + 1000 (D is a draft)
    assert money(d["activeBudget"]) == Decimal("100")
    assert money(d["budgetedSpent"]) == Decimal("12")
    assert money(d["unbudgetedSpent"]) == Decimal("3.50")
    assert d["budgetUtilization"] == approx(0.12)


async def test_no_budget_means_no_remaining_and_a_draft_is_not_launched(fixture_org):
    """Item 4."""
    gql = fixture_org["gql"]
    b = await budget(gql, fixture_org["B"]["id"])
    assert money(b["allocated"]) == 0 and money(b["spent"]) == Decimal("3.50")
    assert b["remaining"] is None and b["utilization"] == 0
    a = await budget(gql, fixture_org["A"]["id"])
    assert money(a["remaining"]) == Decimal("88") and a["utilization"] == approx(0.12)

    lift = (await gql(ANALYTICS_Q, {"id": fixture_org["D"]["id"]}))["campaign"]["lift"]
    assert lift["available"] is False
    assert "not launched yet" in lift["unavailableReason"] and "no control group" not in lift["unavailableReason"]
    # A launched campaign without a control group still says so.
    lift = (await gql(ANALYTICS_Q, {"id": fixture_org["F"]["id"]}))["campaign"]["lift"]
    assert "no control group" in lift["unavailableReason"]


async def test_funnel_rates_against_prospects_and_previous_step(fixture_org):
    """Item 3: prospects 4, exposures 4 (all delivered), engagements 1 (f3 clicked),
    conversions 2 (f1, f2 bought after a read, without a click)."""
    d = (await fixture_org["gql"](ANALYTICS_Q, {"id": fixture_org["F"]["id"]}))["campaign"]
    f = d["funnel"]
    assert (f["prospects"], f["exposures"], f["engagements"], f["conversions"]) == (4, 4, 1, 2)
    assert f["exposureRate"] == approx(1.0)
    assert f["engagementRate"] == approx(0.25) and f["engagementRateOfExposures"] == approx(0.25)
    assert f["engagementRateOfProspects"] == approx(0.25)
    assert f["conversionRateOfProspects"] == approx(0.5)
    assert f["conversionRateOfEngagements"] == approx(2.0)
    assert [(s["name"], s["count"], s["rateOfProspects"], s["rateOfPrevious"]) for s in f["steps"]] == [
        ("PROSPECTS", 4, approx(1.0), approx(1.0)), ("EXPOSURES", 4, approx(1.0), approx(1.0)),
        ("ENGAGEMENTS", 1, approx(0.25), approx(0.25)), ("CONVERSIONS", 2, approx(0.5), approx(2.0))]
    # The same conversion rate as lift's treatment rate.
    assert d["lift"]["treatmentConversionRate"] == approx(f["conversionRateOfProspects"])


async def test_viewed_counts_reads_inside_the_view_window_and_read_counts_all(fixture_org):
    """Item 5: four reads (f1–f4); f4's came 8 days after its send, outside the 7-day window."""
    d = (await fixture_org["gql"](ANALYTICS_Q, {"id": fixture_org["F"]["id"]}))["campaign"]
    assert d["metrics"]["totals"]["read"] == 4 and d["stats"]["totals"]["viewed"] == 3
    assert d["metrics"]["totals"]["clicked"] == 1 and d["stats"]["totals"]["clicked"] == 1
    assert d["stats"]["totals"]["goals"] == 2 and money(d["stats"]["totals"]["revenue"]) == Decimal("50")


async def test_every_inverted_range_is_rejected_with_the_same_code(fixture_org):
    """Item 6: stats from/to, creditConsumption dateFrom/dateTo, campaign startAt/endAt."""
    gql = fixture_org["gql"]
    r = await gql.raw("query($id:ID!){ campaign(id:$id){ stats(from:\"2026-11-21\", to:\"2026-11-20\"){ dateFrom } } }",
                      {"id": fixture_org["A"]["id"]})
    err = r.json()["errors"][0]
    assert err["extensions"]["code"] == "BAD_USER_INPUT" and err["extensions"]["reason"] == "INVALID_RANGE", err
    r = await gql.raw("{ creditConsumption(filter:{dateFrom:\"2026-11-21\", dateTo:\"2026-11-20\"}){ totals{ credits } } }")
    assert r.status_code == 200
    err = r.json()["errors"][0]
    assert err["extensions"]["code"] == "BAD_USER_INPUT" and err["extensions"]["reason"] == "INVALID_RANGE", err
    # Same day on both ends is a one-day range, not an inverted one.
    await gql("{ creditConsumption(filter:{dateFrom:\"2026-11-20\", dateTo:\"2026-11-20\"}){ totals{ credits } } }")
    d = await gql("mutation($i:CampaignCreateInput!){ campaignCreate(input:$i){ userErrors{ field code } } }",
                  {"i": {"name": "inverted", "channels": [{"channel": "EMAIL"}],
                         "startAt": at(60), "endAt": at(0)}})
    assert d["campaignCreate"]["userErrors"] == [{"field": ["input", "endAt"], "code": "INVALID_RANGE"}] or \
        [e["code"] for e in d["campaignCreate"]["userErrors"]] == ["INVALID_RANGE"], d


async def test_spend_log_channel_must_be_the_campaigns_and_shows_per_channel(fixture_org):
    """Item 7: A uses EMAIL only. Its 10 logged on EMAIL shows on the EMAIL row."""
    gql = fixture_org["gql"]
    r = await spend(gql, fixture_org["A"]["id"], "5", channel="SMS")
    assert [e["code"] for e in r["userErrors"]] == ["CHANNEL_NOT_ON_CAMPAIGN"], r
    d = await gql("query($id:ID!){ campaign(id:$id){ budget{ spent{ amount } loggedSpend{ amount }"
                  " byChannel{ channel cost{ amount } loggedSpend{ amount } total{ amount } } } } }",
                  {"id": fixture_org["A"]["id"]})
    b = d["campaign"]["budget"]
    assert money(b["spent"]) == Decimal("12") and money(b["loggedSpend"]) == Decimal("10")
    assert [(x["channel"], money(x["cost"]), money(x["loggedSpend"]), money(x["total"])) for x in b["byChannel"]] == \
        [("EMAIL", Decimal("2"), Decimal("10"), Decimal("12"))]
