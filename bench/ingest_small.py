"""Small ingests (issue 15, the mix's write): server CPU and SQL statements per `sendEventsIngest` of
one event (or a few), in process, on a throwaway PostgreSQL database.

    python -m bench.ingest_small [--requests 600] [--events 1] [--campaigns 64] [--log-sql] [--cprofile]
    python -m bench.ingest_small --compare /path/to/old/checkout [--rounds 3]   # side by side

The write is the one `bench.peer --mix` sends: one `SENT` event for a new send, with an idempotency key
of its own, naming a launched campaign and one of its recipients (each request the next of
`--campaigns` campaigns, as the mix's autocannon connections each write their own campaign; every
campaign starts with one send of that lead, as the mix's organization B does). `--events k` posts k
such events per request (k new sends of one campaign, k recipients).

The app (`create_app`, production settings, `memory://` bus, rate limit on but never refusing) is
called as an ASGI application, one request at a time, without a network or an HTTP client; the figure
is the process CPU per request (time.process_time, which includes asyncpg's client side but not
PostgreSQL's), best of `--rounds` rounds. Statements are counted by bench.harness's recorder
(`BEGIN`/`COMMIT` are not statements of the recorder: they are counted apart).

`--compare DIR` runs the same bench on the product code in DIR (another checkout, e.g.
`git worktree add /tmp/pulse-main main`) and on this checkout, alternating fresh processes
(old, new, old, new, …), and prints both side by side with the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import os
import pstats
import subprocess
import sys
import time
from pathlib import Path

import orjson

HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent


def _load_call_asgi():
    """`bench/asgi.py`'s `call_asgi` from this file's own checkout: under --compare the worker's
    PYTHONPATH is another checkout's, whose bench/ may not have it."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_pulse_bench_asgi", HERE.parent / "asgi.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.call_asgi


_call = _load_call_asgi()


def _scope(token: str, body: bytes) -> dict:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
            "scheme": "http", "path": "/graphql", "raw_path": b"/graphql", "root_path": "", "query_string": b"",
            "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 50000),
            "headers": [(b"host", b"127.0.0.1:8000"), (b"content-type", b"application/json"),
                        (b"authorization", f"Bearer {token}".encode()),
                        (b"content-length", str(len(body)).encode())]}


WRITE = "mutation($e:[SendEventInput!]!){ sendEventsIngest(events:$e){ accepted duplicates rejected{ code } } }"


@contextlib.asynccontextmanager
async def _app():
    import httpx
    from asgi_lifespan import LifespanManager

    from app.main import create_app
    from app.settings import Settings
    from bench import harness as h

    url, name = await h.create_database()
    try:
        settings = Settings(env="production", database_url=url, broadcast_url="memory://", auto_migrate=True,
                            rate_limit_points=10**15, log_level="warning")
        app = create_app(settings)
        h.install_recorder()
        async with LifespanManager(app, startup_timeout=120, shutdown_timeout=60):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://pulse.bench", timeout=300) as http:
                yield app, h.Env(http, url, name)
    finally:
        await h.drop_database(name)


async def _worker(args) -> dict:
    from bench import harness as h

    async with _app() as (app, env):
        c = await env.organization("small")
        n_leads = max(5, args.events)
        leads = await h.leads(c, [{"externalId": f"S{i}", "name": f"Lead {i}", "email": f"s{i}@small.bench.test"}
                                  for i in range(n_leads)])
        campaigns = []
        first = []
        for k in range(args.campaigns):
            cid = await h.campaign(c, f"Small {k}", budget="100000")
            await h.launch(c, cid, leads)
            campaigns.append(cid)
            first.append({"idempotencyKey": f"first-{k}", "externalId": f"first-{k}", "channel": "EMAIL",
                          "type": "SENT", "occurredAt": "2026-11-20T09:00:00Z", "campaignId": cid,
                          "leadId": leads[0]})
        r = await h.ingest(c, first)
        assert not r["rejected"], r
        counter = iter(range(10**9))

        def body() -> bytes:
            n = next(counter)
            cid = campaigns[n % len(campaigns)]
            events = [{"idempotencyKey": f"w-{n}-{j}", "externalId": f"w-{n}-{j}", "channel": "EMAIL",
                       "type": "SENT", "occurredAt": "2026-11-20T10:00:00Z", "campaignId": cid,
                       "leadId": leads[j % len(leads)]} for j in range(args.events)]
            return orjson.dumps({"query": WRITE, "variables": {"e": events}})

        async def one() -> None:
            b = body()
            status, answer = await _call(app, _scope(c.token, b), b)
            if status != 200 or orjson.loads(answer)["data"]["sendEventsIngest"]["accepted"] != args.events:
                raise RuntimeError(f"HTTP {status}: {answer[:300]!r}")

        for _ in range(args.warmup):
            await one()
        with h.recording() as stmts:
            await one()
        listing = [(s.method, " ".join(s.sql.split())[:args.width]) for s in stmts]
        best = None
        n_stmts = 0
        for _ in range(args.rounds if not args.compare_worker else 1):
            with h.recording() as st:
                t0 = time.process_time()
                for _ in range(args.requests):
                    await one()
                per = (time.process_time() - t0) / args.requests * 1000
            n_stmts = len(st) / args.requests
            best = per if best is None else min(best, per)
        # The floor: the same request re-posting an event already stored (a duplicate: HTTP, GraphQL,
        # authentication, the key lookup, no write) — what any ingest costs before it writes.
        dup = orjson.dumps({"query": WRITE, "variables": {"e": [dict(first[0])]}})
        floor = None
        for _ in range(args.rounds if not args.compare_worker else 1):
            t0 = time.process_time()
            for _ in range(args.requests):
                status, answer = await _call(app, _scope(c.token, dup), dup)
            per = (time.process_time() - t0) / args.requests * 1000
            floor = per if floor is None else min(floor, per)
        assert orjson.loads(answer)["data"]["sendEventsIngest"]["duplicates"] == 1, answer
        profile_text = ""
        if args.cprofile:
            profile = cProfile.Profile()
            profile.enable()
            for _ in range(args.requests):
                await one()
            profile.disable()
            import io
            buf = io.StringIO()
            pstats.Stats(profile, stream=buf).sort_stats(args.sort).print_stats(args.lines)
            profile_text = buf.getvalue()
        # The answers the API gives for the bench's campaigns (the old and new code must agree).
        d = await c("{ campaigns(first: 3){ edges{ node{ name budget{ spent{ amount } } metrics{ totals{ generated pending "
                    "sent delivered cost{ amount } } } } } } }")
        return {"cpu_ms": best, "floor_ms": floor, "statements": n_stmts, "listing": listing, "profile": profile_text,
                "check": d}


def _print_listing(listing) -> None:
    print(f"  statements of one request ({len(listing)}):")
    for i, (method, text) in enumerate(listing, 1):
        print(f"   {i:>2}. [{method}] {text}")


def _compare(args) -> int:
    old = Path(args.compare).resolve()
    results: dict[str, list[dict]] = {"old": [], "new": []}
    for r in range(args.rounds):
        for label, root in (("old", old), ("new", ROOT)) if r % 2 == 0 else (("new", ROOT), ("old", old)):
            env = dict(os.environ, PYTHONPATH=str(root))
            cmd = [sys.executable, str(HERE), "--compare-worker", "--requests", str(args.requests),
                   "--events", str(args.events), "--campaigns", str(args.campaigns), "--warmup", str(args.warmup)]
            p = subprocess.run(cmd, env=env, cwd=root, capture_output=True, text=True)
            if p.returncode:
                print(p.stdout[-2000:], p.stderr[-4000:])
                return 1
            out = json.loads(p.stdout.strip().splitlines()[-1])
            results[label].append(out)
            print(f"  round {r + 1} {label}: {out['cpu_ms']:.2f} ms CPU, {out['statements']:.1f} statements "
                  f"per request; duplicate {out['floor_ms']:.2f} ms", flush=True)
    o = min(x["cpu_ms"] for x in results["old"])
    n = min(x["cpu_ms"] for x in results["new"])
    so, sn = results["old"][0]["statements"], results["new"][0]["statements"]
    fo = min(x["floor_ms"] for x in results["old"])
    fn = min(x["floor_ms"] for x in results["new"])
    med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    mo, mn = med([x["cpu_ms"] for x in results["old"]]), med([x["cpu_ms"] for x in results["new"]])
    print(f"\n  {args.events}-event sendEventsIngest, {args.requests} requests per round, best of {args.rounds} "
          f"(median in brackets):")
    print(f"  {'code':<6} {'CPU ms/request':>15} {'statements/request':>19} {'duplicate (floor)':>18} "
          f"{'above the floor':>16}")
    print(f"  {'old':<6} {o:>8.2f} ({mo:5.2f}) {so:>19.1f} {fo:>18.2f} {o - fo:>16.2f}   ({old})")
    print(f"  {'new':<6} {n:>8.2f} ({mn:5.2f}) {sn:>19.1f} {fn:>18.2f} {n - fn:>16.2f}   ({ROOT})")
    print(f"  new / old CPU: {n / o:.2f}x (medians {mn / mo:.2f}x); above the floor {(n - fn) / (o - fo):.2f}x")
    same = all(x["check"] == results["old"][0]["check"] for x in results["old"] + results["new"])
    print(f"  campaigns' answers after the run identical on both: {'yes' if same else 'NO'}")
    if args.log_sql:
        print("\n old:")
        _print_listing(results["old"][0]["listing"])
        print("\n new:")
        _print_listing(results["new"][0]["listing"])
    return 0 if same else 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=600)
    p.add_argument("--events", type=int, default=1, help="events per request (default 1)")
    p.add_argument("--campaigns", type=int, default=64)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--log-sql", action="store_true", help="list the statements of one request")
    p.add_argument("--width", type=int, default=220)
    p.add_argument("--cprofile", action="store_true")
    p.add_argument("--sort", default="tottime")
    p.add_argument("--lines", type=int, default=40)
    p.add_argument("--compare", metavar="DIR", help="another checkout to run side by side")
    p.add_argument("--compare-worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.compare:
        return _compare(args)
    import logging
    logging.basicConfig(level=logging.WARNING)
    out = asyncio.run(_worker(args))
    if args.compare_worker:
        print(json.dumps({k: v for k, v in out.items() if k != "profile"}, default=str))
        return 0
    print(f"{args.events}-event sendEventsIngest: {out['cpu_ms']:.2f} ms CPU per request (best of {args.rounds} x "
          f"{args.requests}), {out['statements']:.1f} SQL statements per request; a duplicate (the floor): "
          f"{out['floor_ms']:.2f} ms")
    if args.log_sql:
        _print_listing(out["listing"])
    if out["profile"]:
        print(out["profile"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
