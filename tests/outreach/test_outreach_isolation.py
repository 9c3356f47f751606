"""Scope and concurrency: a center-scoped user sees only its leads' steps and actions; two people
marking the same step done at once, and the same reply twice at once, count once."""

import asyncio

from tests.helpers import create_campaign, mutate, upsert_leads

STEPS = "mutation($c:ID!,$s:[StepInput!]!){ stepsSet(campaignId:$c, steps:$s){ userErrors{ code } } }"
ACTIONS = "{ actionRequired { id leadName } }"
DONE = """mutation($r:ID!){ stepMarkDone(recipientStepId:$r, action:REQUEST_SENT){ alreadyDone userErrors{ code } } }"""
KPIS = "query($s:ID){ leadsKpis(scope:$s){ all{value} actionRequired{value} } }"


async def _setup(tenant):
    gql = tenant.gql
    zone = await tenant.zone()
    c1, c2 = await tenant.center(zone), await tenant.center(zone)
    leads = await upsert_leads(gql, [
        {"externalId": "a", "name": "A", "email": "a@x.test", "centerId": c1},
        {"externalId": "b", "name": "B", "email": "b@x.test", "centerId": c2}])
    campaign = await create_campaign(gql, channels=[{"channel": "EMAIL", "provider": "external"}])
    assert not (await gql(STEPS, {"c": campaign["id"], "s": [{"kind": "LINKEDIN_REQUEST", "dayOffset": 0}]}))[
        "stepsSet"]["userErrors"]
    await gql("mutation($c:ID!,$i:AudienceInput!){ audienceSet(campaignId:$c, input:$i){ userErrors{ code } } }",
              {"c": campaign["id"], "i": {"leadIds": [x["id"] for x in leads]}})
    assert not (await mutate(gql, "campaignLaunch", campaign["id"]))["userErrors"]
    return campaign, leads, c1, c2


async def test_center_scope_sees_only_its_leads_steps(tenant, tenant_factory):
    campaign, leads, c1, c2 = await _setup(tenant)
    owner = tenant.gql
    assert sorted(a["leadName"] for a in (await owner(ACTIONS))["actionRequired"]) == ["A", "B"]
    center = await tenant.member("MANAGER", scope=c1)
    mine = (await center(ACTIONS))["actionRequired"]
    assert [a["leadName"] for a in mine] == ["A"]
    k = (await center(KPIS, {"s": None}))["leadsKpis"]
    assert (k["all"]["value"], k["actionRequired"]["value"]) == (1, 1)
    assert (await center(KPIS, {"s": c2}))["leadsKpis"] is None  # a foreign unit: null
    # B's step: not found for the center user (same as a missing id).
    theirs = [a for a in (await owner(ACTIONS))["actionRequired"] if a["leadName"] == "B"][0]
    r = (await center(DONE, {"r": theirs["id"]}))["stepMarkDone"]
    assert r["userErrors"][0]["code"] == "NOT_FOUND"
    steps = (await center("query($c:ID!){ recipientSteps(campaignId:$c){ leadName } }", {"c": campaign["id"]}))
    assert [s["leadName"] for s in steps["recipientSteps"]] == ["A"]
    # Another organization sees nothing of it.
    other = await tenant_factory()
    assert (await other.gql(ACTIONS))["actionRequired"] == []
    r = (await other.gql(DONE, {"r": theirs["id"]}))["stepMarkDone"]
    assert r["userErrors"][0]["code"] == "NOT_FOUND"
    ev = {"idempotencyKey": "x", "type": "REPLIED", "campaignId": campaign["id"], "leadId": leads[0]["id"],
          "occurredAt": "2026-01-01T00:00:00Z"}
    r = await other.gql("mutation($e:[OutreachEventInput!]!){ outreachEventsIngest(events:$e){ accepted "
                        "rejected{ code } } }", {"e": [ev]})
    assert r["outreachEventsIngest"]["accepted"] == 0
    # An analyst reads but may not mark done.
    analyst = await tenant.member("ANALYST")
    r = (await analyst(DONE, {"r": theirs["id"]}))["stepMarkDone"]
    assert r["userErrors"][0]["code"] == "FORBIDDEN"


async def test_concurrent_mark_done_and_reply_count_once(tenant):
    campaign, leads, _, _ = await _setup(tenant)
    gql = tenant.gql
    other = await tenant.member("MANAGER")
    target = (await gql(ACTIONS))["actionRequired"][0]["id"]
    results = await asyncio.gather(*[(gql if i % 2 else other)(DONE, {"r": target}) for i in range(6)])
    assert sum(1 for r in results if not r["stepMarkDone"]["alreadyDone"]) == 1
    assert (await gql(KPIS, {"s": None}))["leadsKpis"]["actionRequired"]["value"] == 1
    ev = {"idempotencyKey": "rep", "type": "REPLIED", "campaignId": campaign["id"], "leadId": leads[1]["id"],
          "occurredAt": "2026-01-01T00:00:00Z"}
    q = "mutation($e:[OutreachEventInput!]!){ outreachEventsIngest(events:$e){ accepted duplicates } }"
    results = await asyncio.gather(*[gql(q, {"e": [ev]}) for _ in range(4)])
    assert sum(r["outreachEventsIngest"]["accepted"] for r in results) == 1
    assert sum(r["outreachEventsIngest"]["duplicates"] for r in results) == 3
    k = (await gql(KPIS, {"s": None}))["leadsKpis"]
    assert k["actionRequired"]["value"] == 0  # B replied: its step is skipped
    kp = (await gql("query($c:ID!){ campaignOutreachKpis(campaignId:$c){ replied engaged } }", {"c": campaign["id"]}))
    assert kp["campaignOutreachKpis"] == {"replied": 1, "engaged": 1}


CAMPAIGN_OUTREACH = """query($id:ID!){ campaign(id:$id){ steps{ id kind dayOffset condition }
  kpis{ campaignId recipients scheduled engaged replied rsvp actionRequired offTrack
        steps{ step{ kind } recipients scheduled engaged replied rsvp actionRequired } } } }"""


async def test_campaign_steps_and_kpis_fields_follow_the_callers_scope(tenant, tenant_factory):
    campaign, leads, c1, c2 = await _setup(tenant)
    owner = tenant.gql
    c = (await owner(CAMPAIGN_OUTREACH, {"id": campaign["id"]}))["campaign"]
    assert [(s["kind"], s["dayOffset"], s["condition"]) for s in c["steps"]] == [("LINKEDIN_REQUEST", 0, "NONE")]
    k = c["kpis"]
    assert k["campaignId"] == campaign["id"]
    assert {n: k[n] for n in ("recipients", "scheduled", "engaged", "replied", "rsvp", "actionRequired",
                              "offTrack")} == {"recipients": 2, "scheduled": 2, "engaged": 0, "replied": 0,
                                               "rsvp": 0, "actionRequired": 2, "offTrack": 0}
    assert k["steps"] == [{"step": {"kind": "LINKEDIN_REQUEST"}, "recipients": 2, "scheduled": 2, "engaged": 0,
                           "replied": 0, "rsvp": 0, "actionRequired": 2}]
    # The same figures as the top-level query.
    top = (await owner("query($c:ID!){ campaignOutreachKpis(campaignId:$c){ recipients actionRequired } }",
                       {"c": campaign["id"]}))["campaignOutreachKpis"]
    assert top == {"recipients": 2, "actionRequired": 2}

    # A marks done, B replies: engaged 1, replied 1, nothing left to do.
    a_step = [a for a in (await owner(ACTIONS))["actionRequired"] if a["leadName"] == "A"][0]
    await owner(DONE, {"r": a_step["id"]})
    ev = {"idempotencyKey": "rep-b", "type": "REPLIED", "campaignId": campaign["id"], "leadId": leads[1]["id"],
          "occurredAt": "2026-01-01T00:00:00Z"}
    await owner("mutation($e:[OutreachEventInput!]!){ outreachEventsIngest(events:$e){ accepted } }", {"e": [ev]})
    k = (await owner(CAMPAIGN_OUTREACH, {"id": campaign["id"]}))["campaign"]["kpis"]
    assert (k["recipients"], k["scheduled"], k["engaged"], k["replied"], k["actionRequired"]) == (2, 0, 1, 1, 0)

    # A center-scoped user does not see an organization-owned campaign: neither its steps nor its KPIs.
    center = await tenant.member("MANAGER", scope=c1)
    assert (await center(CAMPAIGN_OUTREACH, {"id": campaign["id"]}))["campaign"] is None
    assert (await center("query($c:ID!){ campaignOutreachKpis(campaignId:$c){ recipients } "
                         "outreachSteps(campaignId:$c){ id } }", {"c": campaign["id"]})) == {
        "campaignOutreachKpis": None, "outreachSteps": []}
    # Another organization: the campaign is not found at all.
    other = await tenant_factory()
    assert (await other.gql(CAMPAIGN_OUTREACH, {"id": campaign["id"]}))["campaign"] is None
