"""Response cache (graph/core/cache.py): a hit is byte-identical to the uncached answer, under random
interleavings of writes and reads through the HTTP API; writes through the API or announced on the bus
move the organization's data version; uncacheable operations are never stored; hits are charged to
the rate limit; the cache is bounded."""

from __future__ import annotations

import asyncio
import base64
import random
import re
from datetime import datetime
from decimal import Decimal

import httpx
import pytest

from graph.core.cache import ResponseCache
from tests.conftest import PG_URL, REDIS_URL, unique
from tests.helpers import at, create_campaign, ingest, launched_campaign, mutate

A = "query($id:ID!){ campaign(id:$id){ id name status type reach audienceSize createdAt updatedAt } }"
B = ("query($id:ID!,$n:Int){ campaign(id:$id){ sends(first:$n){ totalCount edges{ cursor node{ id channel status "
     "externalId queuedAt sentAt deliveredAt readAt } } pageInfo{ hasNextPage endCursor } } } }")
C = ("query($n:Int){ campaigns(first:$n){ totalCount edges{ node{ id name status metrics{ totals{ sent delivered "
     "read clicked failed cost{ amount currency } deliveryRate } byChannel{ channel sent } } } } } }")
D = "query($id:ID!){ node(id:$id){ id __typename ... on Campaign { name reach createdFrom { kind name } } } }"
E = "fragment F on Campaign { name status } query Frag($id:ID!){ campaign(id:$id){ id ...F } }"


@pytest.fixture
def cache(app):
    view = app.state.graphql
    view.cache = ResponseCache(max_entries=500, max_bytes=8 * 1024 * 1024, ttl_s=600)
    yield view.cache
    view.cache = None


async def _uncached(app, gql, query, variables):
    view = app.state.graphql
    kept, view.cache = view.cache, None
    try:
        return await gql.raw(query, variables)
    finally:
        view.cache = kept


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_hits_are_byte_identical_under_random_writes_and_reads(app, cache, tenant, seed):
    rng = random.Random(seed)
    owner = tenant.gql
    other_owner = await tenant.member("OWNER")  # same access as the owner: shares its entries
    zone = await tenant.zone()
    zone_manager = await tenant.member("MANAGER", zone)  # another access: entries of its own
    readers = [owner, other_owner, zone_manager]
    launched = [await launched_campaign(owner, n_leads=4) for _ in range(2)]
    campaigns = [c for c, _ in launched] + [await create_campaign(owner)]
    n_events = 0
    hits_before = cache.hits

    async def write() -> None:
        nonlocal n_events
        kind = rng.choice(("ingest", "ingest", "rename", "pause", "create"))
        if kind == "ingest":
            campaign, leads = rng.choice(launched)
            n_events += 1
            lead = rng.choice(leads)
            r = await ingest(owner, [{"idempotencyKey": f"k{seed}-{n_events}", "externalId": f"x{lead['id']}",
                                      "channel": "EMAIL", "campaignId": campaign["id"], "leadId": lead["id"],
                                      "type": rng.choice(("SENT", "DELIVERED", "OPENED", "CLICKED", "FAILED")),
                                      "occurredAt": at(n_events)}])
            assert not r["rejected"] and not r["userErrors"], r
        elif kind == "create":  # announces nothing on the bus: the mutation itself moves the version
            campaigns.append(await create_campaign(owner))
        elif kind == "rename":
            campaign = rng.choice(campaigns)
            d = await owner("mutation($id:ID!,$i:CampaignUpdateInput!){ campaignUpdate(id:$id, input:$i){ "
                            "userErrors{ code } } }", {"id": campaign["id"], "i": {"name": unique("name")}})
            assert not d["campaignUpdate"]["userErrors"], d
        else:
            campaign, _ = rng.choice(launched)
            await mutate(owner, rng.choice(("campaignPause", "campaignResume")), campaign["id"])

    async def read() -> None:
        reader = rng.choice(readers)
        campaign = rng.choice(campaigns)
        query, variables = rng.choice([
            (A, {"id": campaign["id"]}), (B, {"id": campaign["id"], "n": rng.choice((2, 10))}),
            (C, {"n": rng.choice((2, 20))}), (D, {"id": campaign["id"]}), (E, {"id": campaign["id"]})])
        got = await reader.raw(query, variables)
        want = await _uncached(app, reader, query, variables)
        assert got.status_code == want.status_code == 200, got.text
        assert got.content == want.content, (query, variables)
        assert got.headers["content-type"] == want.headers["content-type"]

    for _ in range(60):
        await (write() if rng.random() < 0.25 else read())
    assert cache.hits > hits_before  # the property was checked on hits, not only on misses


LIST_AFTER = ("query($n:Int,$after:String){ campaigns(first:$n, after:$after){ totalCount pageInfo{ hasNextPage "
              "endCursor } edges{ cursor node{ id name status metrics{ totals{ sent delivered cost{ amount } } } } } } }")
FILTERED = ("query($s:[CampaignStatus!]){ campaigns(first:20, filter:{status:$s}){ totalCount edges{ node{ id status "
            "statusReason } } } }")
BOTH = ("query($id:ID!){ campaign(id:$id){ id status metrics{ totals{ sent failed } } } "
        "campaigns(first:2){ edges{ node{ id status } } } }")


async def _org_id(campaign: dict) -> int:
    from app import db

    pk = int(base64.b64decode(campaign["id"]).decode().partition(":")[2])
    return (await db.fetch("SELECT organization_id FROM campaign WHERE id = ?", [pk]))[0]["organization_id"]


@pytest.mark.parametrize("seed", [11, 12, 13, 14])
async def test_hits_stay_byte_identical_when_writes_go_into_one_campaign(app, cache, tenant, seed):
    """Finer versions (subscriptions/versions.py): an ingest (API, or the sender's path announced on the
    bus) moves only its campaign's version. Reads of that campaign, of other campaigns, of lists that
    hold it or not, of filtered lists whose membership it changes (a budget pause) — every answer,
    hit or miss, byte-identical to the uncached one."""
    from app.delivery.ingest import SendEventData, ingest_send_events
    from app.sender.service import system_principal
    from models.enums import Channel, SendEventType

    rng = random.Random(seed)
    owner = tenant.gql
    zone_manager = await tenant.member("MANAGER", await tenant.zone())
    readers = [owner, owner, zone_manager]
    # The first one pauses itself when its spend reaches the budget (status: the filtered list moves).
    launched = [await launched_campaign(owner, n_leads=3, budget="0.05")]
    launched += [await launched_campaign(owner, n_leads=3) for _ in range(3)]
    campaigns = [c for c, _ in launched] + [await create_campaign(owner)]
    org_id = await _org_id(campaigns[0])
    n = 0
    hits_before = cache.hits

    def event(campaign: dict, lead: dict, kind: str) -> dict:
        return {"idempotencyKey": f"s{seed}-{n}", "externalId": f"x{seed}-{lead['id']}-{rng.randrange(3)}",
                "channel": "EMAIL", "campaignId": campaign["id"], "leadId": lead["id"], "type": kind,
                "occurredAt": at(n), **({"cost": "0.02"} if kind == "SENT" and rng.random() < 0.5 else {})}

    async def write() -> None:
        nonlocal n
        n += 1
        campaign, leads = rng.choice(launched)
        kind = rng.choice(("SENT", "SENT", "DELIVERED", "OPENED", "CLICKED", "FAILED"))
        e = event(campaign, rng.choice(leads), kind)
        if rng.random() < 0.7:
            r = await ingest(owner, [e])
            assert not r["userErrors"], r
        else:  # the sender's path: the service, announced on the bus only
            pk = int(base64.b64decode(e["campaignId"]).decode().partition(":")[2])
            lead = int(base64.b64decode(e["leadId"]).decode().partition(":")[2])
            when = datetime.fromisoformat(e["occurredAt"].replace("Z", "+00:00"))
            await ingest_send_events(system_principal(org_id), [SendEventData(
                idempotency_key=e["idempotencyKey"], external_id=e["externalId"], channel=Channel.EMAIL,
                type=SendEventType(kind),
                occurred_at=when, campaign_id=pk, lead_id=lead, cost=Decimal(e["cost"]) if "cost" in e else None)])

    async def read() -> None:
        reader = rng.choice(readers)
        campaign = rng.choice(campaigns)
        query, variables = rng.choice([
            (A, {"id": campaign["id"]}), (B, {"id": campaign["id"], "n": rng.choice((2, 10))}),
            (C, {"n": rng.choice((1, 2, 3, 20))}), (D, {"id": campaign["id"]}),
            (LIST_AFTER, {"n": rng.choice((1, 2)), "after": rng.choice((None, None, *[c["cursor"] for c in cursors]))}),
            (FILTERED, {"s": rng.choice((["LIVE"], ["PAUSED"], None))}), (BOTH, {"id": campaign["id"]})])
        got = await reader.raw(query, variables)
        want = await _uncached(app, reader, query, variables)
        assert got.status_code == want.status_code == 200, got.text
        assert got.content == want.content, (query, variables, got.text, want.text)

    listed = await owner("{ campaigns(first:5){ edges{ cursor } } }")
    cursors = listed["campaigns"]["edges"]
    for _ in range(120):
        await (write() if rng.random() < 0.2 else read())
    assert cache.hits > hits_before


async def test_a_write_into_one_campaign_keeps_the_other_campaigns_cached(app, cache, tenant):
    """An ingest moves its campaign's version only: the entries of other campaigns and of list pages
    without it stay hits; those that read it are computed again."""
    (first, leads), (second, _) = [await launched_campaign(tenant.gql, n_leads=2) for _ in range(2)]
    one = "query($id:ID!){ campaign(id:$id){ id metrics{ totals{ sent } } } }"
    page = "query($n:Int){ campaigns(first:$n){ edges{ node{ id metrics{ totals{ sent } } } } } }"
    reads = [(one, {"id": first["id"]}), (one, {"id": second["id"]}), (page, {"n": 1}), (page, {"n": 2})]
    for _ in range(3):  # the first execution is stored under (F, A), the second under its finer versions
        for query, variables in reads:
            await tenant.gql(query, variables)
    hits = cache.hits
    r = await ingest(tenant.gql, [{"idempotencyKey": "k1", "externalId": "e1", "channel": "EMAIL", "type": "SENT",
                                   "campaignId": first["id"], "leadId": leads[0]["id"], "occurredAt": at(1)}])
    assert r["accepted"] == 1, r
    got = [await tenant.gql(query, variables) for query, variables in reads]
    # second (newest) is the first page of one; the first campaign is read by `one` and the page of two
    assert cache.hits == hits + 2
    assert got[0]["campaign"]["metrics"]["totals"]["sent"] == 1
    assert got[3]["campaigns"]["edges"][1]["node"]["metrics"]["totals"]["sent"] == 1


async def test_a_write_is_seen_by_the_next_read(app, cache, tenant):
    campaign, leads = await launched_campaign(tenant.gql, n_leads=2)
    query = "query($id:ID!){ campaign(id:$id){ name metrics{ totals{ delivered } } } }"
    for _ in range(2):
        d = await tenant.gql(query, {"id": campaign["id"]})
    assert cache.hits >= 1
    assert d["campaign"]["metrics"]["totals"]["delivered"] == 0
    await ingest(tenant.gql, [{"idempotencyKey": "w1", "externalId": "w1", "channel": "EMAIL", "type": "DELIVERED",
                               "campaignId": campaign["id"], "leadId": leads[0]["id"], "occurredAt": at(1)}])
    d = await tenant.gql(query, {"id": campaign["id"]})
    assert d["campaign"]["metrics"]["totals"]["delivered"] == 1


async def test_a_change_announced_on_the_bus_moves_the_version(app, cache, tenant):
    """The worker's changes are announced on the organization's channel (publish after commit)."""
    from app import db
    from subscriptions import bus

    campaign = await create_campaign(tenant.gql, name="before")
    query = "query($id:ID!){ campaign(id:$id){ name } }"
    await tenant.gql(query, {"id": campaign["id"]})
    assert (await tenant.gql(query, {"id": campaign["id"]}))["campaign"]["name"] == "before"
    pk = int(base64.b64decode(campaign["id"]).decode().partition(":")[2])
    await db.execute("UPDATE campaign SET name = 'after' WHERE id = ?", [pk])
    # Not announced: the cache still answers the old name (until the TTL), as documented.
    assert (await tenant.gql(query, {"id": campaign["id"]}))["campaign"]["name"] == "before"
    org_id = (await db.fetch("SELECT organization_id FROM campaign WHERE id = ?", [pk]))[0]["organization_id"]
    await bus.campaign_changed(org_id, pk, "settings")
    assert (await tenant.gql(query, {"id": campaign["id"]}))["campaign"]["name"] == "after"


async def test_uncacheable_operations_are_never_stored(app, cache, tenant):
    campaign = await create_campaign(tenant.gql)
    for query in ("{ viewer { email } }", "{ rateLimit { used remaining } campaigns(first:1){ totalCount } }",
                  "{ tokens { edges { node { lastUsedAt } } } }",
                  "query($id:ID!){ campaign(id:$id){ name budget{ remaining { amount } } } }",
                  "query($id:ID!){ campaign(id:$id){ stats(period: TODAY){ totals{ sent } } } }",
                  "query($id:ID!){ node(id:$id){ ... on Campaign { insights { code } } } }",
                  "query($id:ID!){ campaign(id:$id){ nope } }"):
        stored = cache.stored
        for _ in range(2):
            await tenant.gql.raw(query, {"id": campaign["id"]})
        assert cache.stored == stored, query
    stored = cache.stored
    r = await tenant.gql.raw("mutation($id:ID!){ campaignLaunch(id:$id){ userErrors{ code } } }", {"id": campaign["id"]})
    assert r.status_code == 200 and cache.stored == stored


async def test_hits_are_charged_to_the_rate_limit(app, cache, tenant):
    campaign = await create_campaign(tenant.gql)
    query = "query($id:ID!){ campaign(id:$id){ sends(first:40){ totalCount } } }"
    used = []
    for _ in range(3):
        r = await tenant.gql.raw(query, {"id": campaign["id"]})
        assert r.status_code == 200
        used.append(int(r.headers["X-RateLimit-Used"]))
    assert cache.hits >= 2
    assert used[1] - used[0] == used[2] - used[1] == 40
    # The version moves: the next read executes again, charged once (with Redis the charge was made
    # with the version read; the executor must not charge it again).
    r = await tenant.gql.raw("mutation($id:ID!,$i:CampaignUpdateInput!){ campaignUpdate(id:$id, input:$i){ "
                             "userErrors{ code } } }", {"id": campaign["id"], "i": {"name": unique("n")}})
    after_write = int(r.headers["X-RateLimit-Used"])
    misses = cache.misses
    r = await tenant.gql.raw(query, {"id": campaign["id"]})
    assert cache.misses == misses + 1
    assert int(r.headers["X-RateLimit-Used"]) - after_write == 40


async def test_the_cache_is_bounded(app, tenant):
    view = app.state.graphql
    view.cache = cache = ResponseCache(max_entries=3, max_bytes=1024 * 1024, ttl_s=600)
    try:
        campaigns = [await create_campaign(tenant.gql) for _ in range(5)]
        for c in campaigns:
            await tenant.gql("query($id:ID!){ campaign(id:$id){ name } }", {"id": c["id"]})
        assert len(cache.entries) == 3 and cache.evicted >= 2
        assert cache.bytes == sum(e.size for e in cache.entries.values())
    finally:
        view.cache = None


@pytest.mark.skipif(not (PG_URL and REDIS_URL), reason="two API processes share PostgreSQL and Redis")
async def test_a_write_on_one_instance_is_seen_at_once_on_another(tenant, settings, tmp_path):
    """Read-your-writes across instances: the data version lives in Redis; no waiting, no retry."""
    from tests.exports.test_two_servers import Server

    env = dict(broadcast_url=REDIS_URL, channel_prefix=unique("rc") + ":", response_cache_entries=1000)
    a = Server(settings, tmp_path, "a", **env)
    b = Server(settings, tmp_path, "b", **env)
    try:
        await asyncio.gather(a.ready(), b.ready())
        headers = {"Authorization": f"Bearer {tenant.gql.token}"}
        campaign = await create_campaign(tenant.gql, name="first name")
        async with httpx.AsyncClient(timeout=30) as client:
            async def on(server, query, variables=None):
                r = await client.post(server.url + "/graphql", headers=headers,
                                      json={"query": query, "variables": variables or {}})
                assert r.status_code == 200 and not r.json().get("errors"), r.text
                return r.json()["data"]

            async def hits(server) -> float:
                text = (await client.get(server.url + "/metrics")).text
                found = re.search(r'^pulse_response_cache_total\{result="hit"\} ([0-9.e+]+)$', text, re.M)
                return float(found.group(1)) if found else 0.0

            read = "query($id:ID!){ campaign(id:$id){ name } campaigns(first:50){ totalCount } }"
            for _ in range(3):
                before = await on(b, read, {"id": campaign["id"]})
            assert await hits(b) >= 2
            # A mutation that announces nothing on the bus: only the shared version tells B.
            await on(a, "mutation($i:CampaignCreateInput!){ campaignCreate(input:$i){ userErrors{ code } } }",
                     {"i": {"name": unique("c"), "channels": [{"channel": "EMAIL", "unitCost": "0.01"}]}})
            after = await on(b, read, {"id": campaign["id"]})
            assert after["campaigns"]["totalCount"] == before["campaigns"]["totalCount"] + 1
            await on(a, "mutation($id:ID!,$i:CampaignUpdateInput!){ campaignUpdate(id:$id, input:$i){ "
                        "userErrors{ code } } }", {"id": campaign["id"], "i": {"name": "second name"}})
            assert (await on(b, read, {"id": campaign["id"]}))["campaign"]["name"] == "second name"
    finally:
        await asyncio.gather(a.stop(), b.stop())
