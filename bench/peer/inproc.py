"""Pulse's own CPU per request for the peer reads, in process, without a network or a client.

    python -m bench.peer.inproc [--reads a,b,c] [--requests 2000] [--rounds 3] [--cprofile a]
                                [--env PULSE_RESPONSE_CACHE_ENTRIES=10000]

The app (`app.main.create_app`, production settings as `bench.peer` serves it) is called as an
ASGI application with a ready-made scope, one request at a time; the figure is the process CPU
per request (best round), which is what a CPU-bound server's throughput is the inverse of. It
leaves out uvicorn's HTTP parsing and the socket (the same for every server), so it is a tool to
compare two versions of Pulse's code side by side, not the peer ratio (that is `bench.peer`).
Needs the database `bench.peer` built (`PULSE_PEER_DB_PREFIX`, kept between runs).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import sys
import time

import asyncpg
import orjson

from bench import harness as h
from bench.asgi import call_asgi  # noqa: F401 - also used as inproc.call_asgi (bench/peer/http_path.py)
from bench.peer.__main__ import DB_PREFIX, PULSE, pg_dsn, pulse_env


async def _meta(url: str) -> dict:
    conn = await asyncpg.connect(pg_dsn(url))
    try:
        rows = await conn.fetch("SELECT key, value FROM peer_bench_meta")
    finally:
        await conn.close()
    return {r["key"]: orjson.loads(r["value"]) for r in rows}


def _request(read: str, meta: dict) -> tuple[dict, bytes]:
    variables = {"id": h.gid("Campaign", meta["campaign"])} if read != "c" else {}
    body = orjson.dumps({"query": PULSE[read], "variables": variables})
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": "/graphql", "raw_path": b"/graphql", "root_path": "", "query_string": b"",
             "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 50000),
             "headers": [(b"host", b"127.0.0.1:8000"), (b"content-type", b"application/json"),
                         (b"authorization", f"Bearer {meta['token']}".encode()),
                         (b"content-length", str(len(body)).encode())]}
    return scope, body


async def _run(args) -> int:
    from asgi_lifespan import LifespanManager

    name = f"{DB_PREFIX}{args.sends}"
    url = "postgres://" + h.with_database(h.admin_url(), name).split("://", 1)[1]
    meta = await _meta(url)
    os.environ.update(pulse_env(url))
    os.environ.update(dict(kv.split("=", 1) for kv in args.env))
    from app.main import create_app
    from app.settings import get_settings

    if hasattr(get_settings, "cache_clear"):
        get_settings.cache_clear()
    app = create_app()
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30):
        for read in args.reads:
            scope, body = _request(read, meta)
            status, answer = await call_asgi(app, scope, body)
            if status != 200 or b'"errors"' in answer:
                print(f"({read}) HTTP {status}: {answer[:300]!r}", file=sys.stderr)
                return 1
            for _ in range(200):
                await call_asgi(app, scope, body)
            best = None
            for _ in range(args.rounds):
                t0 = time.process_time()
                for _ in range(args.requests):
                    await call_asgi(app, scope, body)
                per = (time.process_time() - t0) / args.requests * 1000
                best = per if best is None else min(best, per)
            print(f"({read}) {best:.3f} ms CPU per request (best of {args.rounds} × {args.requests})", flush=True)
            if read in args.cprofile:
                profile = cProfile.Profile()
                profile.enable()
                for _ in range(args.requests):
                    await call_asgi(app, scope, body)
                profile.disable()
                stats = pstats.Stats(profile)
                stats.sort_stats(args.sort).print_stats(args.lines)
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reads", type=lambda s: s.split(","), default=["a", "b", "c"])
    p.add_argument("--requests", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--sends", type=int, default=140_000)
    p.add_argument("--cprofile", type=lambda s: s.split(","), default=[])
    p.add_argument("--sort", default="tottime")
    p.add_argument("--lines", type=int, default=45)
    p.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                   help="a setting for the app, e.g. PULSE_RESPONSE_CACHE_ENTRIES=10000 (the hit path)")
    return asyncio.run(_run(p.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
