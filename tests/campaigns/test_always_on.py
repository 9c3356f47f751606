"""ALWAYS_ON campaigns add newly matching leads as they appear (SPEC §3)."""

from tests.helpers import create_campaign, make_leads, mutate, upsert_leads


async def test_always_on_adds_matching_leads_with_exact_control_share(tenant):
    gql = tenant.gql
    await make_leads(gql, 10, prefix="vip-old", tags=["vip"])
    await make_leads(gql, 5, prefix="other", tags=["basic"])
    campaign = await create_campaign(gql, type="ALWAYS_ON", controlGroupPercent=20)
    d = await gql("mutation($c:ID!,$i:AudienceInput!){ audienceSet(campaignId:$c, input:$i){ campaign{ audienceSize } userErrors{ code } } }",
                  {"c": campaign["id"], "i": {"filter": {"tags": ["vip"]}}})
    assert d["audienceSet"]["campaign"]["audienceSize"] == 10
    r = await mutate(gql, "campaignLaunch", campaign["id"])
    assert r["campaign"]["status"] == "LIVE" and r["campaign"]["reach"] == 8

    await make_leads(gql, 10, prefix="vip-new", tags=["vip"])  # match
    await make_leads(gql, 4, prefix="basic-new", tags=["basic"])  # no match
    q = "query($id:ID!){ campaign(id:$id){ audienceSize reach controlSize } }"
    c = (await gql(q, {"id": campaign["id"]}))["campaign"]
    assert c["audienceSize"] == 20
    assert c["controlSize"] == 4 and c["reach"] == 16  # 20 % of 20 exactly

    # re-upserting the same leads adds nobody twice
    await upsert_leads(gql, [{"externalId": f"vip-new-{i}", "tags": ["vip"]} for i in range(10)])
    assert (await gql(q, {"id": campaign["id"]}))["campaign"]["audienceSize"] == 20


async def test_scheduled_campaign_does_not_grow(tenant):
    gql = tenant.gql
    await make_leads(gql, 3, prefix="s-old", tags=["t"])
    campaign = await create_campaign(gql)
    await gql("mutation($c:ID!,$i:AudienceInput!){ audienceSet(campaignId:$c, input:$i){ userErrors{ code } } }",
              {"c": campaign["id"], "i": {"filter": {"tags": ["t"]}}})
    await mutate(gql, "campaignLaunch", campaign["id"])
    await make_leads(gql, 3, prefix="s-new", tags=["t"])
    c = (await gql("query($id:ID!){ campaign(id:$id){ audienceSize } }", {"id": campaign["id"]}))["campaign"]
    assert c["audienceSize"] == 3
