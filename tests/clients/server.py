"""A real `pulse serve` process on a free port, which a test can kill (SIGTERM or SIGKILL) and
start again on the same port and database (tests/clients)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import PG_URL, REDIS_URL, _drop_pg_database, _fresh_pg_database
from tests.helpers import free_port

ROOT = Path(__file__).resolve().parents[2]
NODE_DIR = Path(__file__).resolve().parent / "node"


class PulseServer:
    def __init__(self, database_url: str, log_dir: Path, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.database_url = database_url
        self.log_dir = log_dir
        self.env = {**os.environ, "PULSE_DATABASE_URL": database_url, "PULSE_BROADCAST_URL": REDIS_URL or "memory://",
                    "PULSE_ENV": "test", "PULSE_AUTO_MIGRATE": "true", "PULSE_LOG_LEVEL": "warning",
                    # Nothing is launched in these tests: the sender would only add noise.
                    "PULSE_WORKER_IN_PROCESS": "false", **env}
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.timings: list[dict] = []

    def cli(self, *args: str) -> str:
        """Run `pulse …` on the same database; returns the last line of its output."""
        done = subprocess.run([sys.executable, "-m", "app.cli", *args], cwd=ROOT, env=self.env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip().splitlines()[-1]

    async def start(self, timeout: float = 60) -> float:
        """Start `pulse serve` and wait until /readyz answers 200; returns the seconds it took."""
        self.starts += 1
        log = open(self.log_dir / f"serve-{self.port}-{self.starts}.log", "wb")
        began = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1",
                                      "--port", str(self.port)], cwd=ROOT, env=self.env, stdout=log,
                                     stderr=subprocess.STDOUT)
        async with httpx.AsyncClient(timeout=2) as client:
            while True:
                if self.proc.poll() is not None:
                    raise AssertionError(f"pulse serve exited {self.proc.returncode}: {self.log()}")
                try:
                    if (await client.get(f"{self.url}/readyz")).status_code == 200:
                        return time.monotonic() - began
                except httpx.HTTPError:
                    pass
                if time.monotonic() - began > timeout:
                    raise AssertionError(f"pulse serve not ready after {timeout}s: {self.log()}")
                await asyncio.sleep(0.05)

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> float:
        """Send `sig` and wait for the process to end; returns the seconds it took."""
        assert self.proc is not None
        began = time.monotonic()
        self.proc.send_signal(sig)
        while self.proc.poll() is None:
            if time.monotonic() - began > timeout:
                self.proc.kill()
                raise AssertionError(f"pulse serve still running {timeout}s after {sig!r}")
            await asyncio.sleep(0.02)
        return time.monotonic() - began

    async def restart(self, sig: int = signal.SIGTERM) -> dict:
        stopped = await self.stop(sig)
        started = await self.start()
        timing = {"signal": signal.Signals(sig).name, "stop_s": round(stopped, 2), "start_s": round(started, 2)}
        self.timings.append(timing)
        return timing

    def log(self) -> str:
        files = sorted(self.log_dir.glob(f"serve-{self.port}-*.log"))
        return files[-1].read_text(errors="replace")[-4000:] if files else ""

    async def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            await self.stop(signal.SIGTERM)


async def throwaway_database(tmp_path: Path) -> tuple[str, str | None]:
    """(database url, name to drop): a fresh PostgreSQL database when the suite runs on PostgreSQL,
    else a SQLite file."""
    if PG_URL:
        return await _fresh_pg_database(PG_URL)
    return f"sqlite://{tmp_path}/serve.db", None


async def drop_database(name: str | None) -> None:
    if PG_URL and name:
        await _drop_pg_database(PG_URL, name)


class Api:
    """GraphQL over HTTP against a PulseServer, retrying while it restarts (safe for idempotent
    ingestion: events carry idempotency keys)."""

    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token
        self.http = httpx.AsyncClient(timeout=10)

    async def __call__(self, query: str, variables: dict | None = None, retry_for: float = 60) -> dict:
        began = time.monotonic()
        while True:
            try:
                r = await self.http.post(f"{self.url}/graphql", json={"query": query, "variables": variables or {}},
                                         headers={"Authorization": f"Bearer {self.token}"})
                if r.status_code < 500:
                    body = r.json()
                    assert not body.get("errors"), body
                    return body["data"]
            except httpx.TransportError:
                pass
            if time.monotonic() - began > retry_for:
                raise AssertionError(f"API at {self.url} unavailable for {retry_for}s")
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        await self.http.aclose()


def node_available() -> bool:
    """Whether the Node checks can run: node present and tests/clients/node installed
    (scripts/install-clients does it; `make test` runs that script)."""
    import shutil

    return bool(shutil.which("node")) and (NODE_DIR / "node_modules" / "graphql-ws").is_dir()


def require_node() -> None:
    import pytest

    if node_available():
        return
    message = ("node or tests/clients/node/node_modules missing: run scripts/install-clients "
               "(`make test` does) to run the stock graphql-ws client checks")
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)
