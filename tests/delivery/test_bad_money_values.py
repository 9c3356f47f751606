"""A bad money value rejects that one item, never the whole call (issue 10, item 8)."""

from __future__ import annotations

import pytest

from tests.helpers import at, create_campaign, ingest, launched_campaign, metrics

SPEND = ("mutation($i: SpendLogInput!) { spendLog(input: $i) { entry { id } userErrors { field code message } } }")


@pytest.mark.parametrize("cost", ["1E+999999", "-1E+999999", "1E-999999", "123456789012345678901234567890.5",
                                  "NaN", "Infinity", "1e400"])
async def test_one_bad_cost_rejects_only_its_event(tenant, cost):
    c, leads = await launched_campaign(tenant.gql, n_leads=2)
    events = [{"idempotencyKey": f"k-{i}-{cost}", "externalId": f"m-{i}-{cost}", "channel": "EMAIL", "type": "SENT",
               "occurredAt": at(1), "campaignId": c["id"], "leadId": lead["id"],
               **({"cost": cost} if i == 0 else {"cost": "0.05"})} for i, lead in enumerate(leads)]
    r = await ingest(tenant.gql, events)
    assert r["accepted"] == 1 and not r["userErrors"], r
    assert [(x["index"], x["code"]) for x in r["rejected"]] in ([(0, "INVALID")], [(0, "OUT_OF_RANGE")]), r
    m = await metrics(tenant.gql, c["id"])
    assert m["totals"]["sent"] == 1


@pytest.mark.parametrize("amount", ["1234567890123456789012345678901", "-1234567890123456789012345678901",
                                    "1E+999999", "0.0000000000000000000000000000001"])
async def test_spend_log_with_huge_amount_is_a_user_error(tenant, amount):
    c = await create_campaign(tenant.gql, budget="100")
    r = await tenant.gql.raw(SPEND, {"i": {"campaignId": c["id"], "amount": amount, "category": "print"}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert "errors" not in body, body
    p = body["data"]["spendLog"]
    assert p["entry"] is None and p["userErrors"][0]["code"] in ("OUT_OF_RANGE", "INVALID"), p
