"""A three-step sequence (email, LinkedIn request, LinkedIn message) end to end over GraphQL:
steps, launch, the email step sent by the sender, the midnight tick, action required, mark done
(idempotent), undo, off/on track, a reply (idempotent), the leads KPIs = the leads filter counts,
and rebuild == live."""

from datetime import datetime, timedelta, timezone

from tests.helpers import create_campaign, make_leads, mutate

STEPS = """mutation($c:ID!,$s:[StepInput!]!){ stepsSet(campaignId:$c, steps:$s){ steps{ id kind dayOffset condition }
  userErrors{ field code message } } }"""
KPIS = """query($s:ID){ leadsKpis(scope:$s){ today all{value} active{value} inactive{value} verifiedOnly{value}
  socialOnly{value} engaged{value} onTrack{value} offTrack{value} actionRequired{value changeWeek} } }"""
ACTIONS = "{ actionRequired { id state overdue dueDay step{ kind } leadName } }"
DONE = """mutation($r:ID!,$a:StepAction!){ stepMarkDone(recipientStepId:$r, action:$a){ alreadyDone
  action{ id action } recipientStep{ state actionRequired } userErrors{ code message } } }"""
EVENTS = """mutation($e:[OutreachEventInput!]!){ outreachEventsIngest(events:$e){ accepted duplicates
  rejected{ index code } userErrors{ code } } }"""
FILTER_COUNT = "query($f:LeadFilter){ leads(filter:$f){ totalCount } }"


async def _kpis(gql, scope=None):
    return (await gql(KPIS, {"s": scope}))["leadsKpis"]


async def _filter_counts(gql):
    out = {}
    for name, flt in (("all", {}), ("active", {"status": "ACTIVE"}), ("inactive", {"status": "INACTIVE"}),
                      ("verifiedOnly", {"verifiedOnly": True}), ("socialOnly", {"socialOnly": True}),
                      ("engaged", {"engaged": True}), ("onTrack", {"track": "ON_TRACK"}),
                      ("offTrack", {"track": "OFF_TRACK"}), ("actionRequired", {"actionRequired": True})):
        out[name] = (await gql(FILTER_COUNT, {"f": flt}))["leads"]["totalCount"]
    return out


def _values(k):
    return {n: k[n]["value"] for n in ("all", "active", "inactive", "verifiedOnly", "socialOnly", "engaged", "onTrack",
                                        "offTrack", "actionRequired")}


async def _tick(days: int):
    from app.outreach.service import tick

    return await tick(datetime.now(timezone.utc) + timedelta(days=days))


async def test_three_step_sequence_end_to_end(tenant):
    from app.outreach.service import rebuild
    from tests.sender.conftest import drain

    gql = tenant.gql
    leads = await make_leads(gql, 3, emailVerified=True, linkedinUrl="https://linkedin.example/in/x")
    social = await make_leads(gql, 1, linkedinUrl="https://linkedin.example/in/s")  # has email too
    from tests.helpers import upsert_leads
    only_social = await upsert_leads(gql, [{"externalId": "soc-1", "name": "S", "twitterUrl": "https://t.example/s"}])
    campaign = await create_campaign(gql, channels=[{"channel": "EMAIL"}])
    d = await gql(STEPS, {"c": campaign["id"], "s": [
        {"kind": "EMAIL", "dayOffset": 0}, {"kind": "LINKEDIN_REQUEST", "dayOffset": 1},
        {"kind": "LINKEDIN_MESSAGE", "dayOffset": 3, "condition": "IF_CONNECTED"}]})
    assert not d["stepsSet"]["userErrors"], d
    await gql("mutation($c:ID!,$i:AudienceInput!){ audienceSet(campaignId:$c, input:$i){ userErrors{ code } } }",
              {"c": campaign["id"], "i": {"leadIds": [x["id"] for x in leads]}})
    await _tick(0)  # the clock starts today
    assert not (await mutate(gql, "campaignLaunch", campaign["id"]))["userErrors"]

    k = _values(await _kpis(gql))
    assert k == {"all": 5, "active": 3, "inactive": 2, "verifiedOnly": 3, "socialOnly": 1, "engaged": 0,
                 "onTrack": 3, "offTrack": 0, "actionRequired": 0}
    assert k == await _filter_counts(gql)
    assert only_social and social

    # The email step goes out through the built-in sender on day 0.
    await drain()
    steps = (await gql("query($c:ID!){ recipientSteps(campaignId:$c){ state step{ kind } } }",
                       {"c": campaign["id"]}))["recipientSteps"]
    # Sent — the simulated provider may already report an open or a click (it decides per message id).
    email_states = [s["state"] for s in steps if s["step"]["kind"] == "EMAIL"]
    assert len(email_states) == 3 and set(email_states) <= {"SENT", "OPENED", "CLICKED"}, email_states
    assert _values(await _kpis(gql))["engaged"] == 3

    # Day 1 (the scheduler moves at local midnight): the LinkedIn requests are action required.
    await _tick(1)
    actions = (await gql(ACTIONS))["actionRequired"]
    assert [a["step"]["kind"] for a in actions] == ["LINKEDIN_REQUEST"] * 3
    k = _values(await _kpis(gql))
    assert (k["actionRequired"], k["offTrack"], k["onTrack"]) == (3, 0, 3)
    assert k == await _filter_counts(gql)

    # Mark one done twice (two people): counted once.
    first = (await gql(DONE, {"r": actions[0]["id"], "a": "REQUEST_SENT"}))["stepMarkDone"]
    again = (await gql(DONE, {"r": actions[0]["id"], "a": "REQUEST_SENT"}))["stepMarkDone"]
    assert first["recipientStep"]["state"] == "REQUEST_SENT" and not first["alreadyDone"]
    assert again["alreadyDone"] and again["action"]["id"] == first["action"]["id"]
    assert _values(await _kpis(gql))["actionRequired"] == 2
    # Undo, redo.
    undo = await gql("mutation($a:ID!){ stepUndo(actionId:$a){ recipientStep{ state actionRequired } userErrors{ code } } }",
                     {"a": first["action"]["id"]})
    assert undo["stepUndo"]["recipientStep"] == {"state": "SCHEDULED", "actionRequired": True}
    assert _values(await _kpis(gql))["actionRequired"] == 3
    await gql(DONE, {"r": actions[0]["id"], "a": "REQUEST_SENT"})

    # Day 2: the two requests not done are overdue: off track.
    await _tick(2)
    k = _values(await _kpis(gql))
    assert (k["offTrack"], k["onTrack"], k["actionRequired"]) == (2, 1, 2)
    assert k == await _filter_counts(gql)
    # A late request done: back on track.
    late = [a for a in (await gql(ACTIONS))["actionRequired"] if a["overdue"]]
    await gql(DONE, {"r": late[0]["id"], "a": "REQUEST_SENT"})
    k = _values(await _kpis(gql))
    assert (k["offTrack"], k["onTrack"]) == (1, 2)

    # LinkedIn accepted for lead 0 → its message (IF_CONNECTED) is due on day 3; a reply stops lead 1.
    lead0 = [a for a in actions if a["id"] == actions[0]["id"]][0]
    assert lead0
    ev = [{"idempotencyKey": "acc-0", "type": "LINKEDIN_ACCEPTED", "campaignId": campaign["id"],
           "leadId": leads[0]["id"], "occurredAt": "2026-01-01T10:00:00Z"},
          {"idempotencyKey": "rep-1", "type": "REPLIED", "campaignId": campaign["id"],
           "leadId": leads[1]["id"], "occurredAt": "2026-01-01T10:00:00Z"}]
    r = (await gql(EVENTS, {"e": ev}))["outreachEventsIngest"]
    assert (r["accepted"], r["duplicates"]) == (2, 0)
    r = (await gql(EVENTS, {"e": ev}))["outreachEventsIngest"]
    assert (r["accepted"], r["duplicates"]) == (0, 2)
    await _tick(3)
    kpis = (await gql("query($c:ID!){ campaignOutreachKpis(campaignId:$c){ recipients replied actionRequired "
                      "steps{ step{ kind } engaged replied actionRequired } } }", {"c": campaign["id"]}))
    c = kpis["campaignOutreachKpis"]
    assert c["recipients"] == 3 and c["replied"] == 1
    assert sorted(a["step"]["kind"] for a in (await gql(ACTIONS))["actionRequired"]) == ["LINKEDIN_MESSAGE",
                                                                                       "LINKEDIN_REQUEST"]
    live = _values(await _kpis(gql))
    assert live == await _filter_counts(gql)

    # Rebuilt from the facts == live.
    from models.outreach import LeadKpiCounter, RecipientStep
    org = int((await RecipientStep.filter(campaign_id__gt=0).order_by("-id").first()).organization_id)
    before_rows = sorted(await RecipientStep.filter(organization_id=org).values_list(
        "id", "state", "action_required", "overdue", "touched"))
    before_counters = sorted(await LeadKpiCounter.filter(organization_id=org).values_list(
        "zone_id", "center_id", "total", "active", "verified", "social_only", "engaged", "in_sequence", "off_track",
        "action_required"))
    await rebuild(org)
    assert sorted(await RecipientStep.filter(organization_id=org).values_list(
        "id", "state", "action_required", "overdue", "touched")) == before_rows
    assert sorted(await LeadKpiCounter.filter(organization_id=org).values_list(
        "zone_id", "center_id", "total", "active", "verified", "social_only", "engaged", "in_sequence", "off_track",
        "action_required")) == before_counters
    assert _values(await _kpis(gql)) == live
