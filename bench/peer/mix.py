"""`python -m bench.peer --mix` — a read-mostly mix against PostGraphile and Pulse without and with the
response cache (issue 15: 95 % reads of 20 distinct operations, 5 % ingest writes).

Reads (the same 20 operations on every server, equal weights): (a) one campaign by id for 8 campaigns,
(b) 50 sends of a campaign for 6 campaigns, (c) the first n campaigns with sent/delivered for 6 page
sizes. All read organization A (the bench organization) with its owner's token.

Writes (5 %, spread over 5 (campaign, lead) pairs):
* Pulse: `sendEventsIngest` of one SENT event with an idempotency key of its own (a new send, its
  counters, spend and rollups, the bus message);
* PostGraphile: `updateSendById` setting a send's `externalId` (one UPDATE, nothing derived: a lighter
  write than Pulse's).
`--mix-writes other` (default) writes into organization B (another tenant of the same database: A's
cached answers stay valid); `same` writes into A (every write moves A's data version: the cache is
invalidated every ~20 requests); `both` runs both.

Servers, one process each: PostGraphile; Pulse with the cache off ("pulse"); Pulse with
PULSE_RESPONSE_CACHE_ENTRIES=10000 ("pulse-cache"). Both Pulse processes share the bus given by
PULSE_BENCH_BROADCAST_URL (memory:// by default; redis://… also shares data versions and rate limits
between them, as in production) and a rate limit high enough never to refuse (it is still charged).
Also measured: "pulse-cache reads only", the same 20 reads without writes (after the warm-up nearly all
hits: the hit path's own figure). The hit ratio is read from the cache server's /metrics.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import statistics
import tempfile
import time
from pathlib import Path

import asyncpg
import httpx

from bench import harness as h
from bench.realtime import Proc, cpu_seconds, free_port, run_cli, wait_http

METRICS_TOKEN = "peer-bench-metrics"
PULSE_C = "query($n:Int){ campaigns(first:$n){ edges{ node{ id name metrics{ totals{ sent delivered } } } } } }"
PEER_C = ("query($org:Int!,$n:Int){ allCampaigns(first:$n, orderBy:ID_DESC, condition:{organizationId:$org}){ "
          "edges{ node{ id name sentCount deliveredCount } } } }")
PULSE_W = ("mutation($e:[SendEventInput!]!){ sendEventsIngest(events:$e){ accepted duplicates rejected{ code } } }")
PEER_W = ("mutation($id:BigInt!,$x:String!){ updateSendById(input:{id:$id, sendPatch:{externalId:$x}}){ "
          "clientMutationId } }")
MIX_SERVERS = ("postgraphile", "pulse", "pulse-cache")


N_WRITE_CAMPAIGNS = 64  # one per autocannon connection (up to 64): no two writes of one campaign at once


async def _org_b(url: str, pulse_url: str, meta: dict, pg_dsn) -> dict:
    """Organization B (the other tenant that writes, 64 launched campaigns): built once, kept in peer_bench_meta."""
    if "org_b64" in meta:
        return meta["org_b64"]
    from bench.peer.__main__ import pulse_env

    print(f"organization B: building {N_WRITE_CAMPAIGNS} campaigns …", flush=True)
    out = run_cli(pulse_env(url), "org", "create", "--name", "Peer Bench B64", "--owner-email",
                  "owner@b64.peer.bench.test")
    token = out.strip().splitlines()[-1].strip()
    async with httpx.AsyncClient(base_url=pulse_url.rsplit("/", 1)[0], timeout=120) as http:
        c = h.Client(http, token)
        leads = await h.leads(c, [{"externalId": f"B{i}", "name": f"B lead {i}", "email": f"b{i}@b.peer.bench.test"}
                                  for i in range(20)])
        events = []
        for k in range(N_WRITE_CAMPAIGNS):
            cid = await h.campaign(c, f"B campaign {k}", budget="100000")
            await h.launch(c, cid, leads[:5])
            events.append({"idempotencyKey": f"b-{k}", "externalId": f"b-{k}", "channel": "EMAIL", "type": "SENT",
                           "occurredAt": "2026-11-20T09:00:00Z", "campaignId": cid, "leadId": leads[0]})
        r = await h.ingest(c, events)
        assert not r["rejected"], r["rejected"][:3]
    conn = await asyncpg.connect(pg_dsn(url))
    try:
        org = await conn.fetchval("SELECT organization_id FROM app_user WHERE email = 'owner@b64.peer.bench.test'")
        meta["org_b64"] = {"token": token, "org": org}
        await conn.execute("INSERT INTO peer_bench_meta VALUES ('org_b64', $1::jsonb) ON CONFLICT (key) DO UPDATE "
                           "SET value = excluded.value", json.dumps(meta["org_b64"]))
    finally:
        await conn.close()
    return meta["org_b64"]


async def _pairs(url: str, org: int, pg_dsn, avoid: list[int]) -> list[tuple[int, int, int]]:
    """(campaign, lead, send) of the organization, one per campaign outside the campaigns the reads name."""
    conn = await asyncpg.connect(pg_dsn(url))
    try:
        rows = await conn.fetch(
            "SELECT DISTINCT ON (s.campaign_id) s.campaign_id, s.lead_id, s.id FROM send s JOIN campaign c ON "
            "c.id = s.campaign_id WHERE c.organization_id = $1 AND NOT (s.campaign_id = ANY($2::int[])) "
            "ORDER BY s.campaign_id, s.id LIMIT $3", org, avoid, N_WRITE_CAMPAIGNS)
    finally:
        await conn.close()
    return [(r["campaign_id"], r["lead_id"], r["id"]) for r in rows]


def _ops(server: str, meta: dict, reads: list[int], writer: dict, pairs, with_writes: bool) -> list[dict]:
    from bench.peer.__main__ import PEER, PULSE

    org = meta["org"]
    pulse = server.startswith("pulse")
    auth = {"authorization": f"Bearer {meta['token']}", "content-type": "application/json"}
    plain = {"content-type": "application/json"}
    ops = []
    for k, cid in enumerate(reads[:14]):
        read = "a" if k < 8 else "b"
        body = {"query": PULSE[read], "variables": {"id": h.gid("Campaign", cid)}} if pulse else \
            {"query": PEER[read], "variables": {"id": cid}}
        ops.append({"kind": "read", "weight": 95 / 20, "headers": auth if pulse else plain, "body": body})
    for n in (5, 10, 15, 20, 25, 30):
        body = {"query": PULSE_C, "variables": {"n": n}} if pulse else \
            {"query": PEER_C, "variables": {"org": org, "n": n}}
        ops.append({"kind": "read", "weight": 95 / 20, "headers": auth if pulse else plain, "body": body})
    if with_writes:
        # One write operation; each autocannon connection writes its own campaign (mix.js, `bodies`):
        # concurrent ingests of one campaign stall for seconds on this version (see bench/README.md).
        wauth = {"authorization": f"Bearer {writer['token']}", "content-type": "application/json"}
        bodies = [{"query": PULSE_W, "variables": {"e": [{
            "idempotencyKey": "mix-__N__", "externalId": "mix-__N__", "channel": "EMAIL", "type": "SENT",
            "occurredAt": "__T__", "campaignId": h.gid("Campaign", cid), "leadId": h.gid("Lead", lead)}]}}
            if pulse else {"query": PEER_W, "variables": {"id": str(send), "x": "mix-__N__"}} for cid, lead, send in pairs]
        ops.append({"kind": "write", "weight": 5, "headers": wauth if pulse else plain, "body": bodies[0],
                    "bodies": bodies})
    return ops


async def _check(url: str, ops: list[dict]) -> None:
    """Every operation answers without errors (a write once, with a key of its own)."""
    async with httpx.AsyncClient(timeout=60) as http:
        for op in ops:
            for body in op.get("bodies", [op["body"]])[:3]:
                await _check_one(http, url, op, body)


async def _check_one(http, url: str, op: dict, body: dict) -> None:
    text = json.dumps(body).replace("__N__", f"check-{time.time_ns()}").replace(
        "__T__", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    r = await http.post(url, content=text, headers=op["headers"])
    answer = r.json()
    if r.status_code != 200 or answer.get("errors") or (
            (answer.get("data") or {}).get("sendEventsIngest") or {}).get("rejected"):
        raise SystemExit(f"mix operation refused by {url}: HTTP {r.status_code} {r.text[:600]}")


async def _autocannon(spec: dict, logdir: Path) -> dict:
    from bench.peer.__main__ import node_bin

    path = Path(tempfile.mkstemp(suffix=".json", dir=logdir)[1])
    path.write_text(json.dumps(spec))
    node = node_bin("autocannon", "autocannon.js")[0]
    proc = await asyncio.create_subprocess_exec(node, str(Path(__file__).resolve().parent / "node" / "mix.js"), str(path),
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"mix.js failed ({proc.returncode}): {err.decode()[-2000:]}")
    return json.loads(out)


async def _cache_counts(base: str) -> dict[str, float]:
    async with httpx.AsyncClient(timeout=10) as http:
        r = await http.get(f"{base}/metrics", headers={"authorization": f"Bearer {METRICS_TOKEN}"})
    counts = {}
    for m in re.finditer(r'^pulse_response_cache_total\{result="(\w+)"\} ([0-9.e+]+)$', r.text, re.M):
        counts[m.group(1)] = float(m.group(2))
    return counts


async def _measure(name: str, url: str, pid: int, ops: list[dict], connections: int, seconds: float, logdir: Path,
                   seed: int, pg) -> dict:
    base = url.rsplit("/", 1)[0]
    cache0 = await _cache_counts(base) if name.startswith("pulse-cache") else {}
    pg0 = await pg.snapshot()
    cpu0 = cpu_seconds(pid)
    out = await _autocannon({"url": url, "connections": connections, "duration": seconds, "seed": seed, "ops": ops,
                             "run": f"{name.replace(' ', '')}-{time.time_ns()}"}, logdir)
    cpu1 = cpu_seconds(pid)
    pg1 = await pg.snapshot()
    r = out["result"]
    if r.get("non2xx") or r.get("errors") or r.get("timeouts"):
        raise RuntimeError(f"{name}: non2xx={r.get('non2xx')} errors={r.get('errors')} timeouts={r.get('timeouts')}")
    done = r["requests"]["total"]
    m = {"rps": done / r["duration"], "n": done, "p50": r["latency"]["p50"], "p99": r["latency"]["p99"],
         "cpu": cpu1 - cpu0, "pg": pg.delta(pg0, pg1), "writes": out["issued"]["write"],
         "issued": out["issued"]["read"] + out["issued"]["write"]}
    if cache0:
        cache1 = await _cache_counts(base)
        hits = cache1.get("hit", 0) - cache0.get("hit", 0)
        misses = cache1.get("miss", 0) - cache0.get("miss", 0)
        m["hit_ratio"] = hits / max(1.0, hits + misses)
    if not done:
        raise RuntimeError(f"{name}: no request answered in {seconds} s")
    return m


async def run(args, servers, url: str, name: str, meta: dict) -> list[str]:
    from bench.peer.__main__ import PgCpu, pg_dsn, pulse_env

    logdir = servers.logdir
    writer_b = await _org_b(url, servers.urls["pulse"], meta, pg_dsn)
    conn = await asyncpg.connect(pg_dsn(url))
    try:
        reads = [meta["campaign"]] + [r["id"] for r in await conn.fetch(
            "SELECT id FROM campaign WHERE organization_id = $1 AND id <> $2 ORDER BY id LIMIT 13",
            meta["org"], meta["campaign"])]
    finally:
        await conn.close()
    # The Pulse processes of the mix (the one serving the build is stopped: other settings).
    servers.procs.pop("pulse").stop()
    prefix = f"peermix-{os.getpid()}:"
    for server, extra in (("pulse", {}), ("pulse-cache", {"PULSE_RESPONSE_CACHE_ENTRIES": "10000"})):
        port = free_port()
        env = pulse_env(url) | {"PULSE_CHANNEL_PREFIX": prefix, "PULSE_RATE_LIMIT_POINTS": "1000000000",
                                "PULSE_METRICS_TOKEN": METRICS_TOKEN} | extra
        p = Proc([os.sys.executable, "-m", "app.cli", "serve", "--port", str(port)], env, logdir / f"{server}.log")
        servers.procs[server] = p
        servers.urls[server] = f"http://127.0.0.1:{port}/graphql"
        await wait_http(f"http://127.0.0.1:{port}/health", p)
    bus = pulse_env(url)["PULSE_BROADCAST_URL"]
    modes = ("other", "same") if args.mix_writes == "both" else (args.mix_writes,)
    lines = []
    pg_conn = await asyncpg.connect(pg_dsn(url))
    try:
        pg = PgCpu(pg_conn, name)
        for mode in modes:
            writer = writer_b if mode == "other" else {"token": meta["token"], "org": meta["org"]}
            pairs = await _pairs(url, writer["org"], pg_dsn, reads)
            ops = {s: _ops(s, meta, reads, writer, pairs, True) for s in MIX_SERVERS}
            ops["pulse-cache reads only"] = _ops("pulse-cache", meta, reads, writer, pairs, False)
            target = {"postgraphile": "postgraphile", "pulse": "pulse", "pulse-cache": "pulse-cache",
                      "pulse-cache reads only": "pulse-cache"}
            for s, o in ops.items():
                await _check(servers.urls[target[s]], o)
            for c in args.concurrency:
                if c > len(pairs):
                    raise SystemExit(f"--mix needs a write campaign per connection: {len(pairs)} < {c}")
                print(f"  mix (writes into {'organization B' if mode == 'other' else 'the read organization A'}), "
                      f"concurrency {c}: {args.rounds} rounds × {args.duration:g} s per server; bus {bus}", flush=True)
                for s, o in ops.items():
                    await _measure(s, servers.urls[target[s]], servers.procs[target[s]].pid, o, c, args.warmup,
                                   logdir, 7, pg)
                res: dict[str, list[dict]] = {s: [] for s in ops}
                names = list(ops)
                for rnd in range(args.rounds):
                    order = names[rnd % len(names):] + names[:rnd % len(names)]
                    for s in order:
                        m = await _measure(s, servers.urls[target[s]], servers.procs[target[s]].pid, ops[s], c,
                                           args.duration, logdir, 1000 + rnd, pg)
                        res[s].append(m)
                        hit = f"  hit ratio {m['hit_ratio']:.3f}" if "hit_ratio" in m else ""
                        print(f"    c={c} round {rnd + 1}/{args.rounds} {s:<22} {m['rps']:8.0f} req/s  "
                              f"p50 {m['p50']:6.1f} ms  p99 {m['p99']:6.1f} ms  cpu {1000 * m['cpu'] / m['n']:5.2f} "
                              f"ms/req  pg {1000 * m['pg'] / m['n']:5.2f} ms/req  writes {m['writes']}{hit}",
                              flush=True)
                lines += _report(res, c, mode, bus)
    finally:
        await pg_conn.close()
    return lines


def _report(res: dict, c: int, mode: str, bus: str) -> list[str]:
    where = "organization B (another tenant)" if mode == "other" else "the read organization A"
    lines = [f"read-mostly mix, concurrency {c}, writes into {where}, Pulse bus {bus}:",
             "| server | req/s (median) | p50 ms | p99 ms | CPU ms/req server | CPU ms/req PostgreSQL | "
             "writes / requests | cache hit ratio | / PostGraphile (median, spread) |", "|---|---|---|---|---|---|---|---|---|"]
    base = res["postgraphile"]
    for s, ms in res.items():
        n = sum(m["n"] for m in ms)
        ratios = [m["rps"] / b["rps"] for m, b in zip(ms, base)]
        spread = f"{min(ratios):.2f}–{max(ratios):.2f}" if len(ratios) > 1 else f"{ratios[0]:.2f}"
        hit = f"{statistics.median(m['hit_ratio'] for m in ms):.3f}" if "hit_ratio" in ms[0] else "—"
        writes = sum(m["writes"] for m in ms) / max(1, sum(m["issued"] for m in ms))
        lines.append(f"| {s} | {statistics.median(m['rps'] for m in ms):,.0f} | "
                     f"{statistics.median(m['p50'] for m in ms):.1f} | {statistics.median(m['p99'] for m in ms):.1f} | "
                     f"{1000 * sum(m['cpu'] for m in ms) / n:.2f} | {1000 * sum(m['pg'] for m in ms) / n:.2f} | "
                     f"{writes:.3f} | {hit} | {statistics.median(ratios):.2f} ({spread}) |")
    return lines + [""]
