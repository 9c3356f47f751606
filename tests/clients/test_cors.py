"""Issue 11, item 1: a browser page on another origin can use the API over HTTP and websockets
when its origin is in PULSE_ALLOWED_ORIGINS, and only then (one rule for both)."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import uvicorn
import websockets

from app.main import create_app
from tests.helpers import free_port
from tests.wsclient import WsClient

ALLOWED = "https://dashboard.example"
FOREIGN = "https://evil.example"


@pytest.fixture
async def cors_app(app, settings):
    """The API with an allowed origin (sharing the session app's database and bus)."""
    return create_app(settings.model_copy(update={"allowed_origins": [ALLOWED]}))


@pytest.fixture
async def cors_http(cors_app):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=cors_app), base_url="http://pulse.test") as client:
        yield client


def preflight(origin: str) -> dict:
    return {"Origin": origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type"}


async def test_preflight_from_an_allowed_origin(cors_http):
    r = await cors_http.options("/graphql", headers=preflight(ALLOWED))
    assert r.status_code == 200, r.text
    assert r.headers["access-control-allow-origin"] == ALLOWED
    allowed_headers = {h.strip().lower() for h in r.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type"} <= allowed_headers
    assert "POST" in r.headers["access-control-allow-methods"]
    assert int(r.headers["access-control-max-age"]) > 0  # the browser caches the preflight
    assert "access-control-allow-credentials" not in r.headers  # bearer tokens, no cookies


async def test_preflight_from_another_origin_gets_no_cors_headers(cors_http):
    r = await cors_http.options("/graphql", headers=preflight(FOREIGN))
    assert "access-control-allow-origin" not in r.headers
    assert r.status_code >= 400


async def test_requests_from_an_allowed_origin_are_readable(cors_http, tenant):
    ok = await cors_http.post("/graphql", json={"query": "{ viewer { organization { id } } }"},
                              headers={"Origin": ALLOWED, "Authorization": f"Bearer {tenant.gql.token}"})
    assert ok.status_code == 200 and ok.json()["data"]["viewer"]["organization"]["id"] == tenant.org_id
    assert ok.headers["access-control-allow-origin"] == ALLOWED
    # A refusal is readable by the page too (the 401 carries the CORS headers).
    bad = await cors_http.post("/graphql", json={"query": "{ __typename }"},
                               headers={"Origin": ALLOWED, "Authorization": "Bearer nope"})
    assert bad.status_code == 401 and bad.headers["access-control-allow-origin"] == ALLOWED
    foreign = await cors_http.post("/graphql", json={"query": "{ __typename }"}, headers={"Origin": FOREIGN})
    assert "access-control-allow-origin" not in foreign.headers


async def test_no_cors_headers_when_no_origin_is_configured(http):
    r = await http.options("/graphql", headers=preflight(ALLOWED))
    assert "access-control-allow-origin" not in r.headers


async def test_websockets_follow_the_same_rule(cors_app, tenant):
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(cors_app, host="127.0.0.1", port=port, lifespan="off",
                                           log_level="warning", ws="websockets-sansio"))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.02)
        base = f"http://127.0.0.1:{port}"
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(base.replace("http", "ws") + "/graphql", subprotocols=["graphql-transport-ws"],
                                     origin=FOREIGN)
        assert refused.value.response.status_code == 403
        ws = await WsClient(base).connect(origin=ALLOWED)
        ack = await ws.init(tenant.gql.token)
        assert ack["type"] == "connection_ack"
        await ws.close()
    finally:
        server.should_exit = True
        await task
