"""Issue 10 item 17 (websockets): when the database goes away, every websocket whose database work
fails is closed with 1013 "Try Again Later" (graphql-ws clients reconnect on it by default), never
dropped without a close code: a subscription already running (its hub's round fails), a subscribe on
an open connection (its first read fails), a new connection (checking its token fails). The hubs log
the outage once, not every round; so does the sender worker, not every tick (the scheduler:
tests/api/test_dead_database_answers_503.py). A real `pulse serve` on a throwaway PostgreSQL
database, real websockets (tests/wsclient.py)."""

import asyncio
import os
import socket
import subprocess
import sys
import uuid

import asyncpg
import httpx
import pytest

from tests.conftest import PG_URL
from tests.wsclient import WsClient

pytestmark = pytest.mark.skipif(not PG_URL, reason="PostgreSQL only (the database is dropped)")

KPIS = "subscription { dashboardKpis { activeCampaigns } }"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_websockets_are_closed_with_1013_when_the_database_goes_away(tmp_path):
    name = f"pulse_dying_ws_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(PG_URL.replace("postgres://", "postgresql://", 1))
    await conn.execute(f'CREATE DATABASE "{name}"')
    env = {**os.environ, "PULSE_ENV": "production", "PULSE_DATABASE_URL": PG_URL.rsplit("/", 1)[0] + "/" + name,
           "PULSE_BROADCAST_URL": "memory://", "PULSE_AUTO_MIGRATE": "true", "PULSE_WORKER_IN_PROCESS": "true",
           "PULSE_EXPORT_WORKER_IN_PROCESS": "false", "PULSE_SUBSCRIPTION_RECONCILE_INTERVAL_S": "0.2",
           "PULSE_SENDER_TICK_S": "0.1"}
    pulse = [os.path.join(os.path.dirname(sys.executable), "pulse")]
    created = subprocess.run([*pulse, "org", "create", "--name", "Dying", "--owner-email", "o@dying.test"],
                             env=env, capture_output=True, text=True, timeout=120)
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(tmp_path / "serve.log", "w+")
    server = subprocess.Popen([*pulse, "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    clients: list[WsClient] = []
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            for _ in range(300):
                try:
                    if (await http.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            # A second member's token, never used yet: checking it needs the database.
            r = await http.post("/graphql", headers={"Authorization": f"Bearer {token}"}, json={
                "query": "mutation($i:TokenCreateInput!){ tokenCreate(input:$i){ token } }",
                "variables": {"i": {"email": "a@dying.test", "role": "ANALYST"}}})
            fresh = r.json()["data"]["tokenCreate"]["token"]
        running = WsClient(base)
        idle = WsClient(base)
        clients += [running, idle]
        for client in (running, idle):
            await client.connect()
            await client.init(token)
        await running.subscribe("1", KPIS)
        assert (await running.next("1"))["dashboardKpis"]["activeCampaigns"] == 0

        await conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')

        # The running subscription: its hub's next round (reconciliation every 0.2 s) fails.
        assert await running.wait_closed(15) == (1013, "database unavailable: try again later")
        # A subscribe on an open connection: its first read fails.
        await idle.subscribe("2", KPIS)
        assert await idle.wait_closed(15) == (1013, "database unavailable: try again later")
        # A new connection: checking its token fails.
        late = WsClient(base)
        clients.append(late)
        await late.connect()
        await late.init(fresh, expect_ack=False)
        assert await late.wait_closed(15) == (1013, "database unavailable: try again later")
        await asyncio.sleep(4)  # more hub rounds, scheduler ticks and pool retries during the outage
    finally:
        for client in clients:
            await client.close()
        server.terminate()
        server.wait(30)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()
    log.seek(0)
    lines = log.read().splitlines()
    hubs = [line for line in lines if '"logger":"pulse.hubs"' in line]
    assert len(hubs) == 1 and "hub rounds failed: the database is unavailable" in hubs[0], hubs
    # The in-process sender worker (every 0.1 s; it runs the scheduling too): once.
    assert sum("worker round failed" in line for line in lines) == 1, [line[:200] for line in lines if "failed" in line]
    # asyncpg's pool retries its floor every second or two: its warning (a traceback) once per outage.
    assert sum("pool connection floor" in line for line in lines) <= 1, [line[:200] for line in lines]
