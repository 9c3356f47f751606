"""The bus on a real Redis: first subscriber, restarts, and two API processes.

Each test runs its own redis-server on a free port so that it can restart it.
Runs in the PostgreSQL + Redis pass (PULSE_TEST_REDIS_URL set).
"""

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from subscriptions.backends import ResilientRedisBackend
from tests.conftest import PG_URL, REDIS_URL
from tests.helpers import at, free_port, launched_campaign
from tests.wsclient import connect

pytestmark = pytest.mark.skipif(not (REDIS_URL and PG_URL and shutil.which("redis-server")),
                                reason="needs PostgreSQL, Redis and redis-server (the production-stack pass)")
ROOT = Path(__file__).resolve().parents[2]


class RedisServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


@pytest.fixture
def redis_server():
    server = RedisServer()
    server.start()
    yield server
    server.stop()


async def next_event(backend, timeout=5.0):
    return await asyncio.wait_for(backend.next_published(), timeout)


async def test_first_subscription_of_a_fresh_backend_gets_its_messages(redis_server):
    for attempt in range(5):  # several fresh processes' worth: the original bug was a race
        backend = ResilientRedisBackend(redis_server.url)
        await backend.connect()
        try:
            await backend.subscribe(f"first-{attempt}")
            await backend.publish(f"first-{attempt}", "hello")
            event = await next_event(backend)
            assert (event.channel, event.message) == (f"first-{attempt}", "hello")
        finally:
            await backend.disconnect()


async def test_backend_reconnects_and_resubscribes_after_a_restart(redis_server):
    backend = ResilientRedisBackend(redis_server.url)
    reconnected = asyncio.Event()
    backend.on_reconnect.append(reconnected.set)
    await backend.connect()
    try:
        await backend.subscribe("a")
        await backend.subscribe("b")
        await backend.publish("a", "before")
        assert (await next_event(backend)).message == "before"

        redis_server.stop()
        await asyncio.sleep(0.5)
        redis_server.start()
        await asyncio.wait_for(reconnected.wait(), timeout=5)
        assert backend.reconnects == 1
        await backend.publish("b", "after")
        event = await next_event(backend)
        assert (event.channel, event.message) == ("b", "after")
    finally:
        await backend.disconnect()


async def test_backend_hand_off_queue_is_bounded(redis_server):
    backend = ResilientRedisBackend(redis_server.url, queue_size=10)
    resyncs = []
    backend.on_reconnect.append(lambda: resyncs.append(1))
    await backend.connect()
    try:
        await backend.subscribe("flood")
        for i in range(50):
            await backend.publish("flood", str(i))
        await asyncio.sleep(0.5)
        assert backend._queue.qsize() <= 10
        assert resyncs  # dropping a hint asks every hub for a fresh snapshot
        messages = [int((await next_event(backend)).message) for _ in range(backend._queue.qsize())]
        assert messages[-1] == 49
    finally:
        await backend.disconnect()


class ApiProcess:
    def __init__(self, database_url: str, redis_url: str) -> None:
        self.port = free_port()
        env = {**os.environ, "PULSE_DATABASE_URL": database_url, "PULSE_BROADCAST_URL": redis_url,
               "PULSE_ENV": "test", "PULSE_AUTO_MIGRATE": "false", "PULSE_SUBSCRIPTION_MIN_INTERVAL_S": "0.1",
               "PULSE_LOG_LEVEL": "warning"}
        self.proc = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--port", str(self.port)],
                                     cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def ready(self) -> None:
        async with httpx.AsyncClient() as client:
            for _ in range(200):
                try:
                    if (await client.get(self.url + "/readyz")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                if self.proc.poll() is not None:
                    raise RuntimeError(self.proc.stderr.read().decode())
                await asyncio.sleep(0.1)
        raise RuntimeError("API process did not become ready")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


async def test_two_api_processes_share_one_redis_and_survive_its_restart(tenant, settings, redis_server):
    a = ApiProcess(settings.database_url, redis_server.url)
    b = ApiProcess(settings.database_url, redis_server.url)
    try:
        await asyncio.gather(a.ready(), b.ready())
        campaign, leads = await launched_campaign(tenant.gql, 3)
        # the first subscriber of freshly started process B
        ws = await connect(b.url, tenant.gql.token)
        await ws.subscribe("k", "subscription($id:ID!){ campaignKpis(campaignId:$id){ totals{ sent } } }",
                          {"id": campaign["id"]})
        assert (await ws.next("k"))["campaignKpis"]["totals"]["sent"] == 0

        async def ingest_on_a(key: str, ext: str, lead: dict) -> None:
            async with httpx.AsyncClient(base_url=a.url) as client:
                r = await client.post("/graphql", headers={"Authorization": f"Bearer {tenant.gql.token}"}, json={
                    "query": "mutation($e:[SendEventInput!]!){ sendEventsIngest(events:$e){ accepted } }",
                    "variables": {"e": [{"idempotencyKey": key, "externalId": ext, "channel": "EMAIL", "type": "SENT",
                                         "occurredAt": at(1), "campaignId": campaign["id"], "leadId": lead["id"]}]}})
                assert r.json()["data"]["sendEventsIngest"]["accepted"] == 1, r.text

        await ingest_on_a("r1", "rm1", leads[0])  # mutation on A ...
        data = await ws.until("k", lambda d: d["campaignKpis"]["totals"]["sent"] == 1, timeout=5)  # ... seen on B
        assert data

        # Redis restarts in the middle of the stream
        redis_server.stop()
        await ingest_on_a("r2", "rm2", leads[1])  # published into the void: lost by Redis pub/sub
        await asyncio.sleep(0.3)
        redis_server.start()
        started = time.monotonic()
        # B reconnects and sends a fresh snapshot that includes the change made during the outage
        await ws.until("k", lambda d: d["campaignKpis"]["totals"]["sent"] == 2, timeout=5)
        await ingest_on_a("r3", "rm3", leads[2])  # and later events flow again
        await ws.until("k", lambda d: d["campaignKpis"]["totals"]["sent"] == 3, timeout=5)
        assert time.monotonic() - started < 5
        async with httpx.AsyncClient() as client:
            assert (await client.get(b.url + "/readyz")).json()["checks"]["bus"] == "connected"
        await ws.close()
    finally:
        a.stop()
        b.stop()
