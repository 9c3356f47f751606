"""Test harness: the real app, driven over GraphQL by an HTTP client.

The suite runs against the embedded default (SQLite file + in-process bus),
and against PostgreSQL + Redis when PULSE_TEST_DATABASE_URL /
PULSE_TEST_REDIS_URL are set. Every test works in its own organization(s), so
tests never see each other's data and need no truncation.
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager

from app.main import create_app
from app.settings import Settings

PG_URL = os.environ.get("PULSE_TEST_DATABASE_URL")
REDIS_URL = os.environ.get("PULSE_TEST_REDIS_URL")
BACKEND = "postgres" if PG_URL else "sqlite"


def pytest_report_header(config):
    return f"campaign-pulse backend: {BACKEND} database, {'redis' if REDIS_URL else 'in-process'} pub/sub"


async def _fresh_pg_database(base_url: str) -> tuple[str, str]:
    """Create a throwaway database next to the one named in base_url."""
    name = f"pulse_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = re.sub(r"^postgres(ql)?://", "postgresql://", base_url)
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return re.sub(r"/[^/?]*(\?|$)", f"/{name}\\1", base_url.rstrip("/"), count=1) if base_url.count("/") > 2 else base_url + "/" + name, name


async def _drop_pg_database(base_url: str, name: str) -> None:
    admin = re.sub(r"^postgres(ql)?://", "postgresql://", base_url)
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
async def database_url():
    if PG_URL:
        url, name = await _fresh_pg_database(PG_URL)
        yield url
        await _drop_pg_database(PG_URL, name)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite://{tmp}/pulse-test.db"


@pytest.fixture(scope="session")
def settings(database_url) -> Settings:
    # A channel prefix of its own: runs sharing one Redis (a laptop running two suites, a rerun
    # within a rate-limit window) never see each other's bus messages or rate-limit counters.
    return Settings(env="test", database_url=database_url, broadcast_url=REDIS_URL or "memory://",
                    channel_prefix=f"test-{os.getpid()}-{uuid.uuid4().hex[:6]}:",
                    auto_migrate=True, token_last_used_resolution_s=0,
                    # Tests drive the sender explicitly (tests/sender); no background worker.
                    worker_in_process=False)


@pytest.fixture(scope="session")
async def app(settings):
    application = create_app(settings)
    async with LifespanManager(application, startup_timeout=60, shutdown_timeout=30):
        yield application


@dataclass
class GQL:
    """A GraphQL-over-HTTP client authenticated as one principal."""

    http: httpx.AsyncClient
    token: str | None = None

    async def raw(self, query: str, variables: dict | None = None, token: str | None = None) -> httpx.Response:
        headers = {}
        tok = token if token is not None else self.token
        if tok:
            headers["Authorization"] = f"Bearer {tok}"
        return await self.http.post("/graphql", json={"query": query, "variables": variables or {}}, headers=headers)

    async def __call__(self, query: str, variables: dict | None = None, **kw) -> dict[str, Any]:
        """Execute and return `data`; fails the test on top-level errors."""
        response = await self.raw(query, variables, **kw)
        assert response.status_code == 200, response.text
        body = response.json()
        assert not body.get("errors"), body["errors"]
        return body["data"]

    def as_(self, token: str) -> "GQL":
        return GQL(self.http, token)


@pytest.fixture(scope="session")
async def http(app):
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://pulse.test", timeout=60) as client:
        yield client


@pytest.fixture
def anon(http) -> GQL:
    return GQL(http)


def unique(prefix: str = "org") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass
class Tenant:
    """An organization with an owner client, and helpers to add units and members."""

    gql: GQL
    org_id: str
    name: str

    async def zone(self, name: str | None = None) -> str:
        d = await self.gql("mutation($n:String!){ zoneCreate(name:$n){ zone{ id } userErrors{ code message } } }",
                           {"n": name or unique("zone")})
        assert not d["zoneCreate"]["userErrors"], d
        return d["zoneCreate"]["zone"]["id"]

    async def center(self, zone_id: str, name: str | None = None) -> str:
        d = await self.gql(
            "mutation($z:ID!,$n:String!){ centerCreate(zoneId:$z, name:$n){ center{ id } userErrors{ code message } } }",
            {"z": zone_id, "n": name or unique("center")})
        assert not d["centerCreate"]["userErrors"], d
        return d["centerCreate"]["center"]["id"]

    async def member(self, role: str, scope: str | None = None, email: str | None = None, can_export=None) -> GQL:
        d = await self.gql(
            "mutation($i:TokenCreateInput!){ tokenCreate(input:$i){ token userErrors{ code message } } }",
            {"i": {"email": email or f"{unique(role.lower())}@example.test", "role": role, "scopeUnitId": scope,
                   "canExport": can_export}})
        assert not d["tokenCreate"]["userErrors"], d
        return self.gql.as_(d["tokenCreate"]["token"])


@pytest.fixture
async def tenant_factory(http):
    """Create organizations through the same service the CLI uses."""
    from app.tenancy.service import create_organization

    async def make(currency: str = "EUR", timezone: str = "UTC") -> Tenant:
        name = unique()
        issued = await create_organization(name, f"owner@{name}.test", currency, timezone)
        gql = GQL(http, issued.token)
        org = await gql("{ viewer { organization { id } } }")
        return Tenant(gql, org["viewer"]["organization"]["id"], name)

    return make


@pytest.fixture
async def tenant(tenant_factory) -> Tenant:
    return await tenant_factory()


@pytest.fixture(scope="session")
async def live_server(app):
    """The same app served over real sockets by uvicorn (for websocket and interop tests)."""
    import socket

    import uvicorn

    from app.web.wsprotocol import PulseWebSocketProtocol

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning",
                            ws=PulseWebSocketProtocol)  # what `pulse serve` uses
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(100):
        if server.started:
            break
        await asyncio.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task
