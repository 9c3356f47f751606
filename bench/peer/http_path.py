"""Pulse's CPU per request on the HTTP path around execution, in process.

    PULSE_PEER_DB_PREFIX=pulse_peer_reads_ python -m bench.peer.http_path [--requests 4000] [--rounds 5]

Read (a) of `bench.peer` through the ASGI app (`bench.peer.inproc`'s request and call), with the
schema's `execute` replaced by the answer it gave (checked byte for byte first) after charging the
rate limit as the executor does: what is measured is everything but execution — the middleware,
authentication, the body, the view, the response, the metrics. Best round, ms → µs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time

import orjson

from bench import harness as h
from bench.peer import inproc
from bench.peer.__main__ import DB_PREFIX, pulse_env


async def _run(args) -> int:
    from asgi_lifespan import LifespanManager

    url = "postgres://" + h.with_database(h.admin_url(), f"{DB_PREFIX}{args.sends}").split("://", 1)[1]
    meta = await inproc._meta(url)
    os.environ.update(pulse_env(url))
    from strawberry.types import ExecutionResult

    from app.main import create_app
    from graph.core.limits import charge

    app = create_app()
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30):
        scope, body = inproc._request("a", meta)
        real = await inproc.call_asgi(app, scope, body)
        data = orjson.loads(real[1])["data"]

        async def execute(*_args, **kwargs):
            context = kwargs["context_value"]
            context.query_cost = 1
            await charge(context)  # the rate-limit headers, as the executor adds them
            return ExecutionResult(data=data, errors=None)

        app.state.graphql.schema.execute = execute
        if await inproc.call_asgi(app, scope, body) != real:
            print("the canned answer differs from the executed one", file=sys.stderr)
            return 1
        for _ in range(500):
            await inproc.call_asgi(app, scope, body)
        best = None
        for _ in range(args.rounds):
            t0 = time.process_time()
            for _ in range(args.requests):
                await inproc.call_asgi(app, scope, body)
            per = (time.process_time() - t0) / args.requests * 1e6
            best = per if best is None else min(best, per)
        print(f"(a) {best:.1f} µs CPU per request around execution (best of {args.rounds} × {args.requests})")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=4000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--sends", type=int, default=140_000)
    return asyncio.run(_run(p.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
