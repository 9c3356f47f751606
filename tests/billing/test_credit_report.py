"""The credit consumption report on a hand-computed fixture (SPEC §8).

Two campaigns, recipients in two centers (and one without a center), messages
queued by the sender on two different days, one message refused before it was
sent (its credits refunded). Every expected number below is worked out by hand
in the comments. Both backends.

The fixture (organization time zone UTC; D1 and D2 are two consecutive past days):

  zone Z → centers A, B
  leads  L1 A (email, phone, tag welcome)   L2 A (email, phone)   L3 A (email, phone, welcome)
         L4 B (email, phone, welcome)       L5 B (email, phone)   L6 — no center (email only, welcome)
         L7 B (email, phone, welcome) — created on D2, after the D1 round

  "Spring" SCHEDULED, created from zone Z, audience L1..L5
      EMAIL 1 credit/message (wallet EMAIL), SMS 3 credits/message (wallet SMS)
  "Welcome" ALWAYS_ON, created from the organization, audience = tag welcome (L1 L3 L4 L6, later L7)
      EMAIL 2 credits/message, SMS 5 credits/message (both from the ALWAYS_ON wallet)

  D1: only Welcome is live → EMAIL to L1 L3 L4 L6, SMS to L1 L3 L4 (L6 has no phone: skipped)
  D2: Spring launched; L7 joins Welcome → Spring: EMAIL + SMS to L1..L5, Welcome: EMAIL + SMS to L7
      The provider refuses Spring's SMS to L2 for good: FAILED before being sent → 3 credits refunded.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

from app.sender.providers import Outcome, SimulatedProvider
from app.sender.service import complete_finished, dispatch_batch, queue_batch
from tests.conftest import unique
from tests.helpers import create_campaign, mutate, upsert_leads
from tests.sender.test_sender import pk

REPORT = """query($f: CreditConsumptionFilter){ creditConsumption(filter: $f){
  rows{ campaignName type createdFrom{ id kind name } targeted processed creditsConsumed channel creditSource status }
  byCenter{ center{ id name } credits }
  byDay{ day credits }
  totals{ targeted processed credits } } }"""


class PerfectButOne(SimulatedProvider):
    """tests/sender/conftest.perfect_provider (no refusals, no bounces) without its 0.5 % unsubscribes
    either — an unsubscribe on D1 would make a D2 message be skipped and change the hand-computed
    numbers — and with one message refused for good: (campaign, lead, channel) = `refuse`."""

    def __init__(self, refuse: tuple[int, int, str]) -> None:
        super().__init__(seed=1, refuse_rate=0, bounce_rate=0, unsubscribe_rate=0)
        self.refuse = refuse

    async def send(self, messages):
        outcomes = await super().send(messages)
        return [Outcome(False, reason="test: number not in service")
                if (m.campaign_id, m.lead_id, m.channel.value) == self.refuse else o
                for m, o in zip(messages, outcomes)]


async def dispatch_all(providers: dict, campaign_ids: list[int]) -> tuple[int, int]:
    handed = failed = 0
    while True:
        d = await dispatch_batch(providers, 500, campaign_ids=campaign_ids)
        handed, failed = handed + d.handed, failed + d.failed
        if not (d.handed or d.failed or d.retried):
            return handed, failed


async def report(gql, **flt) -> dict:
    return (await gql(REPORT, {"f": flt or None}))["creditConsumption"]


def row(name, type_, unit, targeted, processed, credits, channel, source, status):
    return {"campaignName": name, "type": type_, "createdFrom": unit, "targeted": targeted, "processed": processed,
            "creditsConsumed": credits, "channel": channel, "creditSource": source, "status": status}


async def test_credit_consumption_report_by_hand(tenant, tenant_factory):
    gql = tenant.gql
    today = datetime.now(timezone.utc).date()
    d1, d2 = today - timedelta(days=3), today - timedelta(days=2)
    at_d1 = datetime.combine(d1, time(10, 0), tzinfo=timezone.utc)
    at_d2 = datetime.combine(d2, time(10, 0), tzinfo=timezone.utc)

    org = {"id": tenant.org_id, "kind": "ORGANIZATION", "name": tenant.name}
    zone_name, a_name, b_name = unique("zone"), unique("center-a"), unique("center-b")
    zone = await tenant.zone(zone_name)
    center_a, center_b = await tenant.center(zone, a_name), await tenant.center(zone, b_name)
    tag = unique("welcome")

    def lead(i, center, phone=True, welcome=False):
        return {"externalId": f"L{i}-{tag}", "name": f"L{i}", "email": f"l{i}-{tag}@example.test",
                "phone": f"+3361000000{i}" if phone else None, "centerId": center, "tags": [tag] if welcome else []}

    leads = await upsert_leads(gql, [lead(1, center_a, welcome=True), lead(2, center_a), lead(3, center_a, welcome=True),
                                     lead(4, center_b, welcome=True), lead(5, center_b),
                                     lead(6, None, phone=False, welcome=True)])
    ids = {x["externalId"].split("-")[0]: x["id"] for x in leads}  # "L1" → global id
    assert sorted(ids) == ["L1", "L2", "L3", "L4", "L5", "L6"]
    for source in ("EMAIL", "SMS", "ALWAYS_ON"):
        d = await gql('mutation($s:CreditSource!){ creditsTopUp(source:$s, amount: 100){ userErrors{ code } } }',
                      {"s": source})
        assert not d["creditsTopUp"]["userErrors"]

    spring_name, welcome_name = unique("Spring"), unique("Welcome")
    spring = await create_campaign(gql, name=spring_name, ownerUnitId=zone, channels=[
        {"channel": "EMAIL", "unitCost": "0.01", "creditsPerMessage": 1},
        {"channel": "SMS", "unitCost": "0.05", "creditsPerMessage": 3}])
    welcome = await create_campaign(gql, name=welcome_name, type="ALWAYS_ON", channels=[
        {"channel": "EMAIL", "unitCost": "0.01", "creditsPerMessage": 2},
        {"channel": "SMS", "unitCost": "0.05", "creditsPerMessage": 5}])
    audience = "mutation($c:ID!,$i:AudienceInput!){ audienceSet(campaignId:$c, input:$i){ userErrors{ code message } } }"
    d = await gql(audience, {"c": spring["id"], "i": {"leadIds": [ids[f"L{i}"] for i in range(1, 6)]}})
    assert not d["audienceSet"]["userErrors"], d
    d = await gql(audience, {"c": welcome["id"], "i": {"filter": {"tags": [tag]}}})
    assert not d["audienceSet"]["userErrors"], d
    providers = {"simulated": PerfectButOne(refuse=(pk(spring["id"]), pk(ids["L2"]), "SMS"))}
    mine = [pk(spring["id"]), pk(welcome["id"])]  # the rounds below touch only this test's campaigns

    # ---- D1: only Welcome is live
    assert not (await mutate(gql, "campaignLaunch", welcome["id"]))["userErrors"]
    q = await queue_batch(100, now=at_d1, campaign_ids=mine)
    assert (q.queued, q.skipped) == (4 + 3, 1)  # EMAIL L1 L3 L4 L6 + SMS L1 L3 L4; SMS L6 skipped (no phone)
    assert await dispatch_all(providers, mine) == (7, 0)

    # ---- D2: Spring goes live, L7 joins Welcome
    assert not (await mutate(gql, "campaignLaunch", spring["id"]))["userErrors"]
    assert len(await upsert_leads(gql, [lead(7, center_b, welcome=True)])) == 1
    q = await queue_batch(100, now=at_d2, campaign_ids=mine)
    assert (q.queued, q.skipped) == (10 + 2, 0)  # Spring 5 EMAIL + 5 SMS; Welcome EMAIL + SMS to L7
    assert await dispatch_all(providers, mine) == (11, 1)  # Spring's SMS to L2 refused
    await complete_finished()  # Spring has nothing left: COMPLETED (reported as PROCESSED)

    # Credits per message, by day and center (consumption at queueing, refund on the same ledger day):
    #   D1 Welcome: EMAIL 4 × 2 = 8, SMS 3 × 5 = 15                          → D1 = 23
    #       per center: A (L1, L3) 2 × (2 + 5) = 14, B (L4) 2 + 5 = 7, none (L6 EMAIL) 2
    #   D2 Spring: EMAIL 5 × 1 = 5, SMS 5 × 3 − 3 (refund L2) = 12           → 17
    #      Welcome: L7 EMAIL 2 + SMS 5 = 7                                    → D2 = 17 + 7 = 24
    #       per center: A (L1..L3) 3 × 1 + 3 × 3 − 3 = 9, B (L4, L5) 2 × 1 + 2 × 3 = 8, + L7 7 = 15
    #   Full range: 23 + 24 = 47; A 14 + 9 = 23, B 7 + 15 = 22, none 2 (23 + 22 + 2 = 47)
    # Targeted = recipients × channel (not a per-day figure): Welcome L1 L3 L4 L6 L7 = 5 per channel
    # (L6 targeted on SMS though skipped for lack of a phone), Spring L1..L5 = 5 per channel.
    # Processed = successfully sent: Welcome EMAIL 5, SMS 4 (not L6); Spring EMAIL 5, SMS 4 (not L2).
    zone_unit = {"id": zone, "kind": "ZONE", "name": zone_name}
    center = {a_name: {"id": center_a, "name": a_name}, b_name: {"id": center_b, "name": b_name}}
    # rows: newest campaign first (Welcome was created after Spring), then channel order
    full = await report(gql)
    assert full["rows"] == [
        row(welcome_name, "ALWAYS_ON", org, 5, 5, 5 * 2, "EMAIL", "ALWAYS_ON", "LIVE"),           # 10
        row(welcome_name, "ALWAYS_ON", org, 5, 4, 4 * 5, "SMS", "ALWAYS_ON", "LIVE"),             # 20
        row(spring_name, "SCHEDULED", zone_unit, 5, 5, 5 * 1, "EMAIL", "EMAIL", "PROCESSED"),     # 5
        row(spring_name, "SCHEDULED", zone_unit, 5, 4, 5 * 3 - 3, "SMS", "SMS", "PROCESSED"),     # 12
    ]
    assert full["byCenter"] == [{"center": center[a_name], "credits": 23}, {"center": center[b_name], "credits": 22},
                                {"center": None, "credits": 2}]
    assert full["byDay"] == [{"day": d1.isoformat(), "credits": 23}, {"day": d2.isoformat(), "credits": 24}]
    assert full["totals"] == {"targeted": 5 + 5 + 5 + 5, "processed": 5 + 4 + 5 + 4, "credits": 10 + 20 + 5 + 12}
    assert full["totals"]["credits"] == 47
    # an explicit range covering both days is the same report
    assert await report(gql, dateFrom=d1.isoformat(), dateTo=d2.isoformat()) == full

    # ---- one day: D1 (only Welcome had activity; Spring's rows stay, with nothing in the range)
    day1 = await report(gql, dateFrom=d1.isoformat(), dateTo=d1.isoformat())
    assert day1["rows"] == [
        row(welcome_name, "ALWAYS_ON", org, 5, 4, 4 * 2, "EMAIL", "ALWAYS_ON", "LIVE"),   # 8
        row(welcome_name, "ALWAYS_ON", org, 5, 3, 3 * 5, "SMS", "ALWAYS_ON", "LIVE"),     # 15
        row(spring_name, "SCHEDULED", zone_unit, 5, 0, 0, "EMAIL", "EMAIL", "PROCESSED"),
        row(spring_name, "SCHEDULED", zone_unit, 5, 0, 0, "SMS", "SMS", "PROCESSED"),
    ]
    assert day1["byCenter"] == [{"center": center[a_name], "credits": 14}, {"center": center[b_name], "credits": 7},
                                {"center": None, "credits": 2}]
    assert day1["byDay"] == [{"day": d1.isoformat(), "credits": 23}]
    assert day1["totals"] == {"targeted": 20, "processed": 4 + 3, "credits": 8 + 15}

    # ---- one day: D2 (the refund nets out on the day the credits were consumed)
    day2 = await report(gql, dateFrom=d2.isoformat(), dateTo=d2.isoformat())
    assert day2["rows"] == [
        row(welcome_name, "ALWAYS_ON", org, 5, 1, 1 * 2, "EMAIL", "ALWAYS_ON", "LIVE"),       # L7: 2
        row(welcome_name, "ALWAYS_ON", org, 5, 1, 1 * 5, "SMS", "ALWAYS_ON", "LIVE"),         # L7: 5
        row(spring_name, "SCHEDULED", zone_unit, 5, 5, 5 * 1, "EMAIL", "EMAIL", "PROCESSED"),  # 5
        row(spring_name, "SCHEDULED", zone_unit, 5, 4, 5 * 3 - 3, "SMS", "SMS", "PROCESSED"),  # 12
    ]
    assert day2["byCenter"] == [{"center": center[b_name], "credits": 15}, {"center": center[a_name], "credits": 9}]
    assert day2["byDay"] == [{"day": d2.isoformat(), "credits": 24}]
    assert day2["totals"] == {"targeted": 20, "processed": 1 + 1 + 5 + 4, "credits": 2 + 5 + 5 + 12}

    # ---- a day without anything: no credits, no processed; targeted rows remain
    empty = await report(gql, dateFrom=today.isoformat(), dateTo=today.isoformat())
    assert empty["byCenter"] == [] and empty["byDay"] == []
    assert empty["totals"] == {"targeted": 20, "processed": 0, "credits": 0}

    # ---- scoped to zone Z: only Spring (created from Z); its credits per center A 9, B 8 (= 17)
    zoned = await report(gql, scope=zone)
    assert [(r["campaignName"], r["channel"]) for r in zoned["rows"]] == [(spring_name, "EMAIL"), (spring_name, "SMS")]
    assert zoned["byCenter"] == [{"center": center[a_name], "credits": 9}, {"center": center[b_name], "credits": 8}]
    assert zoned["totals"] == {"targeted": 10, "processed": 9, "credits": 17}

    # ---- the wallets agree: 100 each, minus what the report says
    wallets = {w["source"]: w["balance"] for w in (await gql("{ creditWallets{ source balance } }"))["creditWallets"]}
    assert (wallets["EMAIL"], wallets["SMS"], wallets["ALWAYS_ON"]) == (100 - 5, 100 - 12, 100 - (10 + 20))

    # ---- another organization sees none of it
    other = await tenant_factory()
    assert await report(other.gql) == {"rows": [], "byCenter": [], "byDay": [],
                                       "totals": {"targeted": 0, "processed": 0, "credits": 0}}
