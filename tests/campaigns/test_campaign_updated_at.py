"""Issue 12 item 13: Campaign.updatedAt moves with the campaign's own changes (settings, status), not with sends."""

from __future__ import annotations

import asyncio

from tests.helpers import create_campaign, ingest, make_leads, mutate

Q = "query($id:ID!){ campaign(id:$id){ createdAt updatedAt status } }"


async def test_updated_at_follows_settings_and_status(tenant):
    gql = tenant.gql
    c = await create_campaign(gql, channels=[{"channel": "EMAIL", "unitCost": "0"}])
    first = (await gql(Q, {"id": c["id"]}))["campaign"]
    assert first["updatedAt"] >= first["createdAt"]
    await asyncio.sleep(0.02)
    u = await gql("mutation($id:ID!){ campaignUpdate(id:$id, input:{name:\"Renamed\"}){ userErrors{ code } } }",
                  {"id": c["id"]})
    assert not u["campaignUpdate"]["userErrors"]
    renamed = (await gql(Q, {"id": c["id"]}))["campaign"]
    assert renamed["updatedAt"] > first["updatedAt"]
    leads = await make_leads(gql, 1)
    await gql("mutation($c:ID!,$i:AudienceInput!){ audienceSet(campaignId:$c, input:$i){ userErrors{ code } } }",
              {"c": c["id"], "i": {"leadIds": [leads[0]["id"]]}})
    await asyncio.sleep(0.02)
    assert not (await mutate(gql, "campaignLaunch", c["id"]))["userErrors"]
    launched = (await gql(Q, {"id": c["id"]}))["campaign"]
    assert launched["status"] == "LIVE" and launched["updatedAt"] > renamed["updatedAt"]
    # an event on one of its sends is not a change of the campaign
    r = await ingest(gql, [{"idempotencyKey": "u-1", "externalId": "u-1", "channel": "EMAIL", "type": "SENT",
                            "occurredAt": "2026-11-20T09:00:00Z", "campaignId": c["id"], "leadId": leads[0]["id"]}])
    assert r["accepted"] == 1, r
    assert (await gql(Q, {"id": c["id"]}))["campaign"]["updatedAt"] == launched["updatedAt"]
    await asyncio.sleep(0.02)
    assert not (await mutate(gql, "campaignPause", c["id"]))["userErrors"]
    paused = (await gql(Q, {"id": c["id"]}))["campaign"]
    assert paused["updatedAt"] > launched["updatedAt"]
