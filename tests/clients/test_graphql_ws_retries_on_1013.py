"""Issue 10 item 17: the stock graphql-ws npm client, with its DEFAULT retry rules, rides out a
database outage: its socket is closed with 1013 (not fatal for graphql-ws, unlike 1011), it
reconnects and resubscribes by itself, and gets values again once the database is back; the
server logs the outage and its recovery once. A real `pulse serve` process; the outage is made by
taking the database away (connections refused, open ones terminated) and giving it back.
PostgreSQL only."""

from __future__ import annotations

import asyncio
import json
import re
import time

import asyncpg
import pytest

from tests.clients.server import NODE_DIR, PulseServer, drop_database, require_node, throwaway_database
from tests.conftest import PG_URL

pytestmark = pytest.mark.skipif(not PG_URL, reason="PostgreSQL only (the database is taken away and given back)")


async def _lines(proc, lines: list[dict]) -> None:
    async for line in proc.stdout:
        lines.append(json.loads(line))


async def _wait(lines: list[dict], predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not any(predicate(line) for line in lines):
        if time.monotonic() > deadline:
            raise AssertionError(f"node client: {what} not seen; lines: {lines[-15:]}")
        await asyncio.sleep(0.05)


async def test_stock_graphql_ws_client_reconnects_after_1013_when_the_database_comes_back(tmp_path):
    require_node()
    url, name = await throwaway_database(tmp_path)
    server = PulseServer(url, tmp_path, PULSE_SUBSCRIPTION_RECONCILE_INTERVAL_S="0.2", PULSE_LOG_LEVEL="info")
    admin = await asyncpg.connect(re.sub(r"^postgres(ql)?://", "postgresql://", PG_URL))
    proc = None
    try:
        await server.start()
        token = server.cli("org", "create", "--name", "Outage", "--owner-email", "o@outage.test")
        proc = await asyncio.create_subprocess_exec(
            "node", "retry-check.mjs", server.url.replace("http://", "ws://") + "/graphql", token,
            cwd=NODE_DIR, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        lines: list[dict] = []
        reader = asyncio.create_task(_lines(proc, lines))
        await _wait(lines, lambda l: l["kind"] == "next", 30, "a first value")

        # The database goes away: new connections refused (it no longer exists under its name), open ones ended.
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name)
        await admin.execute(f'ALTER DATABASE "{name}" RENAME TO "{name}_away"')
        await _wait(lines, lambda l: l["kind"] == "closed" and l["code"] == 1013, 30, "a 1013 close")
        assert lines[[l["kind"] for l in lines].index("closed")]["reason"] == "database unavailable: try again later"
        closed_at = len(lines)
        await asyncio.sleep(1)
        # It comes back.
        await admin.execute(f'ALTER DATABASE "{name}_away" RENAME TO "{name}"')
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        deadline = time.monotonic() + 60
        while not any(l["kind"] == "next" for l in lines[closed_at:]):
            assert time.monotonic() < deadline, f"no value after the outage; lines: {lines[-15:]}"
            assert not any(l["kind"] in ("error", "complete") for l in lines), lines  # the client never gave up
            await asyncio.sleep(0.05)
        assert {l["code"] for l in lines if l["kind"] == "closed"} <= {1013}, lines
        proc.stdin.close()
        await asyncio.wait_for(proc.wait(), 20)
        await reader
    finally:
        if proc is not None and proc.returncode is None:
            proc.kill()
        await server.close()
        with_name = await admin.fetchval("SELECT datname FROM pg_database WHERE datname = $1", f"{name}_away")
        if with_name:
            await admin.execute(f'ALTER DATABASE "{name}_away" RENAME TO "{name}"')
        await admin.close()
        await drop_database(name)
    log = "".join(f.read_text(errors="replace") for f in sorted(tmp_path.glob("serve-*.log")))
    assert log.count("hub rounds failed: the database is unavailable") == 1, log
    assert "hub rounds recovered" in log, log
    assert log.count("pool connection floor") <= 1, log  # asyncpg's retries: once per outage
