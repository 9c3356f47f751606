"""CLI for a fresh install, and token lifecycle through the API."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from subscriptions.bus import Bus, get_bus, set_bus

ROOT = Path(__file__).resolve().parents[2]


def pulse(*args: str, db: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PULSE_DATABASE_URL": db}
    return subprocess.run([sys.executable, "-m", "app.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_cli_fresh_install_org_and_tokens(tmp_path):
    db = f"sqlite://{tmp_path}/cli.db"
    created = pulse("org", "create", "--name", "Acme CLI", "--owner-email", "boss@acme.test", "--currency", "usd",
                    "--timezone", "Europe/Paris", db=db)
    assert created.returncode == 0, created.stderr
    owner_token = created.stdout.strip().splitlines()[-1]
    assert owner_token.startswith("cp_") and " " not in owner_token

    dup = pulse("org", "create", "--name", "Acme CLI", "--owner-email", "x@acme.test", db=db)
    assert dup.returncode == 2 and "exists" in dup.stderr

    bad_tz = pulse("org", "create", "--name", "Other", "--owner-email", "x@acme.test", "--timezone", "Mars/Base", db=db)
    assert bad_tz.returncode == 2 and "time zone" in bad_tz.stderr

    made = pulse("token", "create", "--org", "Acme CLI", "--email", "bot@acme.test", "--role", "INTEGRATION", db=db)
    assert made.returncode == 0, made.stderr
    bot_token = made.stdout.strip().splitlines()[-1]
    assert bot_token.startswith("cp_") and bot_token != owner_token

    listed = pulse("token", "list", "--org", "Acme CLI", db=db)
    assert "bot@acme.test" in listed.stdout and "boss@acme.test" in listed.stdout
    assert bot_token not in listed.stdout  # secrets are never listed

    token_id = next(line.split("\t")[0] for line in listed.stdout.splitlines() if "bot@acme.test" in line)
    revoked = pulse("token", "revoke", token_id, db=db)
    assert revoked.returncode == 0 and "revoked" in revoked.stdout
    assert "revoked" in pulse("token", "list", "--org", "Acme CLI", db=db).stdout

    missing = pulse("token", "create", "--org", "Nope", "--email", "a@b.test", db=db)
    assert missing.returncode == 2


async def test_token_lifecycle_over_the_api(tenant):
    analyst = await tenant.member("ANALYST")
    d = await analyst("{ viewer { email role } tokens { edges { node { id lastUsedAt revokedAt } } } }")
    assert d["viewer"]["role"] == "ANALYST"
    mine = d["tokens"]["edges"]
    assert len(mine) == 1 and mine[0]["node"]["lastUsedAt"] is not None

    # owners list every token of the organization; hashes and secrets never appear
    all_tokens = await tenant.gql("{ tokens { totalCount edges { node { prefix userEmail } } } }")
    assert all_tokens["tokens"]["totalCount"] >= 2

    # an analyst cannot create tokens
    d = await analyst('mutation { tokenCreate(input:{email:"x@y.test", role:OWNER}) { token userErrors { code } } }')
    assert d["tokenCreate"]["token"] is None and d["tokenCreate"]["userErrors"][0]["code"] == "FORBIDDEN"

    r = await tenant.gql("mutation($id:ID!){ tokenRevoke(id:$id){ apiToken{ revokedAt } userErrors{ code } } }",
                         {"id": mine[0]["node"]["id"]})
    assert r["tokenRevoke"]["apiToken"]["revokedAt"] is not None
    response = await analyst.raw("{ viewer { email } }")
    assert response.status_code == 401


async def test_readyz_reports_a_dead_broker(http):
    saved = get_bus()
    set_bus(Bus("redis://127.0.0.1:1/0"))
    try:
        r = await http.get("/readyz")
    finally:
        set_bus(saved)
    assert r.status_code == 503
    assert r.json()["checks"]["broadcast"].startswith("down")


@pytest.mark.parametrize("value", ["", "Bearer", "Bearer cp_x", "Basic abc"])
async def test_malformed_authorization_is_401(anon, value):
    r = await anon.http.post("/graphql", json={"query": "{ viewer { email } }"}, headers={"Authorization": value})
    assert r.status_code == 401 or (r.status_code == 200 and r.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED")
