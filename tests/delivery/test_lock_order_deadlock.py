"""leadsUpsert vs an UNSUBSCRIBED ingest on the same lead and ALWAYS_ON campaign (issue 10, item 7).

Before: the ingest locked the campaign, then updated the lead (unsubscribe); leadsUpsert locked the lead,
then the running ALWAYS_ON campaigns. Two requests meeting half-way deadlocked on PostgreSQL and one of
them failed. The test makes them meet half-way deterministically: each side, once it holds its first lock,
waits (up to 3 s) for the other to hold its own. With one lock order (campaigns before leads) the second
request blocks on its first lock instead, the first one goes on, and both succeed with no retry.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import BACKEND
from tests.helpers import at, create_campaign, ingest, make_leads, mutate

pytestmark = pytest.mark.skipif(BACKEND != "postgres", reason="row locks and deadlocks: PostgreSQL only")


async def test_leads_upsert_and_unsubscribe_ingest_do_not_deadlock(tenant, monkeypatch):
    import app.db as db
    from app.audience import leads as audience_leads
    from app.delivery import ingest as delivery_ingest

    gql = tenant.gql
    [lead] = await make_leads(gql, 1, prefix="dl", tags=["dl"])
    campaign = await create_campaign(gql, type="ALWAYS_ON")
    d = await gql("mutation($c:ID!,$i:AudienceInput!){ audienceSet(campaignId:$c, input:$i){ userErrors{ code } } }",
                  {"c": campaign["id"], "i": {"filter": {"tags": ["dl"]}}})
    assert not d["audienceSet"]["userErrors"]
    assert not (await mutate(gql, "campaignLaunch", campaign["id"]))["userErrors"]
    sent = await ingest(gql, [{"idempotencyKey": "dl-1", "externalId": "dl-msg", "channel": "EMAIL", "type": "DELIVERED",
                               "occurredAt": at(1), "campaignId": campaign["id"], "leadId": lead["id"]}])
    assert sent["accepted"] == 1, sent

    ingest_holds, upsert_holds = asyncio.Event(), asyncio.Event()

    async def meet(mine: asyncio.Event, other: asyncio.Event) -> None:
        mine.set()
        try:
            await asyncio.wait_for(other.wait(), 3)
        except asyncio.TimeoutError:
            pass

    real_unsubscribe = delivery_ingest.add_unsubscribes

    async def unsubscribe_after_meeting(lead_id, channels):
        await meet(ingest_holds, upsert_holds)  # holds the campaign lock here
        await real_unsubscribe(lead_id, channels)

    async def grow_after_meeting(org_id, lead_ids):
        await meet(upsert_holds, ingest_holds)  # holds the lead lock here
        return []

    monkeypatch.setattr(delivery_ingest, "add_unsubscribes", unsubscribe_after_meeting)
    monkeypatch.setattr(audience_leads.leads_upserted, "handlers",
                        [grow_after_meeting, *audience_leads.leads_upserted.handlers])
    retried = getattr(db, "retried_transactions", 0)
    unsub = ingest(gql, [{"idempotencyKey": "dl-2", "externalId": "dl-msg", "channel": "EMAIL",
                          "type": "UNSUBSCRIBED", "occurredAt": at(2)}])
    upsert = gql("mutation($l:[LeadInput!]!){ leadsUpsert(leads:$l){ leads{ id } userErrors{ code } } }",
                 {"l": [{"externalId": "dl-0", "name": "Renamed", "tags": ["dl"]}]})
    r_unsub, r_upsert = await asyncio.gather(unsub, upsert)
    assert r_unsub["accepted"] == 1 and not r_unsub["rejected"], r_unsub
    assert r_upsert["leadsUpsert"]["leads"] == [{"id": lead["id"]}], r_upsert
    assert getattr(db, "retried_transactions", 0) == retried  # no deadlock happened (nothing had to be retried)
    d = await gql("query($id:ID!){ node(id:$id){ ... on Lead { name unsubscribedChannels } } }", {"id": lead["id"]})
    assert d["node"] == {"name": "Renamed", "unsubscribedChannels": ["EMAIL"]}
