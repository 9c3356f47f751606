"""A campaign audience saved with the leads-KPI filter names (status, track, actionRequired,
engaged, socialOnly) applies them: its size, and the recipients at launch, are the KPI's leads."""

from tests.helpers import create_campaign, mutate, upsert_leads

STEPS = "mutation($c:ID!,$s:[StepInput!]!){ stepsSet(campaignId:$c, steps:$s){ userErrors{ code } } }"
AUDIENCE = """mutation($c:ID!,$i:AudienceInput!){ audienceSet(campaignId:$c, input:$i){ campaign{ audienceSize }
  userErrors{ code message } } }"""
ACTIONS = "{ actionRequired { id leadName } }"
DONE = "mutation($r:ID!){ stepMarkDone(recipientStepId:$r, action:REQUEST_SENT){ userErrors{ code } } }"


async def test_audience_filter_keeps_the_kpi_filter_names(tenant):
    gql = tenant.gql
    leads = await upsert_leads(gql, [{"externalId": x, "name": x.upper(), "email": f"{x}@x.test"} for x in "abc"]
                               + [{"externalId": "s", "name": "S", "linkedinUrl": "https://linkedin.example/in/s"}])
    seq = await create_campaign(gql, channels=[{"channel": "EMAIL", "provider": "external"}])
    assert not (await gql(STEPS, {"c": seq["id"], "s": [{"kind": "LINKEDIN_REQUEST", "dayOffset": 0}]}))[
        "stepsSet"]["userErrors"]
    assert not (await gql(AUDIENCE, {"c": seq["id"], "i": {"leadIds": [x["id"] for x in leads[:2]]}}))[
        "audienceSet"]["userErrors"]
    assert not (await mutate(gql, "campaignLaunch", seq["id"]))["userErrors"]
    a = [x for x in (await gql(ACTIONS))["actionRequired"] if x["leadName"] == "A"][0]
    assert not (await gql(DONE, {"r": a["id"]}))["stepMarkDone"]["userErrors"]
    # Now: A and B active; B action required; S social only; C inactive.

    async def size(flt: dict) -> int:
        c = await create_campaign(gql, channels=[{"channel": "EMAIL", "provider": "external"}])
        d = (await gql(AUDIENCE, {"c": c["id"], "i": {"filter": flt}}))["audienceSet"]
        assert not d["userErrors"], d
        count = (await gql("query($f:LeadFilter){ leads(filter:$f){ totalCount } }", {"f": flt}))["leads"]
        assert d["campaign"]["audienceSize"] == count["totalCount"], (flt, d, count)
        return d["campaign"]["audienceSize"]

    assert await size({}) == 4
    assert await size({"status": "ACTIVE"}) == 2
    assert await size({"status": "INACTIVE"}) == 2
    assert await size({"actionRequired": True}) == 1
    assert await size({"track": "ON_TRACK"}) == 2
    assert await size({"socialOnly": True}) == 1
    assert await size({"engaged": True}) == 0  # a LinkedIn request is not a touch-point for `engaged`

    # At launch the saved filter resolves the recipients: only B (action required).
    c = await create_campaign(gql, channels=[{"channel": "EMAIL", "provider": "external"}])
    assert not (await gql(AUDIENCE, {"c": c["id"], "i": {"filter": {"actionRequired": True}}}))[
        "audienceSet"]["userErrors"]
    assert not (await mutate(gql, "campaignLaunch", c["id"]))["userErrors"]
    reach = (await gql("query($id:ID!){ campaign(id:$id){ reach } }", {"id": c["id"]}))["campaign"]["reach"]
    assert reach == 1
