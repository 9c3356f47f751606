"""Issue 11.6: `campaigns { sends }` (a nested list) costs the same number of SQL statements at 5 and
at 50 parents (one batched ROW_NUMBER() window query, not one query per campaign), with the same
pages, totalCount and pageInfo as asking each campaign alone."""

from __future__ import annotations

from tests.helpers import create_campaign, ingest, launched_campaign
from tests.sqlcount import statements

NESTED = """query($n: Int!, $m: Int!, $f: SendFilter) { campaigns(first: $n) { edges { node { id
  sends(first: $m, filter: $f) { totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id status } } }
} } } }"""
ONE = """query($id: ID!, $m: Int!, $a: String, $f: SendFilter) { campaign(id: $id) {
  sends(first: $m, after: $a, filter: $f) { totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id status } } } } }"""


async def test_nested_sends_cost_the_same_statements_at_5_and_50_parents(tenant):
    gql = tenant.gql
    for _ in range(45):
        await create_campaign(gql)
    launched = []
    for k in range(6):  # the newest campaigns, with sends
        campaign, leads = await launched_campaign(gql, n_leads=4)
        events = [{"idempotencyKey": f"{campaign['id']}-{i}", "externalId": f"{campaign['id']}-{i}", "channel": "EMAIL",
                   "type": "SENT" if i % 2 else "FAILED", "occurredAt": "2026-01-05T10:00:00Z",
                   "campaignId": campaign["id"], "leadId": lead["id"]} for i, lead in enumerate(leads[:k % 4 + 1])]
        r = await ingest(gql, events)
        assert not r["rejected"], r
        launched.append(campaign["id"])

    await gql(NESTED, {"n": 5, "m": 10})  # warm
    with statements() as few:
        small = await gql(NESTED, {"n": 5, "m": 10})
    with statements() as many:
        large = await gql(NESTED, {"n": 50, "m": 10})
    assert len(small["campaigns"]["edges"]) == 5 and len(large["campaigns"]["edges"]) == 50
    assert len(few) == len(many), (few, many)
    assert sum('"send"' in s for s in many) <= 3, many

    # Same answers as one campaign at a time: pages, totals, pageInfo, filters, `after`.
    for variables in ({"m": 2}, {"m": 10}, {"m": 0}, {"m": 1, "f": {"status": "SENT"}}):
        nested = await gql(NESTED, {"n": 50, **variables})
        for edge in nested["campaigns"]["edges"]:
            alone = await gql(ONE, {"id": edge["node"]["id"], **variables})
            assert edge["node"]["sends"] == alone["campaign"]["sends"], variables
    total = {e["node"]["id"]: e["node"]["sends"] for e in (await gql(NESTED, {"n": 50, "m": 2}))["campaigns"]["edges"]}
    busy = [cid for cid in launched if total[cid]["pageInfo"]["hasNextPage"]]
    assert busy and all(total[c]["totalCount"] > 2 for c in busy)
    after = total[busy[0]]["pageInfo"]["endCursor"]
    rest = await gql(ONE, {"id": busy[0], "m": 10, "a": after})
    assert len(rest["campaign"]["sends"]["edges"]) == total[busy[0]]["totalCount"] - 2
