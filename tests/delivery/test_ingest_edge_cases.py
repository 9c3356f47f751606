"""Ingestion edge cases: concurrent unsubscribes of one lead, a sender message's queue time and day, a leap day.

Regression tests: each proved a bug found in review (now fixed) through the public API.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import BACKEND
from tests.helpers import at, create_campaign, ingest, launched_campaign, make_leads



def ev(key, ext, campaign, lead, minute=1, type_="SENT", channel="EMAIL", **kw):
    e = {"idempotencyKey": key, "externalId": ext, "channel": channel, "type": type_, "occurredAt": at(minute),
         "campaignId": campaign["id"], "leadId": lead["id"]}
    e.update(kw)
    return e


# ---------------------------------------------------------------- ingestion


@pytest.mark.skipif(BACKEND != "postgres", reason="SQLite serializes writers: the race needs PostgreSQL")
async def test_concurrent_unsubscribes_of_one_lead_are_not_lost(tenant):
    gql = tenant.gql
    lost: dict = {}
    for round_ in range(6):  # each round of two concurrent batches loses (at least) one flag
        leads = await make_leads(gql, 10, phone="+33600000000")
        camps = []
        for channel in ("EMAIL", "SMS"):
            c = await create_campaign(gql, channels=[{"channel": channel}])
            d = await gql("mutation($c:ID!,$i:AudienceInput!){ audienceSet(campaignId:$c, input:$i){ userErrors{ code } } }",
                          {"c": c["id"], "i": {"leadIds": [lead["id"] for lead in leads]}})
            assert not d["audienceSet"]["userErrors"]
            r = await gql("mutation($id:ID!){ campaignLaunch(id:$id){ userErrors{ code message } } }", {"id": c["id"]})
            assert not r["campaignLaunch"]["userErrors"], r
            camps.append((c, channel))

        def batch(c, channel):
            out = []
            for i, lead in enumerate(leads):
                out.append(ev(f"{round_}-{channel}-s{i}", f"{round_}-{channel}-m{i}", c, lead, 1, "SENT", channel))
                out.append(ev(f"{round_}-{channel}-u{i}", f"{round_}-{channel}-m{i}", c, lead, 2, "UNSUBSCRIBED", channel))
            return out

        results = await asyncio.gather(*(ingest(gql, batch(c, ch)) for c, ch in camps))
        assert all(not r["rejected"] and r["accepted"] == 20 for r in results), results
        nodes = [(await gql("query($id:ID!){ node(id:$id){ ... on Lead { externalId unsubscribedChannels } } }",
                            {"id": lead["id"]}))["node"] for lead in leads]
        for n in nodes:
            if sorted(n["unsubscribedChannels"]) != ["EMAIL", "SMS"]:
                lost[n["externalId"]] = n["unsubscribedChannels"]
    assert not lost, f"{len(lost)} leads lost an unsubscribe: {list(lost.items())[:3]}"


# ---------------------------------------------------------------- sender × replay


def _pk(gid: str) -> int:
    import base64

    return int(base64.b64decode(gid).decode().split(":")[1])


# Regression (failed on 43dea8d: replay took queued_at from the first event, so a system send moved to the
# provider's SENT time/day; fixed in a547fc7).
async def test_system_send_keeps_its_queue_time_and_day(tenant):
    from datetime import datetime, timezone

    from app.sender.providers import SimulatedProvider
    from app.sender.service import dispatch_batch, queue_batch

    gql = tenant.gql
    top = 'mutation{ creditsTopUp(source: EMAIL, amount: 10, reason:"t"){ userErrors{ code } } }'
    assert not (await gql(top))["creditsTopUp"]["userErrors"]
    leads = await make_leads(gql, 1)
    c = await create_campaign(gql, channels=[{"channel": "EMAIL", "unitCost": "0.01", "creditsPerMessage": 1}])
    d = await gql("mutation($c:ID!,$i:AudienceInput!){ audienceSet(campaignId:$c, input:$i){ userErrors{ code } } }",
                  {"c": c["id"], "i": {"leadIds": [leads[0]["id"]]}})
    assert not d["audienceSet"]["userErrors"]
    r = await gql("mutation($id:ID!){ campaignLaunch(id:$id){ userErrors{ code message } } }", {"id": c["id"]})
    assert not r["campaignLaunch"]["userErrors"], r
    queued = datetime(2025, 3, 10, 23, 59, 59, 500000, tzinfo=timezone.utc)  # organization time zone: UTC
    q = await queue_batch(10, now=queued, campaign_ids=[_pk(c["id"])])
    assert q.queued == 1
    provider = {"simulated": SimulatedProvider(seed=1, refuse_rate=0, bounce_rate=0)}
    dres = await dispatch_batch(provider, 10, now=queued, campaign_ids=[_pk(c["id"])])
    assert dres.handed == 1  # the provider reports SENT at queued + 1 s (the next day)

    send = (await gql("query($id:ID!){ campaign(id:$id){ sends(first:5){ edges{ node{ status queuedAt sentAt } } } } }",
                      {"id": c["id"]}))["campaign"]["sends"]["edges"][0]["node"]
    report = (await gql("""query($f:CreditConsumptionFilter){ creditConsumption(filter:$f){
        totals{ processed credits } } }""", {"f": {"dateFrom": "2025-03-10", "dateTo": "2025-03-10",
                                                   "campaignIds": [c["id"]]}}))["creditConsumption"]["totals"]
    assert send["status"] == "DELIVERED"
    assert (report["credits"], report["processed"]) == (1, 1), report
    assert send["queuedAt"].startswith("2025-03-10T23:59:59.5"), send


async def test_send_events_are_accepted_on_a_leap_day(tenant, monkeypatch):
    from datetime import datetime, timezone

    import app.delivery.ingest as ingest_module

    class LeapDay(datetime):
        @classmethod
        def now(cls, tz=None):
            value = datetime(2028, 2, 29, 12, 0, tzinfo=timezone.utc)
            return value.astimezone(tz) if tz else value.replace(tzinfo=None)

    campaign, leads = await launched_campaign(tenant.gql, 1)
    monkeypatch.setattr(ingest_module, "datetime", LeapDay)
    response = await tenant.gql.raw(
        "mutation($e:[SendEventInput!]!){ sendEventsIngest(events:$e){ accepted rejected{ index code } } }",
        {"e": [ev("leap1", "leap-m1", campaign, leads[0])]})
    body = response.json()
    assert response.status_code == 200 and not body.get("errors"), body
    assert body["data"]["sendEventsIngest"]["accepted"] == 1
