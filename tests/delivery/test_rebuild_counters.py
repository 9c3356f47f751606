"""Counters and spend kept incrementally equal a full rebuild (SPEC §4 counters, §6 spend).

A seeded random workload (several campaigns, channels and centers; a few
hundred send events, duplicated, shuffled and cut into batches; logged spend
with a reversal) is pushed through the public API. What the API shows is read,
`app.delivery.counters.rebuild()` is called directly, and the API must show
exactly the same. The second variant first wipes the counters (and the
campaigns' spend rollup) to prove that rebuild really recomputes them.
"""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from app.db import execute, fetch
from app.delivery import counters
from graph.core import from_global_id
from models.stats import COUNTER_FIELDS
from tests.helpers import METRIC_FIELDS, at, create_campaign, ingest, mutate, upsert_leads

CHANNEL_SETS = [
    [{"channel": "EMAIL", "unitCost": "0.01", "creditsPerMessage": 1},
     {"channel": "SMS", "unitCost": "0.05", "creditsPerMessage": 2}],
    [{"channel": "EMAIL", "unitCost": "0.002"},
     {"channel": "WHATSAPP", "unitCost": "0.03", "creditsPerMessage": 3},
     {"channel": "PUSH", "unitCost": "0.0001", "creditsPerMessage": 1}],
    [{"channel": "SMS", "unitCost": "0.07", "creditsPerMessage": 1},
     {"channel": "EMAIL", "unitCost": "0.015", "creditsPerMessage": 2}],
]

# Event sequences of one send (type, minutes after the previous event, extra fields).
SCENARIOS = [
    [("QUEUED", 0, {}), ("SENT", 2, {}), ("DELIVERED", 5, {})],
    [("SENT", 0, {}), ("DELIVERED", 1, {}), ("OPENED", 30, {}), ("CLICKED", 2, {})],
    [("SENT", 0, {}), ("BOUNCED", 3, {"bounceType": "SOFT"})],
    [("FAILED", 0, {"reason": "invalid"})],
    [("QUEUED", 0, {}), ("FAILED", 1, {"reason": "rejected"})],
    [("SENT", 0, {}), ("DELIVERED", 1, {}), ("OPENED", 1, {"machine": True})],
    [("DELIVERED", 0, {}), ("OPENED", 600, {})],  # read the next day
    [("SENT", 0, {}), ("FAILED", 4, {})],
    [("SENT", 0, {}), ("DELIVERED", 1, {}), ("REPLIED", 90, {}), ("UNSUBSCRIBED", 5, {})],
    [("QUEUED", 0, {})],
    [("SENT", 0, {"cost": "0.33", "credits": 7}), ("DELIVERED", 2, {})],
    [("QUEUED", 0, {}), ("SENT", 1500, {}), ("DELIVERED", 3, {}), ("CLICKED", 9, {})],  # sent the next day
    [("SENT", 0, {}), ("OPENED", 10, {}), ("BOUNCED", 20, {})],
]

CAMPAIGN_Q = f"""query($id:ID!){{ campaign(id:$id){{ id status reach
  metrics{{ totals{{ {METRIC_FIELDS} }} byChannel{{ channel {METRIC_FIELDS} }} }}
  budget{{ allocated{{ amount }} spent{{ amount }} remaining{{ amount }} utilization loggedSpend{{ amount }}
          byChannel{{ channel cost{{ amount }} }} }}
}} }}"""

DASH_Q = """query($s:ID){ dashboard(scope:$s){ activeCampaigns totalReach totalSpent{ amount } totalBudget{ amount }
  budgetUtilization } }"""


async def _workload(tenant, seed: int) -> tuple[list[str], list[str]]:
    """Build the random workload; returns (campaign ids, scope ids for the dashboard)."""
    rng = random.Random(seed)
    gql = tenant.gql
    zones = [await tenant.zone() for _ in range(2)]
    centers = [await tenant.center(zones[0]), await tenant.center(zones[0]), await tenant.center(zones[1])]
    homes = centers + [None]
    leads = await upsert_leads(gql, [
        {"externalId": f"w{seed}-{i}", "name": f"Lead {i}", "email": f"w{seed}-{i}@example.test",
         "phone": f"+3360000{i:04d}", **({"centerId": homes[i % 4]} if homes[i % 4] else {})}
        for i in range(16)])

    campaigns = []
    for n, channels in enumerate(CHANNEL_SETS):
        c = await create_campaign(gql, channels=channels, budget=["50", "5", "0"][n])
        d = await gql("mutation($c:ID!,$i:AudienceInput!){ audienceSet(campaignId:$c, input:$i){ userErrors{ code } } }",
                      {"c": c["id"], "i": {"leadIds": [lead["id"] for lead in leads[n::2]]}})
        assert not d["audienceSet"]["userErrors"], d
        r = await mutate(gql, "campaignLaunch", c["id"])
        assert not r["userErrors"], r
        campaigns.append(c)

    events: list[dict] = []
    key = 0
    for ci, c in enumerate(campaigns):
        channels = [ch["channel"] for ch in CHANNEL_SETS[ci]]
        for s in range(rng.randint(28, 36)):
            ext = f"w{seed}-c{ci}-s{s}"
            channel, lead = rng.choice(channels), rng.choice(leads[ci::2])  # a recipient of the campaign
            minute = rng.uniform(0, 3 * 1440)  # spread over several days (and midnights)
            for type_, gap, extra in rng.choice(SCENARIOS):
                minute += gap
                key += 1
                events.append({"idempotencyKey": f"w{seed}-k{key}", "externalId": ext, "channel": channel,
                               "type": type_, "occurredAt": at(round(minute, 3)), "campaignId": c["id"],
                               "leadId": lead["id"], **extra})
    unique = len(events)
    events += [dict(e) for e in rng.sample(events, k=unique // 6)]  # at-least-once delivery
    rng.shuffle(events)
    accepted = duplicates = 0
    while events:
        n = rng.randint(1, 60)
        batch, events = events[:n], events[n:]
        r = await ingest(gql, batch)
        assert r["rejected"] == [] and r["userErrors"] == [], r
        accepted += r["accepted"]
        duplicates += r["duplicates"]
    assert accepted == unique and duplicates == unique // 6
    assert unique >= 200

    spend_q = ("mutation($i:SpendLogInput!){ spendLog(input:$i){ entry{ id } userErrors{ code message } } }")
    for c in campaigns:
        ids = []
        for _ in range(rng.randint(2, 3)):
            d = await gql(spend_q, {"i": {"campaignId": c["id"], "amount": f"{rng.randint(1, 900) / 100:.2f}",
                                          "category": rng.choice(["design", "printing", "media"])}})
            assert not d["spendLog"]["userErrors"], d
            ids.append(d["spendLog"]["entry"]["id"])
        # Reverse the first entry of the campaign.
        amount = (await fetch("SELECT amount_micros FROM spend_entry WHERE id = ?",
                              [from_global_id(ids[0])[1]]))[0]["amount_micros"]
        d = await gql(spend_q, {"i": {"campaignId": c["id"], "amount": str(Decimal(-int(amount)) / 1_000_000),
                                      "category": "correction", "reverses": ids[0]}})
        assert not d["spendLog"]["userErrors"], d
    # One campaign paused: the dashboard's active/reach figures depend on status, not counters.
    assert not (await mutate(gql, "campaignPause", campaigns[1]["id"]))["userErrors"]
    return [c["id"] for c in campaigns], [None, tenant.org_id, *zones, *centers]


async def _snapshot(gql, campaign_ids: list[str], scopes: list[str | None]) -> dict:
    out = {}
    for cid in campaign_ids:
        out[cid] = (await gql(CAMPAIGN_Q, {"id": cid}))["campaign"]
    for scope in scopes:
        out[f"dashboard:{scope}"] = (await gql(DASH_Q, {"s": scope}))["dashboard"]
    return out


async def _counter_rows(campaign_ids: list[str]) -> list[tuple]:
    """The raw rollup rows of these campaigns (rows that net to zero left out)."""
    pks = [from_global_id(c)[1] for c in campaign_ids]
    cols = ", ".join(COUNTER_FIELDS)
    rows = await fetch(f"SELECT campaign_id, channel, center_key, day, {cols} FROM send_counter "
                       f"WHERE campaign_id IN ({','.join('?' for _ in pks)})", pks)
    out = []
    for r in rows:
        values = tuple(int(r[f]) for f in COUNTER_FIELDS)
        if any(values):
            out.append((r["campaign_id"], r["channel"], r["center_key"], str(r["day"])[:10], values))
    return sorted(out)


def _nonzero(snapshot: dict, campaign_ids: list[str]) -> bool:
    return any(snapshot[c]["metrics"]["totals"]["generated"] for c in campaign_ids)


@pytest.mark.parametrize("seed", [7])
async def test_rebuild_matches_incremental_counters(tenant_factory, seed):
    tenant = await tenant_factory(timezone="Europe/Paris")
    gql = tenant.gql
    campaign_ids, scopes = await _workload(tenant, seed)
    before = await _snapshot(gql, campaign_ids, scopes)
    rows_before = await _counter_rows(campaign_ids)
    assert _nonzero(before, campaign_ids) and rows_before

    await counters.rebuild()

    after = await _snapshot(gql, campaign_ids, scopes)
    assert after == before
    assert await _counter_rows(campaign_ids) == rows_before


@pytest.mark.parametrize("seed", [11])
async def test_rebuild_recomputes_from_zeroed_counters(tenant_factory, seed):
    tenant = await tenant_factory(timezone="America/New_York")
    gql = tenant.gql
    campaign_ids, scopes = await _workload(tenant, seed)
    before = await _snapshot(gql, campaign_ids, scopes)
    rows_before = await _counter_rows(campaign_ids)

    # Wipe the rollups: every counter of the table, and the spend rollup of these campaigns.
    await execute("UPDATE send_counter SET " + ", ".join(f"{f} = 0" for f in COUNTER_FIELDS))
    pks = [from_global_id(c)[1] for c in campaign_ids]
    await execute(f"UPDATE campaign SET spent_micros = 0 WHERE id IN ({','.join('?' for _ in pks)})", pks)
    wiped = await _snapshot(gql, campaign_ids, scopes)
    assert not _nonzero(wiped, campaign_ids)
    assert all(Decimal(wiped[c]["budget"]["spent"]["amount"]) == 0 for c in campaign_ids)
    assert wiped != before

    await counters.rebuild()

    after = await _snapshot(gql, campaign_ids, scopes)
    assert after == before
    assert await _counter_rows(campaign_ids) == rows_before
