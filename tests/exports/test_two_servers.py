"""A file built by one API instance is downloaded from another (two `pulse serve` processes on the
same database): a directory both mount, or PostgreSQL large objects."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import PG_URL
from tests.exports.conftest import PASSWORD, decrypt, sheet_dicts
from tests.exports.test_exports import CREATE, HISTORY, engaged_campaign
from tests.helpers import free_port

ROOT = Path(__file__).resolve().parents[2]


class Server:
    def __init__(self, settings, log_dir: Path, name: str, command: str = "serve", **env) -> None:
        self.command = command
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "wb")
        full_env = {**os.environ, "PULSE_DATABASE_URL": settings.database_url, "PULSE_BROADCAST_URL": settings.broadcast_url,
                    "PULSE_CHANNEL_PREFIX": settings.channel_prefix,
                    "PULSE_ENV": "test", "PULSE_AUTO_MIGRATE": "false", "PULSE_LOG_LEVEL": "warning",
                    "PULSE_WORKER_IN_PROCESS": "false", "PULSE_EXPORT_DIR": settings.export_dir,
                    "PULSE_EXPORT_STORAGE": settings.export_storage, "PULSE_EXPORT_POLL_S": "0.2",
                    **{f"PULSE_{k.upper()}": str(v) for k, v in env.items()}}
        args = ["serve", "--port", str(self.port)] if command == "serve" else ["worker"]
        self.proc = subprocess.Popen([sys.executable, "-m", "app.cli", *args], cwd=ROOT,
                                     env=full_env, stdout=self._log, stderr=subprocess.STDOUT)

    async def ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient() as client:
            while True:
                if self.proc.poll() is not None:
                    raise AssertionError(f"server exited:\n{self.log_path.read_text()}")
                if self.command == "worker":
                    if "worker started" in self.log_path.read_text(errors="replace"):
                        return
                else:
                    try:
                        if (await client.get(self.url + "/healthz")).status_code == 200:
                            return
                    except httpx.TransportError:
                        pass
                if time.monotonic() > deadline:
                    raise AssertionError(f"server did not start:\n{self.log_path.read_text()}")
                await asyncio.sleep(0.1)

    async def stop(self) -> None:
        self.proc.terminate()
        deadline = time.monotonic() + 15
        while self.proc.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if self.proc.poll() is None:
            self.proc.kill()
        self._log.close()


@pytest.mark.parametrize("builder_kind", ["serve", "worker"])
async def test_download_served_by_another_instance(tenant, settings, store, tmp_path, builder_kind):
    """The file is built by an API instance with the embedded worker, or by `pulse worker`."""
    if builder_kind == "worker" and not PG_URL:
        pytest.skip("`pulse worker` processes run on PostgreSQL")
    c = await engaged_campaign(tenant.gql, "ALWAYS_ON")
    builder = Server(settings, tmp_path, "builder", builder_kind, export_worker_in_process="true")
    other = Server(settings, tmp_path, "other", export_worker_in_process="false")
    try:
        await asyncio.gather(builder.ready(), other.ready())
        headers = {"Authorization": f"Bearer {tenant.gql.token}"}
        async with httpx.AsyncClient(timeout=30) as client:
            r = await client.post(other.url + "/graphql", headers=headers, json={
                "query": CREATE, "variables": {"c": c["id"], "r": "cross-instance check", "p": PASSWORD}})
            created = r.json()["data"]["exportCreate"]
            assert not created["userErrors"], created
            url = urlsplit(created["downloadUrl"])
            assert url.netloc == f"127.0.0.1:{other.port}"  # the link names the instance that was asked
            deadline = time.monotonic() + 60
            while True:  # only the builder runs export jobs
                h = await client.post(other.url + "/graphql", headers=headers,
                                      json={"query": HISTORY, "variables": {"c": c["id"]}})
                [entry] = [e["node"] for e in h.json()["data"]["exports"]["edges"]]
                if entry["status"] == "READY":
                    break
                assert entry["status"] in ("PENDING", "RUNNING") and time.monotonic() < deadline, entry
                await asyncio.sleep(0.2)
            response = await client.get(f"{other.url}{url.path}?{url.query}")
            assert response.status_code == 200, response.text
            assert sheet_dicts(decrypt(response.content), "Campaign")[0]["id"] == c["id"]
            if builder_kind == "serve":
                again = await client.get(f"{builder.url}{url.path}?{url.query}")
                assert again.status_code == 410  # single use across instances too
    finally:
        await asyncio.gather(builder.stop(), other.stop())
