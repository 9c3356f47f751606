"""GraphQL over HTTP conformance, checked by the reference audit (graphql-http, npm)."""

import asyncio
import json
import os
import shutil
from pathlib import Path

import pytest

AUDIT_DIR = Path(os.environ.get("PULSE_AUDIT_CACHE", Path.home() / ".cache" / "pulse-graphql-http-audit"))
SCRIPT = """
import { auditServer } from 'graphql-http';
const results = await auditServer({ url: process.argv[2] });
console.log(JSON.stringify(results.map(r => ({ id: r.id, name: r.name, status: r.status, reason: r.reason }))));
"""


async def _run(*cmd: str, cwd: Path) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(*cmd, cwd=cwd, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=180)
    return proc.returncode, out.decode()


async def test_graphql_http_audit_has_no_errors_or_warnings(live_server):
    if not (shutil.which("node") and shutil.which("npm")):
        if os.environ.get("CI") == "true":
            pytest.fail("node and npm are needed for the GraphQL-over-HTTP audit")
        pytest.skip("node/npm not installed")
    AUDIT_DIR.mkdir(parents=True, exist_ok=True)
    if not (AUDIT_DIR / "node_modules" / "graphql-http").exists():
        (AUDIT_DIR / "package.json").write_text('{"name": "audit", "private": true, "type": "module"}')
        code, out = await _run("npm", "install", "--no-audit", "--no-fund", "graphql-http@1", "graphql@16", cwd=AUDIT_DIR)
        assert code == 0, out
    (AUDIT_DIR / "audit.mjs").write_text(SCRIPT)
    code, out = await _run("node", "audit.mjs", f"{live_server}/graphql", cwd=AUDIT_DIR)
    assert code == 0, out
    results = json.loads(out.strip().splitlines()[-1])
    assert len(results) > 50
    bad = [r for r in results if r["status"] in ("error", "warn")]
    assert not bad, bad
