"""Issue 10 item 17: a dead database (its connections terminated, the database dropped) gives 503
GraphQL JSON with the code SERVICE_UNAVAILABLE — never a plain-text 500 — and the scheduler's
failure is logged once for the outage, not every tick. A real `pulse serve` on a throwaway PostgreSQL
database (the ORM is process-wide, so the dying app runs in its own process)."""

import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid

import asyncpg
import httpx
import pytest

from tests.conftest import PG_URL

pytestmark = pytest.mark.skipif(not PG_URL, reason="PostgreSQL only (the database is terminated and dropped)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_a_dead_database_gives_503_json_and_one_log_line(tmp_path):
    name = f"pulse_dying_{uuid.uuid4().hex[:8]}"
    admin = PG_URL.replace("postgres://", "postgresql://", 1)
    conn = await asyncpg.connect(admin)
    await conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_URL.rsplit("/", 1)[0] + "/" + name
    port = _free_port()
    env = {**os.environ, "PULSE_ENV": "production", "PULSE_DATABASE_URL": url, "PULSE_BROADCAST_URL": "memory://",
           "PULSE_AUTO_MIGRATE": "true", "PULSE_WORKER_IN_PROCESS": "false", "PULSE_SCHEDULER_INTERVAL_S": "0.1",
           "PULSE_EXPORT_WORKER_IN_PROCESS": "false"}
    pulse = [os.path.join(os.path.dirname(sys.executable), "pulse")]
    created = subprocess.run([*pulse, "org", "create", "--name", "Dying", "--owner-email", "o@dying.test"],
                             env=env, capture_output=True, text=True, timeout=120)
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    log = open(tmp_path / "serve.log", "w+")
    server = subprocess.Popen([*pulse, "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            for _ in range(200):
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            auth = {"Authorization": f"Bearer {token}"}
            ok = await http.post("/graphql", json={"query": "{ campaigns { totalCount } }"}, headers=auth)
            assert ok.status_code == 200, ok.text
            # The database goes away.
            await conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            for headers in (auth, {"Authorization": f"Bearer {token[:-4]}abcd"}):  # resolvers, then auth
                r = await http.post("/graphql", json={"query": "{ campaigns { totalCount } }"}, headers=headers)
                assert r.status_code == 503, r.text
                assert r.headers["content-type"].startswith("application/json")
                assert r.json()["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
            await asyncio.sleep(1.5)  # ~15 scheduler ticks during the outage
    finally:
        server.terminate()
        server.wait(30)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()
    log.seek(0)
    lines = [line for line in log.read().splitlines() if "scheduler tick failed" in line]
    assert len(lines) == 1, lines
