"""Hardening that is on by default: limits, error masking, IDE and protocol choices."""

import httpx
import pytest
from httpx_ws import aconnect_ws
from httpx_ws.transport import ASGIWebSocketTransport

from graph.core.errors import should_mask
from app.main import create_app
from app.settings import Settings


async def test_query_depth_limit(tenant):
    deep = "{ viewer { organization { " + "zones { name } " + "} } }"
    ok = await tenant.gql.raw(deep)
    assert not ok.json().get("errors")
    loop = "budget { alerts { campaign { "
    nested = "query { campaigns { edges { node { " + loop * 5 + "name" + " } } }" * 5 + " } } } }"
    r = await tenant.gql.raw(nested)
    body = r.json()
    assert body.get("errors") and "depth" in body["errors"][0]["message"].lower()


async def test_alias_limit(tenant):
    query = "{ " + " ".join(f"a{i}: viewer {{ email }}" for i in range(40)) + " }"
    body = (await tenant.gql.raw(query)).json()
    assert body.get("errors") and "alias" in body["errors"][0]["message"].lower()


async def test_token_limit(tenant):
    query = "{ viewer { " + " ".join("email" for _ in range(6000)) + " } }"
    body = (await tenant.gql.raw(query)).json()
    assert body.get("errors") and "token" in body["errors"][0]["message"].lower()


async def test_request_body_limit(http, settings):
    big = "x" * (settings.max_body_bytes + 10)
    r = await http.post("/graphql", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert r.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"


async def test_mutation_over_get_is_refused(tenant, http):
    r = await http.get("/graphql", params={"query": "mutation { zoneCreate(name: \"x\") { zone { id } } }"},
                       headers={"Authorization": f"Bearer {tenant.gql.token}"})
    assert r.status_code in (400, 405)


async def test_graphiql_only_outside_production(app, settings):
    html = {"accept": "text/html"}
    dev = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
    assert "graphiql" in (await dev.get("/graphql", headers=html)).text.lower()
    prod_app = create_app(Settings(**{**settings.model_dump(), "env": "production"}))
    prod = httpx.AsyncClient(transport=httpx.ASGITransport(app=prod_app), base_url="http://t")
    r = await prod.get("/graphql", headers=html)
    assert "graphiql" not in r.text.lower()
    await dev.aclose()
    await prod.aclose()


def test_unexpected_errors_are_masked_but_auth_errors_are_not():
    from graphql import GraphQLError

    bug = GraphQLError("boom", original_error=ZeroDivisionError("secret detail"))
    auth = GraphQLError("auth", original_error=GraphQLError("auth", extensions={"code": "UNAUTHENTICATED"}))
    validation = GraphQLError("Cannot query field 'x'")
    assert should_mask(bug)
    assert not should_mask(auth)
    assert not should_mask(validation)


async def test_legacy_graphql_ws_protocol_is_refused(app):
    async with httpx.AsyncClient(transport=ASGIWebSocketTransport(app=app), base_url="http://t") as client:
        # control: the modern protocol is accepted
        async with aconnect_ws("/graphql", client, subprotocols=["graphql-transport-ws"]) as ws:
            assert ws.subprotocol == "graphql-transport-ws"
        with pytest.raises(Exception):
            async with aconnect_ws("/graphql", client, subprotocols=["graphql-ws"]) as ws:
                await ws.send_json({"type": "connection_init", "payload": {}})
                await ws.receive_json(timeout=2)


async def test_health_and_readiness(http):
    assert (await http.get("/healthz")).json() == {"status": "ok"}
    r = await http.get("/readyz")
    assert r.status_code == 200 and r.json()["checks"]["database"] == "ok"


def test_schema_extensions_are_built_per_request():
    """Extension instances would be shared by concurrent requests (Strawberry deprecates them):
    the schema passes factories; every operation gets the one tuple of limit rules."""
    import warnings

    from graph.schema import build_schema

    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        schema = build_schema(mask_errors=True)
    first, second = [[e() for e in schema.extensions] for _ in range(2)]
    assert all(a is not b for a, b in zip(first, second))
    contexts = [schema._create_execution_context("{ __typename }", []) for _ in range(2)]
    assert contexts[0].validation_rules is contexts[1].validation_rules
    assert contexts[0].parse_options["max_tokens"] == 5000
