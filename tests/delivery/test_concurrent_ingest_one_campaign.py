"""Many integrator calls into one campaign at once (one event each, as webhooks arrive) are all applied,
none aborted. On PostgreSQL each ingest inserted its sends (a KEY SHARE lock on their campaign) and then
locked the campaign FOR UPDATE: two such transactions deadlocked, PostgreSQL aborted one every second,
and after the retries a client got `deadlock detected` (a bench saw 15-30 s stalls). Locks are now
FOR NO KEY UPDATE (app/db.py `for_update`)."""

import asyncio

from tests.helpers import ingest, launched_campaign, metrics
from tests.subscriptions.test_live import sent_event

N = 16


async def test_concurrent_single_event_ingests_into_one_campaign_all_apply(tenant):
    campaign, leads = await launched_campaign(tenant.gql, N)
    for step, (type_, minute) in enumerate([("SENT", 1), ("DELIVERED", 2)]):
        # `ingest` fails on any GraphQL error (a deadlock surfaced as one)
        answers = await asyncio.gather(*[
            ingest(tenant.gql, [sent_event(f"{type_}-{i}", f"ext-{i}", campaign, leads[i], minute=minute,
                                           type_=type_)])
            for i in range(N)])
        assert [(a["accepted"], a["rejected"]) for a in answers] == [(1, [])] * N, (step, answers)
    m = await metrics(tenant.gql, campaign["id"])
    assert (m["totals"]["sent"], m["totals"]["delivered"]) == (N, N), m
