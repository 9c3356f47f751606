"""`python -m bench.peer` — Pulse against its peer (PostGraphile 4) and a raw endpoint, see bench/README.md.

One PostgreSQL database with Pulse's schema and ~150 campaigns / ~140k sends (built once through
Pulse's own API + CLI, then reused), served side by side by three single processes:

* Pulse: `python -m app.cli serve` (uvicorn, PULSE_ENV=production, PostgreSQL, log level warning);
* PostGraphile 4 (node, NODE_ENV=production, no GraphiQL, no query log) with `postgraphile.tags.json5`
  and the bench-only computed columns of `peer_schema.sql` (sent/delivered from Pulse's own rollup);
* raw: `bench/peer/raw.py` (Starlette + asyncpg + orjson, Pulse's own SQL) for reads (a) and (b).

Reads: (a) one campaign by id, 7 scalars; (b) 50 sends of a campaign, 6 scalars; (c) 20 campaigns with
sent/delivered counts. Before measuring, the answers of all servers are compared row by row. Then
alternating rounds of autocannon (each round runs every read against every server, in a rotating
order) give req/s, p50/p99 and CPU ms per request of the server process and of PostgreSQL (the CPU of
the database's client backends, from /proc/<pid>/stat).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import asyncpg
import httpx

from bench import harness as h
from bench.realtime import Proc, cpu_seconds, free_port, run_cli, wait_http

HERE = Path(__file__).resolve().parent
NODE_DIR = HERE / "node"
ROOT = HERE.parent.parent
PY = sys.executable
DB_PREFIX = os.environ.get("PULSE_PEER_DB_PREFIX", "pulse_peer_")  # one per concurrent bench run
# Bump when the seeding below changes: a database built by another version is rebuilt.
SEED_VERSION = 1

N_CAMPAIGNS = 150
N_LEADS = 600
AUDIENCE = 100
TEMPLATE_PER_CAMPAIGN = 8

PULSE = {
    "a": "query($id:ID!){ campaign(id:$id){ id name status type reach audienceSize createdAt } }",
    "b": "query($id:ID!){ campaign(id:$id){ sends(first:50){ edges{ node{ id channel status externalId queuedAt "
         "sentAt } } } } }",
    "c": "{ campaigns(first:20){ edges{ node{ id name metrics{ totals{ sent delivered } } } } } }",
}
PEER = {
    "a": "query($id:Int!){ campaignById(id:$id){ id name status type reach audienceSize createdAt } }",
    "b": "query($id:Int!){ campaignById(id:$id){ sendsByCampaignId(first:50, orderBy:ID_DESC){ edges{ node{ id "
         "channel status externalId queuedAt sentAt } } } } }",
    "c": "query($org:Int!){ allCampaigns(first:20, orderBy:ID_DESC, condition:{organizationId:$org}){ edges{ node{ "
         "id name sentCount deliveredCount } } } }",
}
READS = {"a": "(a) one campaign by id, 7 scalars", "b": "(b) 50 sends of a campaign, 6 scalars",
         "c": "(c) 20 campaigns with sent/delivered"}
SERVERS = ("pulse", "postgraphile", "raw")


# ---------------------------------------------------------------- node side


def npm_install() -> None:
    """PostGraphile 4 and autocannon into bench/peer/node (from its package-lock.json), only when missing."""
    want = [NODE_DIR / "node_modules" / "postgraphile" / "package.json",
            NODE_DIR / "node_modules" / "autocannon" / "package.json"]
    if all(p.exists() for p in want):
        return
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm is needed (Node 18+): PostGraphile and autocannon are installed with it")
    print("installing PostGraphile 4 and autocannon into bench/peer/node (npm ci) …", flush=True)
    cmd = [npm, "ci" if (NODE_DIR / "package-lock.json").exists() else "install", "--no-audit", "--no-fund"]
    subprocess.run(cmd, cwd=NODE_DIR, check=True)


def node_bin(package: str, rel: str) -> list[str]:
    return [shutil.which("node") or "node", str(NODE_DIR / "node_modules" / package / rel)]


# ---------------------------------------------------------------- database


def pg_dsn(url: str) -> str:
    return "postgresql://" + url.split("://", 1)[1]


async def _admin():
    return await asyncpg.connect(pg_dsn(h.admin_url()))


def pulse_env(url: str) -> dict:
    env = dict(os.environ)
    env.update({"PULSE_DATABASE_URL": url, "PULSE_ENV": "production", "PULSE_AUTO_MIGRATE": "false",
                "PULSE_BROADCAST_URL": os.environ.get("PULSE_BENCH_BROADCAST_URL", "memory://"),
                "PULSE_LOG_LEVEL": "warning", "PULSE_WORKER_IN_PROCESS": "false", "PYTHONPATH": str(ROOT),
                # The rate limit stays on (each request is still charged: its cost is measured) but
                # never refuses: 100,000 points a minute would end a run of (b) after ~30 s.
                "PULSE_RATE_LIMIT_POINTS": os.environ.get("PULSE_PEER_RATE_LIMIT_POINTS", str(10**15))})
    return env


class CwdProc(Proc):
    """bench.realtime's Proc, started in another directory."""

    def __init__(self, args: list[str], env: dict, log: Path, cwd: Path) -> None:
        self.log_path = log
        self.log = open(log, "wb")
        self.p = subprocess.Popen(args, env=env, cwd=cwd, stdout=self.log, stderr=subprocess.STDOUT)


class Servers:
    """The processes started by the bench (stopped in reverse order)."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.procs: dict[str, Proc] = {}
        self.urls: dict[str, str] = {}

    async def pulse(self, url: str) -> str:
        port = free_port()
        p = Proc([PY, "-m", "app.cli", "serve", "--port", str(port)], pulse_env(url), self.logdir / "pulse.log")
        self.procs["pulse"] = p
        self.urls["pulse"] = f"http://127.0.0.1:{port}/graphql"
        await wait_http(f"http://127.0.0.1:{port}/health", p)
        return self.urls["pulse"]

    async def postgraphile(self, url: str) -> str:
        port = free_port()
        env = dict(os.environ, NODE_ENV="production")
        # cwd = bench/peer: PostGraphile's CLI loads ./postgraphile.tags.json5 from there.
        p = CwdProc(node_bin("postgraphile", "cli.js") + [
            "--connection", pg_dsn(url), "--schema", "public", "--host", "127.0.0.1", "--port", str(port),
            "--disable-query-log"], env, self.logdir / "postgraphile.log", cwd=HERE)
        self.procs["postgraphile"] = p
        self.urls["postgraphile"] = f"http://127.0.0.1:{port}/graphql"
        await _wait_graphql(self.urls["postgraphile"], p)
        return self.urls["postgraphile"]

    async def raw(self, url: str) -> str:
        port = free_port()
        env = dict(os.environ, PULSE_PEER_RAW_DSN=pg_dsn(url), PYTHONPATH=str(ROOT))
        p = Proc([PY, "-m", "uvicorn", "bench.peer.raw:create_app", "--factory", "--host", "127.0.0.1",
                  "--port", str(port), "--log-level", "warning"], env, self.logdir / "raw.log")
        self.procs["raw"] = p
        self.urls["raw"] = f"http://127.0.0.1:{port}"
        await _wait_post(f"{self.urls['raw']}/a", p)
        return self.urls["raw"]

    def stop(self) -> None:
        for p in reversed(list(self.procs.values())):
            p.stop()


async def _wait_graphql(url: str, proc: Proc, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=5) as c:
        while time.monotonic() < deadline:
            if proc.p.poll() is not None:
                raise RuntimeError(f"server exited ({proc.p.returncode}):\n{proc.text()[-3000:]}")
            try:
                r = await c.post(url, json={"query": "{ __typename }"})
                if r.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.3)
    raise RuntimeError(f"{url} not up after {timeout}s:\n{proc.text()[-3000:]}")


async def _wait_post(url: str, proc: Proc, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=5) as c:
        while time.monotonic() < deadline:
            if proc.p.poll() is not None:
                raise RuntimeError(f"server exited ({proc.p.returncode}):\n{proc.text()[-3000:]}")
            try:
                await c.post(url, json={"id": 0})
                return
            except httpx.HTTPError:
                await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} not up after {timeout}s:\n{proc.text()[-3000:]}")


async def database(sends: int, fresh: bool, servers: Servers) -> tuple[str, str, dict]:
    """The bench database for `sends` sends: reused when a finished build of this seed version exists,
    else (re)built: Pulse's migrations, one organization (CLI), zones, centers, leads and launched
    campaigns (API), a template of sends per campaign (sendEventsIngest), the template multiplied to
    `sends` in SQL, counters rebuilt (CLI), VACUUM ANALYZE; then the peer's computed columns."""
    name = f"{DB_PREFIX}{sends}"
    url = h.with_database(h.admin_url(), name)
    url = "postgres://" + url.split("://", 1)[1]
    admin = await _admin()
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists and fresh:
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            exists = False
        if not exists:
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    run_cli(pulse_env(url), "migrate")  # also brings a reused database to the current schema
    conn = await asyncpg.connect(pg_dsn(url))
    try:
        await conn.execute("CREATE TABLE IF NOT EXISTS peer_bench_meta (key text PRIMARY KEY, value jsonb NOT NULL)")
        meta = {r["key"]: json.loads(r["value"]) for r in await conn.fetch("SELECT key, value FROM peer_bench_meta")}
    finally:
        await conn.close()
    if meta.get("done") == SEED_VERSION:
        print(f"database {name}: reused ({meta['facts']['sends']:,} sends; --fresh rebuilds it)", flush=True)
        await servers.pulse(url)
    else:
        if exists:
            print(f"database {name}: unfinished or older build, rebuilding", flush=True)
            admin = await _admin()
            try:
                await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
                await admin.execute(f'CREATE DATABASE "{name}"')
            finally:
                await admin.close()
            run_cli(pulse_env(url), "migrate")
        meta = await _build(url, name, sends, servers)
    await _peer_schema(url)
    return url, name, meta


async def _build(url: str, name: str, sends: int, servers: Servers) -> dict:
    t0 = time.perf_counter()
    print(f"database {name}: building {N_CAMPAIGNS} campaigns and {sends:,} sends …", flush=True)
    out = run_cli(pulse_env(url), "org", "create", "--name", "Peer Bench", "--owner-email", "owner@peer.bench.test")
    token = out.strip().splitlines()[-1].strip()
    await servers.pulse(url)
    async with httpx.AsyncClient(base_url=servers.urls["pulse"].rsplit("/", 1)[0], timeout=300) as http:
        c = h.Client(http, token)
        zones = [await h.zone(c, f"Zone {i}") for i in range(2)]
        centers = [await h.center(c, z, f"Center {i}-{j}") for i, z in enumerate(zones) for j in range(2)]
        lead_ids = await h.leads(c, [{"externalId": f"L{i}", "name": f"Lead {i}", "email": f"l{i}@peer.bench.test",
                                      "phone": f"+3361100{i:04d}", "centerId": centers[i % 4]}
                                     for i in range(N_LEADS)])
        campaigns = []
        for k in range(N_CAMPAIGNS):
            # Owned by the organization, a zone or a center, in turn; the audience lies in the owner's scope.
            if k % 3 == 0:
                owner, pool = None, lead_ids
            elif k % 3 == 1:
                owner, pool = zones[k % 2], [x for i, x in enumerate(lead_ids) if (i % 4) // 2 == k % 2]
            else:
                owner, pool = centers[k % 4], [x for i, x in enumerate(lead_ids) if i % 4 == k % 4]
            cid = await h.campaign(c, f"Campaign {k:03d}", owner=owner, budget="100000")
            audience = [pool[(k * 37 + i) % len(pool)] for i in range(AUDIENCE)]
            await h.launch(c, cid, audience)
            campaigns.append((cid, audience))
        kinds = ("SENT", "DELIVERED", "DELIVERED", "OPENED", "CLICKED", "FAILED", "DELIVERED", "BOUNCED")
        events = []
        start = datetime.now(timezone.utc).replace(microsecond=0)
        for k, (cid, audience) in enumerate(campaigns):
            for j in range(TEMPLATE_PER_CAMPAIGN):
                kind = kinds[(j + k) % len(kinds)]
                e = {"idempotencyKey": f"tpl-{k}-{j}", "externalId": f"tpl-{k}-{j}", "channel": ("EMAIL", "SMS")[j % 2],
                     "type": kind, "occurredAt": (start.replace(hour=j % 24)).isoformat().replace("+00:00", "Z"),
                     "campaignId": cid, "leadId": audience[j % len(audience)]}
                if kind == "BOUNCED":
                    e["reason"] = "mailbox full"
                events.append(e)
        for i in range(0, len(events), 1000):
            r = await h.ingest(c, events[i:i + 1000])
            assert not r["rejected"], r["rejected"][:3]
    conn = await asyncpg.connect(pg_dsn(url))
    try:
        await conn.execute("SET synchronous_commit = off; SET work_mem = '256MB'")
        have = await conn.fetchval("SELECT COUNT(*) FROM send")
        cols = [r["column_name"] for r in await conn.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'send' "
            "ORDER BY ordinal_position")]
        copy = [x for x in cols if x not in ("id", "external_id", "updated_at")]
        await conn.execute(f"CREATE TEMP TABLE tpl AS SELECT row_number() OVER (ORDER BY id) AS rn, "
                           f"{', '.join(copy)} FROM send")
        await conn.execute(
            f"INSERT INTO send ({', '.join(copy)}, external_id, updated_at) "
            f"SELECT {', '.join('t.' + x for x in copy)}, 'bulk-' || g, now() "
            f"FROM generate_series(1, {max(0, sends - have)}) g JOIN tpl t ON t.rn = (g % {int(have)}) + 1")
    finally:
        await conn.close()
    print(run_cli(pulse_env(url), "rebuild-counters").strip(), flush=True)
    conn = await asyncpg.connect(pg_dsn(url))
    try:
        for table in ("send", "send_counter", "campaign", "api_token", "app_user"):
            await conn.execute(f"VACUUM ANALYZE {table}")
        org_id = await conn.fetchval("SELECT organization_id FROM app_user LIMIT 1")
        # (a) and (b) read the campaign with the median number of sends.
        target = await conn.fetchval(
            "SELECT campaign_id FROM (SELECT campaign_id, COUNT(*) n FROM send GROUP BY campaign_id) s "
            "ORDER BY n, campaign_id OFFSET (SELECT COUNT(DISTINCT campaign_id) FROM send) / 2 LIMIT 1")
        facts = {"sends": await conn.fetchval("SELECT COUNT(*) FROM send"),
                 "campaigns": await conn.fetchval("SELECT COUNT(*) FROM campaign"),
                 "target_sends": await conn.fetchval("SELECT COUNT(*) FROM send WHERE campaign_id = $1", target)}
        meta = {"token": token, "org": org_id, "campaign": target, "facts": facts, "built_s": time.perf_counter() - t0,
                "done": SEED_VERSION}
        await conn.execute("CREATE TABLE IF NOT EXISTS peer_bench_meta (key text PRIMARY KEY, value jsonb NOT NULL)")
        for k, v in meta.items():
            await conn.execute("INSERT INTO peer_bench_meta VALUES ($1, $2::jsonb) ON CONFLICT (key) DO UPDATE "
                               "SET value = excluded.value", k, json.dumps(v))
    finally:
        await conn.close()
    print(f"database {name}: built in {meta['built_s']:.0f} s ({facts['sends']:,} sends, "
          f"{facts['campaigns']} campaigns)", flush=True)
    return meta


async def _peer_schema(url: str) -> None:
    conn = await asyncpg.connect(pg_dsn(url))
    try:
        await conn.execute((HERE / "peer_schema.sql").read_text())
    finally:
        await conn.close()


# ---------------------------------------------------------------- the same rows


def _pk(global_id: str) -> int:
    return int(base64.b64decode(global_id).decode().partition(":")[2])


def _ts(v: str | None):
    return None if v is None else datetime.fromisoformat(v.replace("Z", "+00:00"))


def rows_pulse(read: str, data: dict) -> list[tuple]:
    """Pulse's (and raw's) answer as comparable rows."""
    if read == "a":
        c = data["campaign"]
        return [(_pk(c["id"]), c["name"], c["status"].upper(), c["type"].upper(), c["reach"], c["audienceSize"],
                 _ts(c["createdAt"]))]
    if read == "b":
        return [(_pk(n["id"]), n["channel"].upper(), n["status"].upper(), n["externalId"], _ts(n["queuedAt"]),
                 _ts(n["sentAt"])) for n in (e["node"] for e in data["campaign"]["sends"]["edges"])]
    return [(_pk(n["id"]), n["name"], n["metrics"]["totals"]["sent"], n["metrics"]["totals"]["delivered"])
            for n in (e["node"] for e in data["campaigns"]["edges"])]


def rows_peer(read: str, data: dict) -> list[tuple]:
    if read == "a":
        c = data["campaignById"]
        return [(c["id"], c["name"], c["status"].upper(), c["type"].upper(), c["reach"], c["audienceSize"],
                 _ts(c["createdAt"]))]
    if read == "b":
        # send.id is a bigint: PostGraphile's BigInt scalar is a string.
        return [(int(n["id"]), n["channel"].upper(), n["status"].upper(), n["externalId"], _ts(n["queuedAt"]),
                 _ts(n["sentAt"])) for n in (e["node"] for e in data["campaignById"]["sendsByCampaignId"]["edges"])]
    return [(n["id"], n["name"], n["sentCount"], n["deliveredCount"]) for n in (e["node"] for e in
                                                                             data["allCampaigns"]["edges"])]


class Target:
    """One (server, read): URL, headers and body as autocannon sends them."""

    def __init__(self, server: str, read: str, url: str, body: dict, headers: dict) -> None:
        self.server, self.read, self.url, self.body, self.headers = server, read, url, body, headers

    async def fetch(self, http: httpx.AsyncClient) -> dict:
        r = await http.post(self.url, json=self.body, headers=self.headers)
        body = r.json()
        if r.status_code != 200 or body.get("errors"):
            raise RuntimeError(f"{self.server} {self.read}: HTTP {r.status_code} {r.text[:800]}")
        return body["data"]


def targets(servers: Servers, meta: dict) -> dict[tuple[str, str], Target]:
    cid, org = meta["campaign"], meta["org"]
    auth = {"authorization": f"Bearer {meta['token']}", "content-type": "application/json"}
    plain = {"content-type": "application/json"}
    out = {}
    for read in READS:
        out["pulse", read] = Target("pulse", read, servers.urls["pulse"], {"query": PULSE[read], "variables": (
            {"id": h.gid("Campaign", cid)} if read != "c" else {})}, auth)
        out["postgraphile", read] = Target("postgraphile", read, servers.urls["postgraphile"], {
            "query": PEER[read], "variables": {"id": cid} if read != "c" else {"org": org}}, plain)
        if read != "c":
            out["raw", read] = Target("raw", read, f"{servers.urls['raw']}/{read}", {"id": cid}, auth)
    return out


async def check_same_rows(tg: dict[tuple[str, str], Target]) -> None:
    async with httpx.AsyncClient(timeout=60) as http:
        for read, title in READS.items():
            got = {}
            for (server, r), t in tg.items():
                if r == read:
                    data = await t.fetch(http)
                    got[server] = rows_peer(read, data) if server == "postgraphile" else rows_pulse(read, data)
            want = {"a": 1, "b": 50, "c": 20}[read]
            base = got["pulse"]
            bad = [s for s, rows in got.items() if rows != base]
            if len(base) != want or bad:
                for s, rows in got.items():
                    print(f"  {s}: {rows[:3]} … ({len(rows)} rows)")
                raise SystemExit(f"{title}: the servers disagree ({', '.join(bad) or 'row count'}) — see above")
            print(f"  {title}: {len(base)} identical row(s) from {', '.join(got)}", flush=True)


# ---------------------------------------------------------------- measuring


def _backend_cpu(pids: list[int]) -> dict[int, float]:
    out = {}
    for pid in pids:
        try:
            out[pid] = cpu_seconds(pid)
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            pass
    return out


class PgCpu:
    """CPU of the bench database's client backends (all servers' pools; only one server is loaded at a time)."""

    def __init__(self, conn: asyncpg.Connection, name: str) -> None:
        self.conn, self.name = conn, name

    async def snapshot(self) -> dict[int, float]:
        pids = [r["pid"] for r in await self.conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend' "
            "AND pid <> pg_backend_pid()", self.name)]
        return _backend_cpu(pids)

    @staticmethod
    def delta(before: dict[int, float], after: dict[int, float]) -> float:
        return sum(v - before.get(pid, 0.0) for pid, v in after.items())


async def autocannon(t: Target, connections: int, seconds: float) -> dict:
    args = node_bin("autocannon", "autocannon.js") + [
        "-c", str(connections), "-d", str(seconds), "-m", "POST", "-b", json.dumps(t.body), "--json"]
    for k, v in t.headers.items():
        args += ["-H", f"{k}={v}"]
    proc = await asyncio.create_subprocess_exec(*args, t.url, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"autocannon failed ({proc.returncode}): {err.decode()[-2000:]}")
    return json.loads(out)


async def measure(t: Target, pid: int, pg: PgCpu, connections: int, seconds: float) -> dict:
    pg0 = await pg.snapshot()
    cpu0 = cpu_seconds(pid)
    r = await autocannon(t, connections, seconds)
    cpu1 = cpu_seconds(pid)
    pg1 = await pg.snapshot()
    done = r["requests"]["total"]
    if r.get("non2xx") or r.get("errors") or r.get("timeouts"):
        raise RuntimeError(f"{t.server} {t.read}: non2xx={r.get('non2xx')} errors={r.get('errors')} "
                           f"timeouts={r.get('timeouts')}")
    return {"rps": done / r["duration"], "n": done, "p50": r["latency"]["p50"], "p99": r["latency"]["p99"],
            "cpu": cpu1 - cpu0, "pg": PgCpu.delta(pg0, pg1)}


def _py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(PY).with_name("py-spy"))
    if not Path(found).exists():
        raise SystemExit("--profile needs py-spy in the virtualenv: .venv/bin/pip install -e '.[bench]'")
    return found


async def profile(t: Target, pid: int, logdir: Path, connections: int, seconds: float) -> None:
    """py-spy samples the Pulse process while autocannon loads it with one read."""
    from bench.peer.profile import summarize

    out = logdir / f"pulse-{t.read}.pyspy.txt"
    load = asyncio.create_task(autocannon(t, connections, seconds + 4))
    await asyncio.sleep(2)  # past the ramp-up
    spy = await asyncio.create_subprocess_exec(_py_spy(), "record", "--pid", str(pid), "--format", "raw",
                                               "--output", str(out), "--duration", str(int(seconds)), "--rate",
                                               "200", stdout=asyncio.subprocess.DEVNULL,
                                               stderr=asyncio.subprocess.PIPE)
    _, err = await spy.communicate()
    r = await load
    if spy.returncode != 0:
        raise RuntimeError(f"py-spy failed: {err.decode()[-1500:]}")
    if r.get("non2xx") or r.get("errors") or r.get("timeouts"):  # a profile of refusals is no profile
        raise RuntimeError(f"pulse {t.read} while profiled: non2xx={r.get('non2xx')} errors={r.get('errors')} "
                           f"timeouts={r.get('timeouts')}")
    print(f"\nprofile of Pulse under {READS[t.read]} at concurrency {connections} "
          f"({r['requests']['total'] / r['duration']:.0f} req/s while sampled; py-spy at 200 Hz, raw stacks in {out}):")
    print("\n".join("  " + line for line in summarize(out)), flush=True)


def _spread(values: list[float]) -> str:
    return f"{min(values):.2f}–{max(values):.2f}" if len(values) > 1 else f"{values[0]:.2f}"


async def run_rounds(tg: dict, servers: Servers, pg: PgCpu, connections: int, rounds: int, seconds: float,
                     warmup: float) -> dict:
    pids = {s: p.pid for s, p in servers.procs.items()}
    for t in tg.values():
        await autocannon(t, connections, warmup)
    res: dict[tuple[str, str], list[dict]] = {k: [] for k in tg}
    for rnd in range(rounds):
        for read in READS:
            present = [s for s in SERVERS if (s, read) in tg]
            order = present[rnd % len(present):] + present[:rnd % len(present)]
            for s in order:
                m = await measure(tg[s, read], pids[s], pg, connections, seconds)
                res[s, read].append(m)
                print(f"    c={connections} round {rnd + 1}/{rounds} {read} {s:<12} {m['rps']:8.0f} req/s  "
                      f"p50 {m['p50']:6.1f} ms  p99 {m['p99']:6.1f} ms  cpu {1000 * m['cpu'] / m['n']:5.2f} ms/req  "
                      f"pg {1000 * m['pg'] / m['n']:5.2f} ms/req", flush=True)
    return res


def report(res: dict, connections: int) -> list[str]:
    lines = [f"concurrency {connections}:",
             "| read | server | req/s (median of rounds) | p50 ms | p99 ms | CPU ms/req server | CPU ms/req PostgreSQL |",
             "|---|---|---|---|---|---|---|"]
    for read, title in READS.items():
        for s in SERVERS:
            ms = res.get((s, read))
            if not ms:
                continue
            n = sum(m["n"] for m in ms)
            lines.append(f"| {title} | {s} | {statistics.median(m['rps'] for m in ms):,.0f} | "
                         f"{statistics.median(m['p50'] for m in ms):.1f} | {statistics.median(m['p99'] for m in ms):.1f} | "
                         f"{1000 * sum(m['cpu'] for m in ms) / n:.2f} | {1000 * sum(m['pg'] for m in ms) / n:.2f} |")
    lines += ["", "| read | Pulse / PostGraphile (median, spread of rounds) | Pulse / raw (median, spread) |",
              "|---|---|---|"]
    for read, title in READS.items():
        cells = []
        for other in ("postgraphile", "raw"):
            if (other, read) not in res:
                cells.append("—")
                continue
            ratios = [p["rps"] / o["rps"] for p, o in zip(res["pulse", read], res[other, read])]
            cells.append(f"{statistics.median(ratios):.2f} ({_spread(ratios)})")
        lines.append(f"| {title} | {cells[0]} | {cells[1]} |")
    return lines


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.peer", description=__doc__.splitlines()[0])
    p.add_argument("--sends", type=int, default=140_000, help="sends in the bench database (default 140000)")
    p.add_argument("--concurrency", type=int, nargs="+", default=[16],
                   help="autocannon connections, one pass each (default 16; e.g. --concurrency 16 64)")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    p.add_argument("--duration", type=float, default=8, help="seconds per autocannon run (default 8)")
    p.add_argument("--warmup", type=float, default=2, help="warm-up seconds per server and read (default 2)")
    p.add_argument("--quick", action="store_true", help="1-minute smoke: 2 rounds of 2 s, 1 s warm-up")
    p.add_argument("--fresh", action="store_true", help="rebuild the bench database even if one exists")
    p.add_argument("--profile", metavar="READS", default=None,
                   help="instead of measuring: sample Pulse with py-spy under each read's load, e.g. --profile a,b")
    p.add_argument("--profile-seconds", type=float, default=15, help="py-spy sampling time per read (default 15)")
    p.add_argument("--mix", action="store_true",
                   help="instead of (a)-(c): the read-mostly mix (95 %% reads of 20 operations, 5 %% ingest writes) "
                        "against PostGraphile and Pulse without and with the response cache (bench/peer/mix.py)")
    p.add_argument("--mix-writes", choices=("other", "same", "both"), default="other",
                   help="--mix: writes into another organization (default), into the read one, or both runs")
    p.add_argument("--serve", action="store_true",
                   help="start the servers, check the rows, print the URLs and wait (for profiling) instead of "
                        "measuring")
    return p


async def _main(args) -> int:
    started = time.perf_counter()
    if args.quick:
        args.rounds, args.duration, args.warmup = 2, 2, 1
    print(f"Campaign Pulse vs PostGraphile 4 — {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.node()}, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}, node {_node_version()}", flush=True)
    npm_install()
    logdir = Path(tempfile.mkdtemp(prefix="pulse-peer-"))
    servers = Servers(logdir)
    try:
        url, name, meta = await database(args.sends, args.fresh, servers)
        await servers.postgraphile(url)
        await servers.raw(url)
        print(f"servers (one process each, logs in {logdir}): " + ", ".join(
            f"{s} pid {p.pid} {servers.urls[s]}" for s, p in servers.procs.items()), flush=True)
        tg = targets(servers, meta)
        print(f"same rows (campaign {meta['campaign']}, {meta['facts']['target_sends']:,} sends; "
              f"organization {meta['org']}):", flush=True)
        await check_same_rows(tg)
        if args.serve:
            print("token:", meta["token"])
            for k, t in tg.items():
                print(k, t.url, json.dumps(t.body))
            print("serving until Ctrl-C or SIGTERM", flush=True)
            stop = asyncio.Event()
            for sig in (signal.SIGINT, signal.SIGTERM):
                asyncio.get_running_loop().add_signal_handler(sig, stop.set)
            await stop.wait()
            return 0
        if args.mix:
            from bench.peer import mix

            out = await mix.run(args, servers, url, name, meta)
            print()
            print(f"database {name}: {meta['facts']['sends']:,} sends, {meta['facts']['campaigns']} campaigns; "
                  f"autocannon {args.rounds} rounds × {args.duration:g} s, one process per server")
            print("\n".join(out))
            print(f"total {time.perf_counter() - started:.0f} s")
            return 0
        if args.profile:
            for read in args.profile.split(","):
                await profile(tg["pulse", read], servers.procs["pulse"].pid, logdir, args.concurrency[0],
                              args.profile_seconds)
            return 0
        conn = await asyncpg.connect(pg_dsn(url))
        out: list[str] = []
        try:
            pg = PgCpu(conn, name)
            for c in args.concurrency:
                print(f"  concurrency {c}: {args.rounds} rounds × {args.duration:g} s per server and read", flush=True)
                res = await run_rounds(tg, servers, pg, c, args.rounds, args.duration, args.warmup)
                out += report(res, c) + [""]
        finally:
            await conn.close()
        print()
        print(f"database {name}: {meta['facts']['sends']:,} sends, {meta['facts']['campaigns']} campaigns; "
              f"autocannon {args.rounds} rounds × {args.duration:g} s, one process per server")
        print("\n".join(out))
        print(f"total {time.perf_counter() - started:.0f} s")
        return 0
    finally:
        servers.stop()


def _node_version() -> str:
    try:
        return subprocess.run(["node", "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
    except OSError:
        return "missing"


def main(argv=None) -> int:
    return asyncio.run(_main(_parser().parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
