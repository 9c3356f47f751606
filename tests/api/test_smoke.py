from tests.helpers import create_campaign, ingest, launched_campaign, metrics, at


async def test_viewer_and_campaign_roundtrip(tenant):
    d = await tenant.gql("{ viewer { email role scope { kind } } }")
    assert d["viewer"]["role"] == "OWNER"
    campaign, leads = await launched_campaign(tenant.gql, 3)
    r = await ingest(tenant.gql, [
        {"idempotencyKey": "a", "externalId": "m1", "channel": "EMAIL", "type": "DELIVERED", "occurredAt": at(1),
         "campaignId": campaign["id"], "leadId": leads[0]["id"]},
    ])
    assert r["accepted"] == 1, r
    m = await metrics(tenant.gql, campaign["id"])
    assert m["totals"]["delivered"] == 1
    assert m["totals"]["sent"] == 1
    assert m["totals"]["cost"]["amount"] == "0.01"


async def test_missing_token_is_unauthenticated(anon):
    r = await anon.raw("{ viewer { email } }")
    body = r.json()
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_bad_token_is_401(anon):
    r = await anon.raw("{ viewer { email } }", token="cp_nope")
    assert r.status_code == 401
