"""Issue 12 "Must hold": one fixture organization whose every figure of items 1–13 is worked out by hand
below and read back through the public GraphQL API, on SQLite and on PostgreSQL + Redis.

The organization: currency EUR, time zone Asia/Kolkata (UTC+05:30 all year, so its days are not UTC
days). D0 is the organization's date when the fixture is built (the launch day); D1…D4 the following
days. Every time below is a local (Kolkata) time; sends and goals of A lie in the future, which the
API accepts (up to a year ahead) and which puts the control recipients' goals after they joined.

A "Spring sale" — LIVE, budget 100, goal SALE, control group 50 % of 6 leads → 3 treatment (t1, t2, t3)
and 3 control (k1, k2, k3), view window 72 h; sent by an integrator (its events are ingested):
  EMAIL 0.10 a message, 0 credits; SMS 0.50 a message, 1 credit.
  t1 EMAIL  sent D1 09:00, delivered 09:01, read D1 10:00                 (read 1 h after: counted)
  t1 SMS    sent D1 09:30, delivered 09:31, read D4 12:00                 (74.5 h after: outside 72 h)
  t2 EMAIL  sent D1 09:00, delivered 09:01
  t2 SMS    sent D1 09:30 (provider reports 3 credits), delivered 09:32, read D3 10:00 (48.5 h: counted),
            clicked D3 10:05
  t3 EMAIL  sent D3 09:00, delivered 09:01, read D4 10:00                 (25 h: counted)
  t3 SMS    FAILED D3 09:30 (never sent: no cost, no credits)
  goals (SALE): g1 t1 10 € D1 12:00 (after t1's EMAIL read, no click)      → treatment, through EMAIL
                g2 t2 40 € D3 11:00 (after t2's SMS read and click)         → treatment, through SMS, after a click
                g3 t3 25 € D4 11:00 (after t3's EMAIL read)                 → treatment, through EMAIL
                g0 t3 99 € D1 12:00 (before t3 was even messaged)           → not attributed
                k1  5 € D1 13:00, k2 7 € D4 09:00                           → control goals (within 30 days of joining)
  spendLog: 20 on SMS, 5 without a channel.
B "Reminder" — LIVE, no budget, no control group, no goal; the built-in sender (a provider that sends and
  delivers everything, nothing more) on SMS (0.05 a message, 2 credits, wallet topped up with 10) and EMAIL
  (0.01, 0 credits); 3 leads: b1, b2 with a phone, b3 without → SMS: 2 sent, 1 SKIPPED (NO_ADDRESS);
  EMAIL: 3 sent. Everything happens now (D0). spendLog: 3 without a channel.
C "Autumn draft" — DRAFT, budget 50, control group 10 %, EMAIL.
"""

from __future__ import annotations

import base64
import importlib
import types
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import GQL, unique
from tests.helpers import create_campaign, ingest, mutate, upsert_leads

TZ = ZoneInfo("Asia/Kolkata")


def approx(x):
    return pytest.approx(x, abs=1e-9)


def money(m: dict) -> Decimal:
    return Decimal(m["amount"])


def iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def pk(gid: str) -> int:
    return int(base64.b64decode(gid).decode().split(":")[1])


# ---------------------------------------------------------------- the fixture


@pytest.fixture(scope="module")
async def org(http):
    from app.sender.providers import SimulatedProvider
    from app.tenancy.service import create_organization
    from app.sender.service import dispatch_batch, queue_batch

    name = unique("fixture")
    issued = await create_organization(name, f"owner@{name}.test", "EUR", "Asia/Kolkata")
    gql = GQL(http, issued.token)
    d0 = datetime.now(TZ).date()
    D = [d0 + timedelta(days=i) for i in range(5)]

    def local(i: int, hh: int, mm: int = 0) -> datetime:
        return datetime.combine(D[i], time(hh, mm), TZ)

    # ---- A
    leads_a = await upsert_leads(gql, [{"externalId": f"{name}-a{i}", "name": f"A {i}",
                                        "email": f"a{i}@{name}.test"} for i in range(6)])
    A = await create_campaign(gql, name="Spring sale", budget="100", controlGroupPercent=50, goal={"type": "SALE"},
                              attribution={"viewWindowHours": 72},
                              channels=[{"channel": "EMAIL", "unitCost": "0.10", "creditsPerMessage": 0,
                                         "provider": "integrator"},
                                        {"channel": "SMS", "unitCost": "0.50", "creditsPerMessage": 1,
                                         "provider": "integrator"}])
    await _audience(gql, A, leads_a)
    before_launch = datetime.now(timezone.utc)
    r = await mutate(gql, "campaignLaunch", A["id"])
    assert not r["userErrors"] and r["campaign"]["status"] == "LIVE", r
    after_launch = datetime.now(timezone.utc)
    groups = await _groups(gql, A["id"])
    treatment = [x for x in leads_a if groups[x["id"]] == "TREATMENT"]
    control = [x for x in leads_a if groups[x["id"]] == "CONTROL"]
    assert (len(treatment), len(control)) == (3, 3)  # 6 × 50 % = 3 control
    t1, t2, t3 = treatment
    k1, k2, _k3 = control

    n = iter(range(1000))

    def send(ext: str, lead: dict, channel: str, steps: list) -> list[dict]:
        out = []
        for i, (type_, at, extra) in enumerate(steps):
            e = {"idempotencyKey": f"{name}-{next(n)}", "externalId": f"{name}-{ext}", "channel": channel,
                 "type": type_, "occurredAt": iso(at), **extra}
            if i == 0:
                e.update(campaignId=A["id"], leadId=lead["id"])
            out.append(e)
        return out

    events = (
        send("t1e", t1, "EMAIL", [("SENT", local(1, 9), {}), ("DELIVERED", local(1, 9, 1), {}),
                                  ("OPENED", local(1, 10), {})])
        + send("t1s", t1, "SMS", [("SENT", local(1, 9, 30), {}), ("DELIVERED", local(1, 9, 31), {}),
                                  ("OPENED", local(4, 12), {})])
        + send("t2e", t2, "EMAIL", [("SENT", local(1, 9), {}), ("DELIVERED", local(1, 9, 1), {})])
        + send("t2s", t2, "SMS", [("SENT", local(1, 9, 30), {"credits": 3}), ("DELIVERED", local(1, 9, 32), {}),
                                  ("OPENED", local(3, 10), {}), ("CLICKED", local(3, 10, 5), {})])
        + send("t3e", t3, "EMAIL", [("SENT", local(3, 9), {}), ("DELIVERED", local(3, 9, 1), {}),
                                    ("OPENED", local(4, 10), {})])
        + send("t3s", t3, "SMS", [("FAILED", local(3, 9, 30), {"reason": "no route"})]))
    r = await ingest(gql, events)
    assert r["rejected"] == [] and r["accepted"] == len(events), r

    def goal(key: str, lead: dict, at: datetime, value: str) -> dict:
        return {"idempotencyKey": f"{name}-{key}", "leadId": lead["id"], "goalType": "SALE", "value": value,
                "occurredAt": iso(at)}

    g = (await gql("mutation($e:[GoalEventInput!]!){ goalEventsIngest(events:$e){ accepted rejected{ index code } } }",
                   {"e": [goal("g1", t1, local(1, 12), "10"), goal("g2", t2, local(3, 11), "40"),
                          goal("g3", t3, local(4, 11), "25"), goal("g0", t3, local(1, 12), "99"),
                          goal("k1", k1, local(1, 13), "5"), goal("k2", k2, local(4, 9), "7")]}))["goalEventsIngest"]
    assert g == {"accepted": 6, "rejected": []}, g
    await _spend_ok(gql, A["id"], "20", channel="SMS")
    await _spend_ok(gql, A["id"], "5")

    # ---- B
    leads_b = await upsert_leads(gql, [
        {"externalId": f"{name}-b1", "name": "B 1", "email": f"b1@{name}.test", "phone": "+919800000001"},
        {"externalId": f"{name}-b2", "name": "B 2", "email": f"b2@{name}.test", "phone": "+919800000002"},
        {"externalId": f"{name}-b3", "name": "B 3", "email": f"b3@{name}.test"}])
    B = await create_campaign(gql, name="Reminder",
                              channels=[{"channel": "SMS", "unitCost": "0.05", "creditsPerMessage": 2},
                                        {"channel": "EMAIL", "unitCost": "0.01", "creditsPerMessage": 0}])
    await _audience(gql, B, leads_b)
    top = await gql('mutation{ creditsTopUp(source: SMS, amount: 10, reason: "fixture"){ userErrors{ code } } }')
    assert not top["creditsTopUp"]["userErrors"], top
    r = await mutate(gql, "campaignLaunch", B["id"])
    assert not r["userErrors"] and r["campaign"]["status"] == "LIVE", r
    quiet = SimulatedProvider(seed=1, refuse_rate=0, bounce_rate=0, open_rate=0, click_rate=0, reply_rate=0,
                              unsubscribe_rate=0)
    # Sender rounds for B only, until nothing moves (B stays LIVE: nothing here completes it).
    queued = skipped = handed = 0
    for _ in range(10):
        q = await queue_batch(100, campaign_ids=[pk(B["id"])])
        d = await dispatch_batch({"simulated": quiet}, 100, campaign_ids=[pk(B["id"])])
        queued, skipped, handed = queued + q.queued, skipped + q.skipped, handed + d.handed
        if not (q.queued or q.skipped or d.handed or d.failed or d.retried):
            break
    assert (queued, skipped, handed) == (5, 1, 5)
    await _spend_ok(gql, B["id"], "3")

    # ---- C
    before_create = datetime.now(timezone.utc)
    C = await create_campaign(gql, name="Autumn draft", budget="50", controlGroupPercent=10,
                              channels=[{"channel": "EMAIL", "unitCost": "1"}])
    after_create = datetime.now(timezone.utc)
    return types.SimpleNamespace(
        gql=gql, D=D, A=A, B=B, C=C, t=(t1, t2, t3), k=control, b=leads_b,
        launch_window=(before_launch, after_launch), create_window=(before_create, after_create))


async def _audience(gql, campaign: dict, leads: list[dict]) -> None:
    d = await gql("mutation($c:ID!,$i:AudienceInput!){ audienceSet(campaignId:$c, input:$i){ userErrors{ code } } }",
                  {"c": campaign["id"], "i": {"leadIds": [x["id"] for x in leads]}})
    assert not d["audienceSet"]["userErrors"], d


async def _groups(gql, campaign_id: str) -> dict[str, str]:
    d = await gql("query($id:ID!){ campaign(id:$id){ stats{ recipients(first: 100){ edges{ node{ group lead{ id } } } } } } }",
                  {"id": campaign_id})
    return {e["node"]["lead"]["id"]: e["node"]["group"] for e in d["campaign"]["stats"]["recipients"]["edges"]}


SPEND_M = """mutation($i:SpendLogInput!){ spendLog(input:$i){ entry{ id } userErrors{ field code message } } }"""


async def _spend(gql, campaign_id: str, amount: str, **extra) -> dict:
    return (await gql(SPEND_M, {"i": {"campaignId": campaign_id, "amount": amount, "category": "media", **extra}}))[
        "spendLog"]


async def _spend_ok(gql, campaign_id: str, amount: str, **extra) -> None:
    r = await _spend(gql, campaign_id, amount, **extra)
    assert r["userErrors"] == [], r


# ---------------------------------------------------------------- item 1: dashboard


async def test_dashboard_budget_utilization_and_its_parts(org):
    d = (await org.gql("""{ dashboard{ activeCampaigns totalReach totalSpent{ amount } totalBudget{ amount }
        activeBudget{ amount } budgetedSpent{ amount } unbudgetedSpent{ amount } budgetUtilization } }"""))["dashboard"]
    assert d["activeCampaigns"] == 2                                # A, B (C is a draft)
    assert d["totalReach"] == 3 + 3                                 # A's treatment + B's recipients
    # A: messages 3 × 0.10 + 2 × 0.50 = 1.30, logged 20 + 5 → 26.30; B: 3 × 0.01 + 2 × 0.05 = 0.13, logged 3 → 3.13
    assert money(d["totalSpent"]) == Decimal("29.43")               # 26.30 + 3.13 (+ C 0)
    assert money(d["totalBudget"]) == Decimal("150")                # 100 (A) + 50 (C, a draft)
    assert money(d["activeBudget"]) == Decimal("100")               # LIVE with a budget: A only
    assert money(d["budgetedSpent"]) == Decimal("26.30")            # A
    assert money(d["unbudgetedSpent"]) == Decimal("3.13")           # B
    assert d["budgetUtilization"] == approx(0.263)                  # 26.30 / 100


# ---------------------------------------------------------------- item 2: credits


REPORT = """query($f: CreditConsumptionFilter){ creditConsumption(filter:$f){
  rows{ campaignName channel targeted processed creditsConsumed creditsReported skipped skippedByReason{ reason count } }
  byDay{ day credits creditsReported } totals{ targeted processed credits creditsReported skipped } } }"""


async def test_credit_report_charged_vs_reported_and_campaign_credits(org):
    gql = org.gql
    d = (await gql(REPORT, {"f": {"campaignIds": [org.A["id"], org.B["id"]]}}))["creditConsumption"]
    rows = {(r["campaignName"], r["channel"]): {k: v for k, v in r.items() if k not in ("campaignName", "channel")}
            for r in d["rows"]}
    none = {"skipped": 0, "skippedByReason": []}
    assert rows == {
        # A is sent by an integrator: no send jobs, no wallet charged; the sends carry t1s 1 + t2s 3 = 4 credits
        ("Spring sale", "EMAIL"): {"targeted": 0, "processed": 3, "creditsConsumed": 0, "creditsReported": 0, **none},
        ("Spring sale", "SMS"): {"targeted": 0, "processed": 2, "creditsConsumed": 0, "creditsReported": 4, **none},
        # B: the built-in sender had a job per recipient and channel; 2 SMS × 2 credits charged to the SMS wallet
        ("Reminder", "SMS"): {"targeted": 3, "processed": 2, "creditsConsumed": 4, "creditsReported": 4,
                              "skipped": 1, "skippedByReason": [{"reason": "NO_ADDRESS", "count": 1}]},
        ("Reminder", "EMAIL"): {"targeted": 3, "processed": 3, "creditsConsumed": 0, "creditsReported": 0, **none},
    }
    assert d["totals"] == {"targeted": 6, "processed": 10, "credits": 4, "creditsReported": 8, "skipped": 1}
    # days from the sends' own (queue) days: A's SMS credits on D1, B's on D0
    assert d["byDay"] == [{"day": str(org.D[0]), "credits": 4, "creditsReported": 4},
                          {"day": str(org.D[1]), "credits": 0, "creditsReported": 4}]
    # metrics.credits is the reported figure
    for campaign, credits in ((org.A, 4), (org.B, 4)):
        m = await gql("query($id:ID!){ campaign(id:$id){ metrics{ totals{ credits } } } }", {"id": campaign["id"]})
        assert m["campaign"]["metrics"]["totals"]["credits"] == credits


# ---------------------------------------------------------------- items 3, 4, 5: funnel, lift, budget, stats vs metrics


ANALYTICS_Q = """query($id:ID!){ campaign(id:$id){
  funnel{ prospects exposures engagements conversions exposureRate engagementRate
          engagementRateOfProspects engagementRateOfExposures conversionRateOfProspects conversionRateOfEngagements
          steps{ name count rateOfProspects rateOfPrevious } }
  lift{ available unavailableReason treatmentSize controlSize treatmentConversionRate controlConversionRate } } }"""


async def test_funnel_step_rates(org):
    """A: prospects 3; exposures 3 (every treatment recipient had a delivered message); engagements 1 (t2's
    click); conversions 3 (t1, t2, t3 each bought after a read — only t2 after a click)."""
    d = (await org.gql(ANALYTICS_Q, {"id": org.A["id"]}))["campaign"]
    f = d["funnel"]
    assert (f["prospects"], f["exposures"], f["engagements"], f["conversions"]) == (3, 3, 1, 3)
    assert f["exposureRate"] == approx(1.0)                                       # 3 / 3
    assert f["engagementRate"] == f["engagementRateOfExposures"] == approx(1 / 3)  # 1 / 3
    assert f["engagementRateOfProspects"] == approx(1 / 3)                        # 1 / 3
    assert f["conversionRateOfProspects"] == approx(1.0)                          # 3 / 3
    assert f["conversionRateOfEngagements"] == approx(3.0)                        # 3 / 1
    assert [(s["name"], s["count"], s["rateOfProspects"], s["rateOfPrevious"]) for s in f["steps"]] == [
        ("PROSPECTS", 3, approx(1.0), approx(1.0)), ("EXPOSURES", 3, approx(1.0), approx(1.0)),
        ("ENGAGEMENTS", 1, approx(1 / 3), approx(1 / 3)), ("CONVERSIONS", 3, approx(1.0), approx(3.0))]
    lift = d["lift"]
    assert lift["available"] is True and (lift["treatmentSize"], lift["controlSize"]) == (3, 3)
    assert lift["treatmentConversionRate"] == approx(1.0)     # 3 converters / 3
    assert lift["controlConversionRate"] == approx(2 / 3)     # k1, k2 / 3


async def test_draft_says_not_launched_and_no_budget_is_null(org):
    gql = org.gql
    lift = (await gql(ANALYTICS_Q, {"id": org.C["id"]}))["campaign"]["lift"]
    assert lift["available"] is False
    assert "not launched yet" in lift["unavailableReason"] and "10 %" in lift["unavailableReason"]
    assert "no control group" not in lift["unavailableReason"]
    lift = (await gql(ANALYTICS_Q, {"id": org.B["id"]}))["campaign"]["lift"]
    assert "no control group" in lift["unavailableReason"]    # launched with 0 %
    q = """query($id:ID!){ campaign(id:$id){ budget{ allocated{ amount } spent{ amount } remaining{ amount }
        utilization loggedSpend{ amount } byChannel{ channel cost{ amount } loggedSpend{ amount } total{ amount } } } } }"""
    b = (await gql(q, {"id": org.B["id"]}))["campaign"]["budget"]
    assert money(b["allocated"]) == 0 and money(b["spent"]) == Decimal("3.13") and b["remaining"] is None
    assert b["utilization"] == 0
    c = (await gql(q, {"id": org.C["id"]}))["campaign"]["budget"]
    assert money(c["allocated"]) == 50 and money(c["spent"]) == 0 and money(c["remaining"]) == 50


async def test_viewed_vs_read(org):
    """A: 4 reads (t1 EMAIL, t1 SMS, t2 SMS, t3 EMAIL); t1's SMS read came 74.5 h after its send, outside the
    72 h view window → viewed 3. One click (t2 SMS), its read within the window → clicked 1 in both."""
    d = (await org.gql("query($id:ID!){ campaign(id:$id){ metrics{ totals{ read clicked } } "
                       "stats{ totals{ viewed clicked } } } }", {"id": org.A["id"]}))["campaign"]
    assert (d["metrics"]["totals"]["read"], d["stats"]["totals"]["viewed"]) == (4, 3)
    assert (d["metrics"]["totals"]["clicked"], d["stats"]["totals"]["clicked"]) == (1, 1)


# ---------------------------------------------------------------- item 6: one range rule


async def test_every_inverted_range_is_refused_alike(org):
    gql = org.gql
    later, earlier = str(org.D[2]), str(org.D[1])
    r = await gql.raw("query($id:ID!,$f:Date,$t:Date){ campaign(id:$id){ stats(from:$f, to:$t){ dateFrom } } }",
                      {"id": org.A["id"], "f": later, "t": earlier})
    err = r.json()["errors"][0]["extensions"]
    assert (err["code"], err["reason"]) == ("BAD_USER_INPUT", "INVALID_RANGE")
    r = await gql.raw(REPORT, {"f": {"dateFrom": later, "dateTo": earlier}})
    err = r.json()["errors"][0]["extensions"]
    assert (err["code"], err["reason"]) == ("BAD_USER_INPUT", "INVALID_RANGE")
    # one day on both ends is a range of one day
    one = (await gql(REPORT, {"f": {"campaignIds": [org.B["id"]], "dateFrom": str(org.D[0]),
                                    "dateTo": str(org.D[0])}}))["creditConsumption"]
    assert one["totals"]["credits"] == 4
    d = await gql("mutation($i:CampaignCreateInput!){ campaignCreate(input:$i){ userErrors{ code } } }",
                  {"i": {"name": "inverted", "channels": [{"channel": "EMAIL"}],
                         "startAt": "2026-12-24T10:00:00Z", "endAt": "2026-12-24T09:00:00Z"}})
    assert [e["code"] for e in d["campaignCreate"]["userErrors"]] == ["INVALID_RANGE"]


# ---------------------------------------------------------------- item 7: spendLog per channel


async def test_spend_log_channels(org):
    gql = org.gql
    r = await _spend(gql, org.A["id"], "1", channel="PUSH")          # A uses EMAIL and SMS only
    assert [e["code"] for e in r["userErrors"]] == ["CHANNEL_NOT_ON_CAMPAIGN"], r
    b = (await gql("""query($id:ID!){ campaign(id:$id){ budget{ allocated{ amount } spent{ amount } remaining{ amount }
        utilization loggedSpend{ amount } byChannel{ channel cost{ amount } loggedSpend{ amount } total{ amount } } } } }""",
                   {"id": org.A["id"]}))["campaign"]["budget"]
    assert money(b["allocated"]) == 100
    assert money(b["spent"]) == Decimal("26.30")                     # 1.30 messages + 25 logged
    assert money(b["remaining"]) == Decimal("73.70") and b["utilization"] == approx(0.263)
    assert money(b["loggedSpend"]) == Decimal("25")                  # 20 (SMS) + 5 (no channel)
    assert [(x["channel"], money(x["cost"]), money(x["loggedSpend"]), money(x["total"])) for x in b["byChannel"]] == [
        ("EMAIL", Decimal("0.30"), Decimal("0"), Decimal("0.30")),   # 3 × 0.10
        ("SMS", Decimal("1.00"), Decimal("20"), Decimal("21.00"))]   # 2 × 0.50 + 20 logged


# ---------------------------------------------------------------- item 8: skipped


async def test_skipped_per_channel_and_reason(org):
    d = (await org.gql("""query($id:ID!){ campaign(id:$id){
        metrics{ totals{ generated skipped skippedByReason{ reason count } sent delivered cost{ amount } credits }
                 byChannel{ channel generated skipped skippedByReason{ reason count } sent cost{ amount } credits } }
        skipped: sends(filter:{status: SKIPPED}, first: 10){ totalCount edges{ node{ channel skipReason credits
                 recipient{ id } } } } } }""", {"id": org.B["id"]}))["campaign"]
    no_address = [{"reason": "NO_ADDRESS", "count": 1}]
    t = d["metrics"]["totals"]
    assert (t["generated"], t["skipped"], t["sent"], t["delivered"], t["credits"]) == (5, 1, 5, 5, 4)
    assert t["skippedByReason"] == no_address and money(t["cost"]) == Decimal("0.13")
    assert [(c["channel"], c["generated"], c["skipped"], c["skippedByReason"], c["sent"], money(c["cost"]), c["credits"])
            for c in d["metrics"]["byChannel"]] == [
        ("EMAIL", 3, 0, [], 3, Decimal("0.03"), 0),          # 3 × 0.01
        ("SMS", 2, 1, no_address, 2, Decimal("0.10"), 4)]    # b1, b2 sent (2 × 0.05, 2 × 2 credits); b3 no phone
    assert d["skipped"]["totalCount"] == 1
    assert [e["node"] for e in d["skipped"]["edges"]] == [
        {"channel": "SMS", "skipReason": "NO_ADDRESS", "credits": 0, "recipient": {"id": org.b[2]["id"]}}]


# ---------------------------------------------------------------- items 10, 11: daily series


SERIES_Q = """query($id:ID!, $from: Date, $to: Date){ campaign(id:$id){
  stats(from:$from, to:$to){ dateFrom dateTo
    totals{ sent viewed clicked exposures engagements goals revenue{ amount } goalsAfterClick revenueAfterClick{ amount }
            controlGoals }
    daily{ day sent viewed clicked exposures engagements goals revenue{ amount } goalsAfterClick
           revenueAfterClick{ amount } controlGoals conversionRate controlConversionRate }
    byChannel{ channel daily{ day exposures reached conversions conversionRate controlConversionRate } } } } }"""

ZERO = {"sent": 0, "viewed": 0, "clicked": 0, "exposures": 0, "engagements": 0, "goals": 0, "revenue": Decimal(0),
        "goalsAfterClick": 0, "revenueAfterClick": Decimal(0), "controlGoals": 0, "conversionRate": 0.0,
        "controlConversionRate": 0.0}


def _plain(day: dict) -> dict:
    return {k: (money(v) if isinstance(v, dict) else approx(v) if isinstance(v, float) else v) for k, v in day.items()}


def expected_daily_a(D: list[date]) -> list[dict]:
    third = 1 / 3  # one goal over 3 treatment (or 3 control) recipients
    return [
        {"day": str(D[0]), **ZERO},                                  # launch day: nothing yet
        {"day": str(D[1]), **ZERO, "sent": 4,                        # t1e, t1s, t2e, t2s
         "viewed": 1,                                                # t1e (t1s's read is D4 and outside the window)
         "exposures": 2,                                             # t1, t2 first delivered
         "goals": 1, "revenue": Decimal(10),                         # g1
         "controlGoals": 1,                                          # k1
         "conversionRate": third, "controlConversionRate": third},
        {"day": str(D[2]), **ZERO},                                  # a day without activity
        {"day": str(D[3]), **ZERO, "sent": 1,                        # t3e (t3s failed)
         "viewed": 1, "clicked": 1,                                  # t2s read and clicked
         "exposures": 1, "engagements": 1,                           # t3 first delivered; t2 first clicked
         "goals": 1, "revenue": Decimal(40), "goalsAfterClick": 1, "revenueAfterClick": Decimal(40),   # g2
         "conversionRate": third},
        {"day": str(D[4]), **ZERO, "viewed": 1,                      # t3e (t1s's read is outside the window)
         "goals": 1, "revenue": Decimal(25),                         # g3 (after a read, no click)
         "controlGoals": 1,                                          # k2
         "conversionRate": third, "controlConversionRate": third},
    ]


def expected_channels_a(D: list[date]) -> list[dict]:
    """exposures: treatment recipients first delivered on the channel that day; reached: so far; conversions:
    goals attributed through a send on the channel; rate = conversions / reached; control rate = control goals
    of the day / 3 (the same beside every channel)."""
    ctrl = {D[1]: 1 / 3, D[4]: 1 / 3}

    def point(i, exposures, reached, conversions):
        return {"day": str(D[i]), "exposures": exposures, "reached": reached, "conversions": conversions,
                "conversionRate": approx(conversions / reached if reached else 0.0),
                "controlConversionRate": approx(ctrl.get(D[i], 0.0))}

    return [
        {"channel": "EMAIL", "daily": [
            point(0, 0, 0, 0),
            point(1, 2, 2, 1),        # t1, t2 delivered; g1 through t1's EMAIL read → 1 / 2
            point(2, 0, 2, 0),
            point(3, 1, 3, 0),        # t3 delivered
            point(4, 0, 3, 1)]},      # g3 through t3's EMAIL read → 1 / 3
        {"channel": "SMS", "daily": [
            point(0, 0, 0, 0),
            point(1, 2, 2, 0),        # t1, t2 delivered (t3's SMS failed on D3)
            point(2, 0, 2, 0),
            point(3, 0, 2, 1),        # g2 through t2's SMS read (and click) → 1 / 2
            point(4, 0, 2, 0)]},
    ]


async def _series(org, **rng) -> dict:
    return (await org.gql(SERIES_Q, {"id": org.A["id"], **rng}))["campaign"]["stats"]


async def test_daily_series_every_day_and_the_per_channel_trend(org):
    s = await _series(org)
    assert (s["dateFrom"], s["dateTo"]) == (None, None)            # LIFETIME
    # every day from the launch day (D0) to the last day with figures (D4), D0 and D2 as zeros
    assert [_plain(x) for x in s["daily"]] == [_plain(x) for x in expected_daily_a(org.D)]
    assert _plain(s["totals"]) == {"sent": 5, "viewed": 3, "clicked": 1, "exposures": 3, "engagements": 1,
                                   "goals": 3, "revenue": Decimal(75),          # 10 + 40 + 25
                                   "goalsAfterClick": 1, "revenueAfterClick": Decimal(40), "controlGoals": 2}
    assert s["byChannel"] == expected_channels_a(org.D)
    # a range: its days only, "reached" counts the recipients reached before it too
    part = await _series(org, **{"from": str(org.D[3]), "to": str(org.D[4])})
    assert [x["day"] for x in part["daily"]] == [str(org.D[3]), str(org.D[4])]
    assert part["byChannel"] == [{"channel": c["channel"], "daily": c["daily"][3:]} for c in expected_channels_a(org.D)]
    # B: one day (D0), no goal, no control group; its channels in Channel order, as in metrics.byChannel
    b = (await org.gql(SERIES_Q, {"id": org.B["id"]}))["campaign"]["stats"]
    zero_point = {"day": str(org.D[0]), "conversions": 0, "conversionRate": 0.0, "controlConversionRate": 0.0}
    assert b["byChannel"] == [{"channel": "EMAIL", "daily": [{**zero_point, "exposures": 3, "reached": 3}]},
                              {"channel": "SMS", "daily": [{**zero_point, "exposures": 2, "reached": 2}]}]


async def test_rebuild_and_migration_backfill_give_the_same_figures(org):
    """The rebuild command recomputes every rollup from sends and goal events; migration 0013's backfill
    fills the attribution channel and the per-channel rollup from the sends: both give the same series."""
    from tortoise import connections

    from app.analytics.service import rebuild
    from app.db import execute

    before = await _series(org)
    cid = pk(org.A["id"])
    await rebuild([cid])
    assert await _series(org) == before
    await execute("UPDATE attribution SET channel = NULL WHERE campaign_id = ?", [cid])
    await execute("DELETE FROM campaign_channel_day_stat WHERE campaign_id = ?", [cid])
    emptied = await _series(org)
    assert {p["conversions"] for c in emptied["byChannel"] for p in c["daily"]} == {0}   # the API reads the rollup
    migration = importlib.import_module("models.migrations.0013_attribution_channel")
    await migration.backfill(None, types.SimpleNamespace(client=connections.get("default")), campaign_ids={cid})
    assert await _series(org) == before


# ---------------------------------------------------------------- item 12: periods


PERIOD_Q = """query($id:ID!, $p: StatsPeriod){ campaign(id:$id){ stats(period:$p){ dateFrom dateTo totals{ sent } } } }"""


async def test_period_presets_in_the_organization_time_zone(org):
    today = datetime.now(TZ).date()
    y, m = today.year, today.month
    monday = today - timedelta(days=today.weekday())
    q_first = date(y, 3 * ((m - 1) // 3) + 1, 1)
    prev_q_last = q_first - timedelta(days=1)
    month_first = today.replace(day=1)
    expected = {  # preset: (from, to, B's messages sent in it — all 5 went out on D0)
        "TODAY": (today, today, 5),
        "LAST_7_DAYS": (today - timedelta(days=6), today, 5),
        "LAST_30_DAYS": (today - timedelta(days=29), today, 5),
        "THIS_WEEK": (monday, today, 5),
        "LAST_WEEK": (monday - timedelta(days=7), monday - timedelta(days=1), 0),
        "THIS_MONTH": (month_first, today, 5),
        "LAST_MONTH": ((month_first - timedelta(days=1)).replace(day=1), month_first - timedelta(days=1), 0),
        "THIS_QUARTER": (q_first, today, 5),
        "LAST_QUARTER": (prev_q_last.replace(day=1, month=prev_q_last.month - 2), prev_q_last, 0),
        "THIS_YEAR": (date(y, 1, 1), today, 5),
        "LAST_YEAR": (date(y - 1, 1, 1), date(y - 1, 12, 31), 0),
    }
    if today != org.D[0]:
        pytest.skip("the organization's day changed while the fixture was built")
    for preset, (start, end, sent) in expected.items():
        s = (await org.gql(PERIOD_Q, {"id": org.B["id"], "p": preset}))["campaign"]["stats"]
        assert (s["dateFrom"], s["dateTo"], s["totals"]["sent"]) == (str(start), str(end), sent), preset
        # A's messages all go out after today: no preset (they all end today) holds them
        a = (await org.gql(PERIOD_Q, {"id": org.A["id"], "p": preset}))["campaign"]["stats"]
        assert a["totals"]["sent"] == 0, preset
    lifetime = (await org.gql(PERIOD_Q, {"id": org.B["id"], "p": "LIFETIME"}))["campaign"]["stats"]
    assert (lifetime["dateFrom"], lifetime["dateTo"], lifetime["totals"]["sent"]) == (None, None, 5)


# ---------------------------------------------------------------- item 13: updatedAt, recipient states


async def test_updated_at_and_recipient_states(org):
    gql = org.gql
    q = "query($id:ID!){ campaign(id:$id){ updatedAt } }"

    def parsed(v: str) -> datetime:
        return datetime.fromisoformat(v.replace("Z", "+00:00"))

    # A last changed at its launch: its sends, goals and spend since then do not move it
    a = parsed((await gql(q, {"id": org.A["id"]}))["campaign"]["updatedAt"])
    assert org.launch_window[0] <= a <= org.launch_window[1]
    c = parsed((await gql(q, {"id": org.C["id"]}))["campaign"]["updatedAt"])
    assert org.create_window[0] <= c <= org.create_window[1]
    d = await gql("query($id:ID!){ campaign(id:$id){ stats{ recipients(first: 10){ edges{ node{ group status "
                  "lead{ id } } } } } } }", {"id": org.A["id"]})
    state = {e["node"]["lead"]["id"]: (e["node"]["group"], e["node"]["status"])
             for e in d["campaign"]["stats"]["recipients"]["edges"]}
    t1, t2, t3 = org.t
    assert state == {
        t1["id"]: ("TREATMENT", "DELIVERED"),   # latest send: SMS queued D1 09:30, delivered
        t2["id"]: ("TREATMENT", "DELIVERED"),   # latest send: SMS queued D1 09:30, delivered (read, clicked)
        t3["id"]: ("TREATMENT", "FAILED"),      # latest send: SMS queued D3 09:30, failed
        **{k["id"]: ("CONTROL", None) for k in org.k},   # never messaged
    }
