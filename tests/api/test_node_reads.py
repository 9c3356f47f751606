"""Reads that go through a campaign-visibility sub-query: node(Send|SpendEntry|BudgetAlert),
budgetAlerts, campaigns(filter: channel)."""

from tests.helpers import at, create_campaign, ingest, launched_campaign


async def test_node_alerts_and_channel_filter(tenant, tenant_factory):
    gql = tenant.gql
    campaign, leads = await launched_campaign(gql, 1, budget="1")
    sms_only = await create_campaign(gql, channels=[{"channel": "SMS", "unitCost": "0.05"}])
    r = await ingest(gql, [{"idempotencyKey": "n1", "externalId": "n1", "channel": "EMAIL", "type": "SENT",
                            "occurredAt": at(1), "campaignId": campaign["id"], "leadId": leads[0]["id"]}])
    assert r["accepted"] == 1
    d = await gql('mutation($c:ID!){ spendLog(input:{campaignId:$c, amount:"0.95", category:"x"}){ entry{ id } alerts{ id threshold } } }',
                  {"c": campaign["id"]})
    entry_id = d["spendLog"]["entry"]["id"]
    alert_ids = {a["id"] for a in d["spendLog"]["alerts"]}
    assert len(alert_ids) == 2  # 0.01 sent + 0.95 logged = 96 % of 1: the 80 and 90 % alerts
    send_id = (await gql("query($id:ID!){ campaign(id:$id){ sends{ edges{ node{ id } } } } }",
                         {"id": campaign["id"]}))["campaign"]["sends"]["edges"][0]["node"]["id"]

    for gid, typename in [(send_id, "Send"), (entry_id, "SpendEntry"), (next(iter(alert_ids)), "BudgetAlert")]:
        node = (await gql("query($id:ID!){ node(id:$id){ __typename id } }", {"id": gid}))["node"]
        assert node == {"__typename": typename, "id": gid}

    alerts = await gql("{ budgetAlerts { totalCount edges { node { threshold } } } }")
    assert alerts["budgetAlerts"]["totalCount"] == len(alert_ids)

    by_channel = await gql('{ campaigns(filter:{channel: SMS}) { edges { node { id } } } }')
    ids = {e["node"]["id"] for e in by_channel["campaigns"]["edges"]}
    assert sms_only["id"] in ids and campaign["id"] in ids  # the default campaign has SMS too
    email = await gql('{ campaigns(filter:{channel: EMAIL}) { edges { node { id } } } }')
    assert sms_only["id"] not in {e["node"]["id"] for e in email["campaigns"]["edges"]}

    other = await tenant_factory()
    for gid in (send_id, entry_id, next(iter(alert_ids))):
        assert (await other.gql("query($id:ID!){ node(id:$id){ id } }", {"id": gid}))["node"] is None
    assert (await other.gql("{ budgetAlerts { totalCount } }"))["budgetAlerts"]["totalCount"] == 0
