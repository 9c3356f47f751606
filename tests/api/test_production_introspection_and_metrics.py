"""Issue 10 item 4: in production anonymous introspection is refused (a valid token reads it; a
setting allows it), and /metrics is not public on the API port: it needs the metrics token or is
served on its own port."""

import socket

import httpx
import pytest

from app.main import create_app, serve_metrics
from app.settings import Settings

INTROSPECT = "{ __schema { queryType { name } } }"


def _client(app):
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://prod")


def _prod(settings, **kw) -> Settings:
    return Settings(**{**settings.model_dump(), "env": "production", **kw})


async def test_anonymous_introspection_is_refused_in_production(app, settings, tenant):
    async with _client(create_app(_prod(settings))) as prod:
        for r in (await prod.post("/graphql", json={"query": INTROSPECT}),
                  await prod.get("/graphql", params={"query": '{ __type(name: "Campaign") { name } }'})):
            assert r.status_code == 401, r.text
            assert r.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        r = await prod.post("/graphql", json={"query": INTROSPECT},
                            headers={"Authorization": f"Bearer {tenant.gql.token}"})
        assert r.status_code == 200 and r.json()["data"]["__schema"]["queryType"]["name"] == "Query"
        r = await prod.post("/graphql", json={"query": INTROSPECT}, headers={"Authorization": "Bearer nope"})
        assert r.status_code == 401
    async with _client(create_app(_prod(settings, anonymous_introspection=True))) as prod:
        r = await prod.post("/graphql", json={"query": INTROSPECT})
        assert r.status_code == 200 and r.json()["data"]["__schema"]["queryType"]["name"] == "Query"
    async with _client(create_app(settings)) as dev:  # outside production: allowed as before
        assert (await dev.post("/graphql", json={"query": INTROSPECT})).status_code == 200


async def test_metrics_are_not_public_on_the_api_port_in_production(app, settings):
    async with _client(create_app(_prod(settings))) as prod:
        r = await prod.get("/metrics")
        assert r.status_code == 404 and r.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    async with _client(create_app(_prod(settings, metrics_token="m" * 24))) as prod:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            r = await prod.get("/metrics", headers=headers)
            assert r.status_code == 401 and r.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        r = await prod.get("/metrics", headers={"Authorization": "Bearer " + "m" * 24})
        assert r.status_code == 200 and "pulse_" in r.text
    async with _client(create_app(settings)) as dev:  # outside production without settings: public
        assert (await dev.get("/metrics")).status_code == 200


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("token", [None, "t" * 24])
async def test_metrics_on_their_own_port(app, settings, token):
    port = _free_port()
    prod = _prod(settings, host="127.0.0.1", metrics_port=port, metrics_token=token)
    async with _client(create_app(prod)) as api:
        assert (await api.get("/metrics")).status_code == 404  # not on the API port
    server = await serve_metrics(prod)  # what the app's lifespan starts when PULSE_METRICS_PORT is set
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as own:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            r = await own.get("/metrics", headers=headers)
            assert r.status_code == 200 and "pulse_" in r.text
            if token:
                assert (await own.get("/metrics")).status_code == 401
            assert (await own.get("/graphql")).status_code == 404
    finally:
        server.close()
        await server.wait_closed()
