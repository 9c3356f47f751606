"""Budget rule for late and costlier receipts (issue 10, item 6): the cost is recorded truthfully and the
campaign pauses with BUDGET_EXHAUSTED the moment spent ≥ budget."""

from __future__ import annotations

from tests.helpers import at, create_campaign, ingest, launched_campaign

CAMPAIGN = "query($id:ID!){ campaign(id:$id){ status statusReason budget{ allocated{ amount } spent{ amount } } } }"


def _ev(key, ext, type_, minute, c, lead=None, **kw):
    e = {"idempotencyKey": key, "externalId": ext, "channel": "EMAIL", "type": type_, "occurredAt": at(minute), **kw}
    if lead:
        e.update(campaignId=c, leadId=lead)
    return e


async def test_costlier_final_cost_is_recorded_and_pauses_the_campaign(tenant):
    c, leads = await launched_campaign(tenant.gql, n_leads=2, budget="0.02")
    r = await ingest(tenant.gql, [_ev("a1", "m1", "SENT", 1, c["id"], leads[0]["id"], cost="0.05")])
    assert r["accepted"] == 1, r
    d = (await tenant.gql(CAMPAIGN, {"id": c["id"]}))["campaign"]
    assert d["budget"]["spent"]["amount"] in ("0.05", "0.050000")
    assert (d["status"], d["statusReason"]) == ("PAUSED", "BUDGET_EXHAUSTED"), d


async def test_send_revived_by_a_late_receipt_is_charged_and_pauses_at_the_budget(tenant):
    c, leads = await launched_campaign(tenant.gql, n_leads=2, budget="0.02")
    # One send fails (e.g. receipt timeout), another costs 0.01: under budget, still LIVE.
    r = await ingest(tenant.gql, [_ev("b1", "m1", "QUEUED", 1, c["id"], leads[0]["id"]),
                                  _ev("b2", "m1", "FAILED", 30, c["id"], reason="timeout"),
                                  _ev("b3", "m2", "SENT", 2, c["id"], leads[1]["id"], cost="0.01")])
    assert r["accepted"] == 3, r
    d = (await tenant.gql(CAMPAIGN, {"id": c["id"]}))["campaign"]
    assert d["status"] == "LIVE", d
    # A SENT receipt dated before the failure arrives late, with its final cost.
    r = await ingest(tenant.gql, [_ev("b4", "m1", "SENT", 5, c["id"], cost="0.03")])
    assert r["accepted"] == 1, r
    d = (await tenant.gql(CAMPAIGN, {"id": c["id"]}))["campaign"]
    spent = float(d["budget"]["spent"]["amount"])
    assert spent >= 0.02
    assert (d["status"], d["statusReason"]) == ("PAUSED", "BUDGET_EXHAUSTED"), d
