"""Issue 12 items 14 and 15: a bad setting is one line naming it; `pulse token list` prints role names."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def pulse(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.cli", *args], cwd=ROOT, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=120)


def test_token_list_prints_the_role_name(tmp_path):
    db = f"sqlite://{tmp_path}/cli.db"
    created = pulse("org", "create", "--name", "Roles", "--owner-email", "boss@roles.test", PULSE_DATABASE_URL=db)
    assert created.returncode == 0, created.stderr
    listed = pulse("token", "list", "--org", "Roles", PULSE_DATABASE_URL=db)
    assert listed.returncode == 0, listed.stderr
    line = next(x for x in listed.stdout.splitlines() if "boss@roles.test" in x)
    assert line.split("\t")[3] == "OWNER" and "Role." not in listed.stdout


def test_a_bad_setting_is_one_line_naming_it(tmp_path):
    db = f"sqlite://{tmp_path}/cli.db"
    r = pulse("migrate", PULSE_DATABASE_URL=db, PULSE_WEBHOOK_URL="http://127.0.0.1:9/hook",
              PULSE_WEBHOOK_SECRET="short")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.strip().splitlines() == [
        "invalid setting: PULSE_WEBHOOK_SECRET (16+ characters) is required when PULSE_WEBHOOK_URL is set"]
    r = pulse("migrate", PULSE_DATABASE_URL=db, PULSE_PORT="abc", PULSE_SENDER_RATE="0")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("invalid setting: PULSE_PORT: ") and "'abc'" in lines[0]
    assert lines[1].startswith("invalid setting: PULSE_SENDER_RATE: ") and "greater than 0" in lines[1]
