"""A production `pulse serve` moves what it holds once started out of the collector's generations
(gc.freeze, PULSE_GC_FREEZE; docs/architecture.md "Garbage collection"): a full collection then no
longer walks the schema and the modules, which made an 80-100 ms pause under load. Read from the
running server's /metrics (pulse_gc_frozen_objects), then a request still answers."""

import os
import re
import subprocess
import sys

import httpx
import pytest

from app.settings import Settings
from tests.helpers import free_port, wait_until_serving


async def _frozen_objects(tmp_path, extra: dict) -> int:
    port = free_port()
    env = {**os.environ, "PULSE_ENV": "production", "PULSE_DATABASE_URL": f"sqlite://{tmp_path}/gc.db",
           "PULSE_BROADCAST_URL": "memory://", "PULSE_METRICS_TOKEN": "gc-metrics-token-0123456789",
           "PULSE_WORKER_IN_PROCESS": "false", "PULSE_EXPORT_WORKER_IN_PROCESS": "false"}
    env.pop("PULSE_GC_FREEZE", None)  # the default unless this test sets it
    env.update(extra)
    pulse = os.path.join(os.path.dirname(sys.executable), "pulse")
    log = open(tmp_path / f"serve-{port}.log", "w+")
    server = subprocess.Popen([pulse, "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            if not await wait_until_serving(http):
                log.seek(0)
                pytest.fail(f"pulse serve did not start: {log.read()[-2000:]}")
            answer = await http.post("/graphql", json={"query": "{ __typename }"})
            assert answer.status_code == 200 and answer.json() == {"data": {"__typename": "Query"}}, answer.text
            text = (await http.get("/metrics", headers={"Authorization": "Bearer gc-metrics-token-0123456789"})).text
            found = re.search(r"^pulse_gc_frozen_objects (\S+)$", text, re.M)
            assert found, text[:500]
            return int(float(found.group(1)))
    finally:
        server.terminate()
        server.wait(30)
        log.close()


async def test_a_production_server_freezes_what_it_holds_once_started(tmp_path):
    frozen = await _frozen_objects(tmp_path, {})
    assert frozen > 50_000  # the schema, the modules, the ORM: ~150k objects


async def test_the_setting_turns_it_off(tmp_path):
    frozen = await _frozen_objects(tmp_path, {"PULSE_GC_FREEZE": "false"})
    assert frozen == 0


def test_default_is_on_except_in_tests():
    assert Settings(env="production").gc_freeze is None and Settings(env="test", gc_freeze=True).gc_freeze
    from app.main import freeze_startup_objects
    import gc

    assert freeze_startup_objects(Settings(env="test")) is False and gc.get_freeze_count() == 0
