"""Text a database cannot hold, or that is absurdly long, is refused with a code — not an
internal error — on both backends; in a batch ingest only the event concerned is rejected."""

from tests.helpers import at, ingest, launched_campaign

NUL = "a\x00b"


async def test_nul_bytes_in_text_arguments_are_invalid(tenant):
    cases = [
        ("mutation($n:String!){ zoneCreate(name:$n){ zone{ id } userErrors{ code } } }", {"n": NUL}, ["$n"]),
        ("query($t:String){ campaigns(filter:{text:$t}){ totalCount } }", {"t": NUL}, ["$t"]),
        ("query($s:String){ leads(filter:{search:$s}){ totalCount } }", {"s": NUL}, ["$s"]),
        ("query($f:CampaignFilter){ campaigns(filter:$f){ totalCount } }", {"f": {"text": NUL}}, ["$f", "text"]),
        ('{ campaigns(filter:{text:"a\\u0000b"}){ totalCount } }', {}, None),
    ]
    for query, variables, field in cases:
        r = await tenant.gql.raw(query, variables)
        assert r.status_code == 200, r.text
        [error] = r.json()["errors"]
        assert error["extensions"]["code"] == "INVALID", (query, error)
        assert error["extensions"].get("field") == field
        assert "NUL" in error["message"]


async def test_nul_byte_in_one_ingest_event_rejects_only_that_event(tenant):
    campaign, leads = await launched_campaign(tenant.gql, n_leads=2)
    events = [{"idempotencyKey": f"k-{i}", "externalId": f"m-{i}", "channel": "EMAIL", "type": "SENT",
               "occurredAt": at(-1), "campaignId": campaign["id"], "leadId": lead["id"]}
              for i, lead in enumerate(leads)]
    events[1]["reason"] = NUL
    out = await ingest(tenant.gql, events)
    assert out["accepted"] == 1, out
    assert [(r["index"], r["code"]) for r in out["rejected"]] == [(1, "INVALID")]
    assert "reason" in out["rejected"][0]["message"]
    d = await tenant.gql("mutation($e:[GoalEventInput!]!){ goalEventsIngest(events:$e){ accepted rejected{ index code } } }",
                         {"e": [{"idempotencyKey": "g\x00", "goalType": "LEAD", "occurredAt": at(-1),
                                 "leadExternalId": "x\x00y"}]})
    assert d["goalEventsIngest"]["rejected"] == [{"index": 0, "code": "INVALID"}]


async def test_over_long_filter_text_and_time_zone_are_refused_with_a_code(tenant):
    r = await tenant.gql.raw("query($t:String){ campaigns(filter:{text:$t}){ totalCount } }", {"t": "x" * 100_000})
    body = r.json()
    assert r.status_code == 200 and body["errors"][0]["extensions"]["code"] in ("TOO_LONG", "BAD_USER_INPUT"), body
    assert body["errors"][0]["message"] != "Unexpected error."
    r = await tenant.gql.raw("query($t:String){ leads(filter:{search:$t}){ totalCount } }", {"t": "x" * 100_000})
    body = r.json()
    assert body["errors"][0]["extensions"]["code"] in ("TOO_LONG", "BAD_USER_INPUT"), body
