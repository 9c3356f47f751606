"""A goal reported before launch counts the same live and rebuilt.

Regression tests: each proved a bug found in review (now fixed) through the public API.
"""

from __future__ import annotations

from tests.helpers import create_campaign, make_leads



def _pk(gid: str) -> int:
    import base64

    return int(base64.b64decode(gid).decode().split(":")[1])



# ---------------------------------------------------------------- analytics


async def test_goal_ingested_before_launch_counts_the_same_live_and_rebuilt(tenant):
    from datetime import datetime, timedelta, timezone

    from app.analytics.service import rebuild

    gql = tenant.gql
    leads = await make_leads(gql, 10)
    c = await create_campaign(gql, controlGroupPercent=50, goal={"type": "SALE"}, channels=[{"channel": "EMAIL"}])
    d = await gql("mutation($c:ID!,$i:AudienceInput!){ audienceSet(campaignId:$c, input:$i){ userErrors{ code } } }",
                  {"c": c["id"], "i": {"leadIds": [lead["id"] for lead in leads]}})
    assert not d["audienceSet"]["userErrors"]
    soon = (datetime.now(timezone.utc) + timedelta(minutes=10)).isoformat().replace("+00:00", "Z")
    g = await gql("""mutation($e:[GoalEventInput!]!){ goalEventsIngest(events:$e){ accepted rejected{ code } } }""",
                  {"e": [{"idempotencyKey": f"g{i}", "leadId": lead["id"], "goalType": "SALE", "value": "10",
                          "occurredAt": soon} for i, lead in enumerate(leads)]})
    assert g["goalEventsIngest"]["accepted"] == 10, g
    r = await gql("mutation($id:ID!){ campaignLaunch(id:$id){ userErrors{ code message } } }", {"id": c["id"]})
    assert not r["campaignLaunch"]["userErrors"], r
    q = "query($id:ID!){ campaign(id:$id){ lift{ controlSize controlConversions } } }"
    live = (await gql(q, {"id": c["id"]}))["campaign"]["lift"]
    await rebuild([_pk(c["id"])])
    rebuilt = (await gql(q, {"id": c["id"]}))["campaign"]["lift"]
    assert rebuilt["controlSize"] == 5
    assert live == rebuilt, (live, rebuilt)
