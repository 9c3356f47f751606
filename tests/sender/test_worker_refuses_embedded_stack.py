"""`pulse worker` on SQLite or the in-process bus would change state that no subscriber ever hears
of: it refuses to start, with a message saying what it needs."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _worker(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.cli", "worker"], cwd=ROOT, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=60)


async def test_worker_refuses_sqlite_and_the_in_process_bus(app, tmp_path):
    r = _worker({"PULSE_DATABASE_URL": f"sqlite://{tmp_path}/w.db", "PULSE_BROADCAST_URL": "memory://"})
    assert r.returncode == 2 and "redis://" in r.stderr and "pulse serve" in r.stderr, r.stderr
    r = _worker({"PULSE_DATABASE_URL": f"sqlite://{tmp_path}/w.db", "PULSE_BROADCAST_URL": "redis://127.0.0.1:6379/0"})
    assert r.returncode == 2 and "PostgreSQL" in r.stderr, r.stderr
