"""Issue 11.6: a query cost computed before execution, a per-token rate limit in cost points shared
through Redis, exposed GitHub-style (rateLimit field, X-RateLimit-* headers, 429 + Retry-After)."""

from __future__ import annotations

import hashlib
import json
import uuid

import httpx
import pytest
from httpx_ws import aconnect_ws
from httpx_ws.transport import ASGIWebSocketTransport

from app.main import create_app
from app.settings import Settings
from tests.conftest import REDIS_URL
from tests.sqlcount import statements
from tests.wsclient import connect

COSTLY = "{ campaigns(first: 500) { edges { node { sends(first: 500) { edges { node { id } } } } } } }"
COSTLY_COST = 500 + 500 * 500
SIXTY = "{ rateLimit { limit cost used remaining resetAt maxCost } " \
        "campaigns(first: 10) { edges { node { sends(first: 5) { totalCount } } } } }"  # 10 + 10 × 5


def _touches_data(sql: list[str]) -> list[str]:
    return [s for s in sql if '"campaign"' in s or '"send"' in s]


def _refused(body: dict, code: str) -> dict:
    assert body.get("data") is None, body
    error = body["errors"][0]
    assert error["extensions"]["code"] == code, body
    return error


async def test_costly_query_is_refused_before_execution_over_post_get_and_apq(tenant):
    auth = {"Authorization": f"Bearer {tenant.gql.token}"}
    http = tenant.gql.http
    with statements() as sql:
        r = await http.post("/graphql", json={"query": COSTLY}, headers=auth)
    assert r.status_code == 200, r.text
    error = _refused(r.json(), "QUERY_TOO_COSTLY")
    assert error["extensions"]["cost"] == COSTLY_COST and error["extensions"]["maxCost"] == 20000
    assert _touches_data(sql) == [], sql  # never executed: only the token lookup ran
    assert "x-ratelimit-used" not in r.headers  # nothing charged

    # Variables count too; the GraphQL-over-HTTP media type makes it a 400 like a validation error.
    r = await http.post("/graphql", json={"query": "query($n: Int) { campaigns(first: $n) { edges { node { "
                                          "sends(first: $n) { edges { node { id } } } } } } }", "variables": {"n": 200}},
                        headers={**auth, "accept": "application/graphql-response+json"})
    assert r.status_code == 400
    assert _refused(r.json(), "QUERY_TOO_COSTLY")["extensions"]["cost"] == 200 + 200 * 200

    r = await http.get("/graphql", params={"query": COSTLY}, headers=auth)
    assert r.status_code == 200 and _refused(r.json(), "QUERY_TOO_COSTLY")

    digest = hashlib.sha256(COSTLY.encode()).hexdigest()
    ext = {"persistedQuery": {"version": 1, "sha256Hash": digest}}
    r = await http.post("/graphql", json={"query": COSTLY, "extensions": ext}, headers=auth)
    assert _refused(r.json(), "QUERY_TOO_COSTLY")
    with statements() as sql:
        r = await http.get("/graphql", params={"extensions": json.dumps(ext)}, headers=auth)
    assert _refused(r.json(), "QUERY_TOO_COSTLY") and _touches_data(sql) == []


async def test_costly_query_is_refused_over_the_websocket(tenant, live_server):
    ws = await connect(live_server, tenant.gql.token)
    try:
        await ws.subscribe("1", COSTLY)
        message = await ws.message("1")
        errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
        assert errors[0]["extensions"]["code"] == "QUERY_TOO_COSTLY", message
        assert errors[0]["extensions"]["cost"] == COSTLY_COST
    finally:
        await ws.close()


async def test_rate_limit_field_and_headers(tenant):
    first = await tenant.gql.raw(SIXTY)
    second = await tenant.gql.raw(SIXTY)
    a, b = first.json()["data"]["rateLimit"], second.json()["data"]["rateLimit"]
    assert a["cost"] == b["cost"] == 60
    assert a["limit"] == 100000 and a["maxCost"] == 20000
    assert b["used"] == a["used"] + 60 and b["remaining"] == a["remaining"] - 60  # the field costs nothing extra
    h = second.headers
    assert h["x-ratelimit-limit"] == "100000" and h["x-ratelimit-used"] == str(b["used"])
    assert h["x-ratelimit-remaining"] == str(b["remaining"]) and h["x-ratelimit-resource"] == "graphql"
    assert int(h["x-ratelimit-reset"]) > 0 and b["resetAt"].startswith("20")
    # A query without connections costs 1.
    r = await tenant.gql.raw("{ rateLimit { cost } viewer { email } }")
    assert r.json()["data"]["rateLimit"]["cost"] == 1
    # The limit and the formula are in the schema (introspection).
    d = await tenant.gql('{ __type(name: "Query") { description fields { name description } } }')
    assert "PULSE_MAX_QUERY_COST" in d["__type"]["description"] and "20000" in d["__type"]["description"]
    field = next(f for f in d["__type"]["fields"] if f["name"] == "rateLimit")
    assert "first" in field["description"]


def _limited(settings: Settings, points: int, **extra) -> Settings:
    """Settings with a small rate limit, counted apart from other runs (own key prefix on Redis)."""
    return Settings(**{**settings.model_dump(), "rate_limit_points": points,
                       "channel_prefix": f"t{uuid.uuid4().hex[:8]}:", **extra})


async def test_over_the_rate_limit_is_429_with_retry_after_and_not_executed(tenant, settings):
    app = create_app(_limited(settings, 100))
    auth = {"Authorization": f"Bearer {tenant.gql.token}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        r = await http.post("/graphql", json={"query": SIXTY}, headers=auth)
        assert r.status_code == 200 and r.json()["data"]["rateLimit"]["remaining"] == 40
        with statements() as sql:
            r = await http.post("/graphql", json={"query": SIXTY}, headers=auth)
        assert r.status_code == 429, r.text
        error = _refused(r.json(), "RATE_LIMITED")
        assert error["extensions"]["cost"] == 60 and error["extensions"]["remaining"] == 40
        assert 1 <= int(r.headers["retry-after"]) <= 60
        assert r.headers["x-ratelimit-remaining"] == "40"
        assert _touches_data(sql) == []
        # graphql-response+json keeps the 429; a cheaper query still fits.
        r = await http.post("/graphql", json={"query": SIXTY}, headers={**auth, "accept": "application/graphql-response+json"})
        assert r.status_code == 429
        r = await http.post("/graphql", json={"query": "{ viewer { email } }"}, headers=auth)
        assert r.status_code == 200 and r.headers["x-ratelimit-remaining"] == "39"


async def test_a_subscription_is_charged_when_it_starts(tenant, settings):
    app = create_app(_limited(settings, 1))
    async with httpx.AsyncClient(transport=ASGIWebSocketTransport(app=app), base_url="http://t") as client:
        async with aconnect_ws("/graphql", client, subprotocols=["graphql-transport-ws"]) as ws:
            await ws.send_json({"type": "connection_init", "payload": {"authorization": f"Bearer {tenant.gql.token}"}})
            assert (await ws.receive_json())["type"] == "connection_ack"
            await ws.send_json({"id": "a", "type": "subscribe",
                                "payload": {"query": "subscription { dashboardKpis { activeCampaigns } }"}})
            first = await ws.receive_json(timeout=10)  # "a" was charged (and answered) before "b" starts:
            assert first["id"] == "a" and first["type"] == "next", first  # two concurrent charges race
            await ws.send_json({"id": "b", "type": "subscribe",
                                "payload": {"query": "subscription { dashboardKpis { activeCampaigns } }"}})
            seen = {}
            while "b" not in seen:
                message = await ws.receive_json(timeout=10)
                seen.setdefault(message.get("id"), message)
            assert seen["b"]["type"] in ("error", "next"), seen
            errors = seen["b"]["payload"] if seen["b"]["type"] == "error" else seen["b"]["payload"]["errors"]
            assert errors[0].get("extensions", {}).get("code") == "RATE_LIMITED", seen


@pytest.mark.skipif(not REDIS_URL, reason="needs PULSE_TEST_REDIS_URL (a real Redis)")
async def test_two_instances_share_the_limit_through_redis(tenant, settings):
    shared = _limited(settings, 100, broadcast_url=REDIS_URL)
    one, two = create_app(shared), create_app(shared)
    auth = {"Authorization": f"Bearer {tenant.gql.token}"}
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=one), base_url="http://t") as a, \
                httpx.AsyncClient(transport=httpx.ASGITransport(app=two), base_url="http://t") as b:
            r = await a.post("/graphql", json={"query": SIXTY}, headers=auth)
            assert r.status_code == 200 and r.headers["x-ratelimit-used"] == "60"
            r = await b.post("/graphql", json={"query": SIXTY}, headers=auth)
            assert r.status_code == 429 and r.headers["x-ratelimit-used"] == "60" and "retry-after" in r.headers
            r = await b.post("/graphql", json={"query": "{ viewer { email } }"}, headers=auth)
            assert r.status_code == 200 and r.headers["x-ratelimit-used"] == "61"
    finally:
        await one.state.graphql.limiter.close()
        await two.state.graphql.limiter.close()


async def test_named_fragments_are_costed_and_answered(tenant):
    """graphql-core 3.3 keeps a named fragment as FragmentDetails: the cost walk reads its definition
    (a document with a fragment spread was a 500 before)."""
    await tenant.gql("mutation { campaignCreate(input: {name: \"F\", channels: [{channel: EMAIL, unitCost: \"0.01\"}]}) "
                     "{ userErrors { code } } }")
    d = await tenant.gql("fragment S on Campaign { sends(first: 7) { totalCount } } "
                         "fragment C on CampaignConnection { edges { node { id ...S } } } "
                         "{ rateLimit { cost } campaigns(first: 3) { ...C } }")
    assert d["rateLimit"]["cost"] == 3 + 3 * 7
    assert d["campaigns"]["edges"][0]["node"]["sends"]["totalCount"] == 0
    body = (await tenant.gql.raw("fragment C on CampaignConnection { edges { node { sends(first: 500) { totalCount } } } } "
                                 "{ campaigns(first: 500) { ...C } }")).json()
    _refused(body, "QUERY_TOO_COSTLY")
