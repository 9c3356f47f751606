"""In-batch idempotency does not depend on order: with a stored event, [other payload, original]
and [original, other payload] both count the original as a duplicate and reject the other."""

from tests.helpers import at, ingest, launched_campaign


async def test_stored_payload_decides_whatever_the_order(tenant):
    campaign, leads = await launched_campaign(tenant.gql, n_leads=2)
    when = at(-5)

    def event(key, ext, lead):
        return {"idempotencyKey": key, "externalId": ext, "channel": "EMAIL", "type": "SENT",
                "occurredAt": when, "campaignId": campaign["id"], "leadId": lead["id"]}

    for n, order in enumerate(("other-first", "original-first")):
        original = event(f"k{n}", f"m{n}", leads[n])
        assert (await ingest(tenant.gql, [original]))["accepted"] == 1
        other = {**original, "externalId": f"other{n}"}
        batch = [other, original] if order == "other-first" else [original, other]
        out = await ingest(tenant.gql, batch)
        assert out["accepted"] == 0 and out["duplicates"] == 1, (order, out)
        assert [r["code"] for r in out["rejected"]] == ["IDEMPOTENCY_CONFLICT"], (order, out)
        assert out["rejected"][0]["index"] == batch.index(other)


async def test_goal_events_stored_payload_decides_whatever_the_order(tenant):
    campaign, leads = await launched_campaign(tenant.gql, n_leads=1)
    q = "mutation($e:[GoalEventInput!]!){ goalEventsIngest(events:$e){ accepted duplicates rejected{ index code } } }"
    original = {"idempotencyKey": "g1", "goalType": "LEAD", "occurredAt": at(-1), "leadId": leads[0]["id"]}
    other = {**original, "key": "x"}
    assert (await tenant.gql(q, {"e": [original]}))["goalEventsIngest"]["accepted"] == 1
    for batch in ([other, original], [original, other]):
        out = (await tenant.gql(q, {"e": batch}))["goalEventsIngest"]
        assert out["accepted"] == 0 and out["duplicates"] == 1, out
        assert out["rejected"] == [{"index": batch.index(other), "code": "IDEMPOTENCY_CONFLICT"}]
