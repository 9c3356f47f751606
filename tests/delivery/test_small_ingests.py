"""Issue 15 (the mix's write): small ingests take the short paths — analytics skips the recipient flags
and attribution of pairs whose sends moved no time they depend on, the rollups, spend and outreach
touches are deferred writes of the ingestion (one statement with the counters and the change log on
PostgreSQL), new sends and their events are one statement, checking/planning reads one statement.

Each test compares them with the general path: the same events posted one per request in one
organization and as one batch in another give the same answers, and both equal what the rebuilds
(counters, analytics, outreach) compute from the sends. The one-event path fails these when a pair
whose send was delivered, read, clicked or replied is skipped (exposures, engagements, attribution),
when the deferred spend is lost or double-counted, or when the touches are not written."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from tests.helpers import create_campaign, ingest, make_leads, mutate

SNAPSHOT = """query($id:ID!){ campaign(id:$id){ status statusReason budget{ spent{ amount } }
  metrics{ totals{ generated pending sent delivered failed bounced read clicked replied unsubscribed cost{ amount }
                   credits } }
  funnel{ prospects exposures engagements conversions }
  stats{ totals{ sent viewed clicked exposures engagements goals revenue{ amount } goalsAfterClick
                 revenueAfterClick{ amount } controlGoals }
         daily{ day sent viewed clicked exposures engagements goals revenue{ amount } goalsAfterClick }
         recipients(first: 100){ edges{ node{ group lead{ externalId } sentAt viewedAt clickedAt goalAt } } }
         byChannel{ channel daily{ day exposures reached conversions } } } } }"""
KPIS = "{ leadsKpis{ all{value} engaged{value} } }"
GOALS = """mutation($e:[GoalEventInput!]!){ goalEventsIngest(events:$e){ accepted rejected{ index code } } }"""

# Each send's events (type, minutes after the previous one); an event list is posted out of order.
SCENARIOS = [
    [("SENT", 0)],
    [("SENT", 0), ("DELIVERED", 3)],
    [("SENT", 0), ("DELIVERED", 2), ("OPENED", 30)],
    [("SENT", 0), ("OPENED", 40), ("CLICKED", 5)],
    [("DELIVERED", 0), ("CLICKED", 90)],
    [("SENT", 0), ("REPLIED", 200)],
    [("SENT", 0), ("BOUNCED", 1)],
    [("FAILED", 0)],
    [("SENT", 0), ("DELIVERED", 1), ("UNSUBSCRIBED", 60)],
    [("QUEUED", 0), ("SENT", 5)],
]


def _iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _workload(seed: int, base: datetime, n_leads: int) -> tuple[list[dict], list[dict]]:
    """Send events (campaign and lead filled in per tenant: `lead` is an index) and goal events."""
    rng = random.Random(seed)
    events, goals = [], []
    for s in range(14):
        lead = rng.randrange(n_leads)
        t = base + timedelta(minutes=rng.uniform(0, 2 * 1440))
        cost = rng.choice([None, "0.25"])
        for k, (type_, gap) in enumerate(rng.choice(SCENARIOS)):
            t += timedelta(minutes=gap)
            e = {"idempotencyKey": f"s{s}-{k}", "externalId": f"m{s}", "channel": "EMAIL", "type": type_,
                 "occurredAt": _iso(t), "lead": lead}
            if cost and type_ == "SENT":
                e["cost"] = cost
            events.append(e)
    for g in range(5):
        goals.append({"idempotencyKey": f"g{g}", "lead": rng.randrange(n_leads), "goalType": "SALE",
                      "value": "12.50", "occurredAt": _iso(base + timedelta(minutes=rng.uniform(60, 3 * 1440)))})
    rng.shuffle(events)
    return events, goals


async def _tenant_campaign(tenant, n_leads: int):
    gql = tenant.gql
    leads = await make_leads(gql, n_leads)
    c = await create_campaign(gql, controlGroupPercent=0, goal={"type": "SALE"}, budget="2",
                              channels=[{"channel": "EMAIL", "unitCost": "0.10", "creditsPerMessage": 1}])
    d = await gql("mutation($c:ID!,$i:AudienceInput!){ audienceSet(campaignId:$c, input:$i){ userErrors{ code } } }",
                  {"c": c["id"], "i": {"leadIds": [lead["id"] for lead in leads]}})
    assert not d["audienceSet"]["userErrors"], d
    assert not (await mutate(gql, "campaignLaunch", c["id"]))["userErrors"]
    return c, leads


def _bind(e: dict, c: dict, leads: list[dict]) -> dict:
    out = {k: v for k, v in e.items() if k != "lead"}
    out.update(campaignId=c["id"], leadId=leads[e["lead"]]["id"])
    return out


async def _state(tenant, c) -> dict:
    gql = tenant.gql
    snap = (await gql(SNAPSHOT, {"id": c["id"]}))["campaign"]
    snap["stats"]["recipients"]["edges"].sort(key=lambda e: e["node"]["lead"]["externalId"].split("-")[-1])
    for e in snap["stats"]["recipients"]["edges"]:  # lead external ids carry the tenant's prefix
        e["node"]["lead"]["externalId"] = e["node"]["lead"]["externalId"].split("-")[-1]
    return {"campaign": snap, "kpis": (await gql(KPIS))["leadsKpis"]}


async def _rebuilt(tenant, c) -> dict:
    from app.analytics.service import rebuild as rebuild_analytics
    from app.delivery.counters import rebuild as rebuild_counters
    from app.outreach.service import rebuild as rebuild_outreach
    from graph.core import from_global_id

    cid = from_global_id(c["id"])[1]
    await rebuild_counters([cid])
    await rebuild_analytics([cid])
    await rebuild_outreach(from_global_id(tenant.org_id)[1])
    return await _state(tenant, c)


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_one_event_ingests_equal_a_batch_and_the_rebuilds(tenant_factory, seed):
    n_leads = 6
    base = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(minutes=1)
    events, goals = _workload(seed, base, n_leads)
    (one, c1, leads1), (batch, c2, leads2) = [
        (t, *await _tenant_campaign(t, n_leads)) for t in (await tenant_factory(), await tenant_factory())]

    # Goals first in both (attribution is decided when they arrive, re-decided by every read).
    for t, leads in ((one, leads1), (batch, leads2)):
        r = await t.gql(GOALS, {"e": [{**{k: v for k, v in g.items() if k != "lead"},
                                       "leadId": leads[g["lead"]]["id"]} for g in goals]})
        assert r["goalEventsIngest"]["accepted"] == len(goals), r
    for e in events:  # one event per request
        r = await ingest(one.gql, [_bind(e, c1, leads1)])
        assert r["accepted"] == 1 and not r["rejected"], (e, r)
    r = await ingest(batch.gql, [_bind(e, c2, leads2) for e in events])
    assert r["accepted"] == len(events) and not r["rejected"], r

    small, big = await _state(one, c1), await _state(batch, c2)
    assert small["campaign"]["stats"]["totals"]["exposures"] > 0  # the workload moves the flags
    assert small["campaign"]["funnel"]["engagements"] > 0
    assert small == big
    assert await _rebuilt(one, c1) == small
    assert await _rebuilt(batch, c2) == big


async def test_a_sent_only_ingest_skips_the_flags_and_a_delivery_does_not(tenant):
    """The skip itself: a new send that is only SENT reads no other send of its recipient; a DELIVERED
    event for it moves the exposure (the recipient's flags and the daily exposures)."""
    from tests.sqlcount import statements

    c, leads = await _tenant_campaign(tenant, 2)
    t = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(minutes=1)
    sent = {"idempotencyKey": "k1", "externalId": "x1", "channel": "EMAIL", "type": "SENT", "occurredAt": _iso(t),
            "campaignId": c["id"], "leadId": leads[0]["id"]}
    with statements() as queries:
        assert (await ingest(tenant.gql, [sent]))["accepted"] == 1
    assert not [q for q in queries if "FROM send WHERE (campaign_id, lead_id)" in q or "FROM goal_event" in q], queries
    before = await _state(tenant, c)
    assert before["campaign"]["funnel"]["exposures"] == 0
    delivered = {"idempotencyKey": "k2", "externalId": "x1", "channel": "EMAIL", "type": "DELIVERED",
                 "occurredAt": _iso(t + timedelta(minutes=1))}
    assert (await ingest(tenant.gql, [delivered]))["accepted"] == 1
    after = await _state(tenant, c)
    assert after["campaign"]["funnel"]["exposures"] == 1
    assert after["campaign"]["stats"]["totals"]["exposures"] == 1
    assert await _rebuilt(tenant, c) == after
