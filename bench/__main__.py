"""`python -m bench [ingest|latency|queries|all]` — see bench/README.md."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone

from bench import harness as h


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description="Campaign Pulse benchmarks (PostgreSQL).")
    p.add_argument("which", nargs="?", default="all", choices=["ingest", "latency", "queries", "all"])
    p.add_argument("--batches", type=int, default=20, help="timed ingest batches per pass (default 20)")
    p.add_argument("--batch-size", type=int, default=1000, help="events per ingest batch (default 1000)")
    p.add_argument("--requests", type=int, default=200, help="timed requests per query and size (default 200)")
    p.add_argument("--small", type=int, default=10_000, help="sends for the small latency run (default 10000)")
    p.add_argument("--big", type=int, default=1_000_000, help="sends for the big latency run (default 1000000)")
    p.add_argument("--scale-batches", type=int, default=6,
                   help="timed ingest batches per organization and phase at 10k/1M sends (default 6; 0 = skip)")
    p.add_argument("--campaigns", type=int, default=60, help="campaigns for the query count (default 60, >= 50)")
    return p


def _revision() -> str:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "app", "graph", "models", "subscriptions"],
                               cwd=root, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown (no git)"
    return f"{rev or 'unknown'}{' + uncommitted changes in app/graph/models/subscriptions' if dirty else ''}"


async def _main(args) -> int:
    started = time.perf_counter()
    print(f"Campaign Pulse bench — {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.node()}, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"admin database: {h.admin_url()} (throwaway database created next to it)")
    print(f"product code: {_revision()}")
    out: dict = {}
    print(f"pub/sub: {os.environ.get('PULSE_BENCH_BROADCAST_URL', 'memory://')}; every benchmark gets its own "
          "fresh database, dropped afterwards")
    if args.which in ("ingest", "all"):
        from bench import ingest
        out["ingest"] = await ingest.run(args.batches, args.batch_size)
        if args.scale_batches:
            out["ingest_scale"] = await ingest.run_scale(args.small, args.big, args.scale_batches, args.batch_size)
    if args.which in ("queries", "all"):
        from bench import queries
        async with h.running_app() as env:
            out["queries"] = await queries.run(env, args.campaigns)
    if args.which in ("latency", "all"):
        from bench import latency
        async with h.running_app() as env:
            out["latency"] = await latency.run(env, args.requests, args.small, args.big)
    failed = []
    print("\n== summary ==")
    if "ingest" in out:
        i = out["ingest"]
        print(f"  ingest: {i['seq']['events_per_s']:.0f} events/s (1 client; batch p50 {h.ms(i['seq']['p50']).strip()}, "
              f"p95 {h.ms(i['seq']['p95']).strip()}); {i['par']['events_per_s']:.0f} events/s with 2 clients "
              f"({i['ratio_2_1']:.2f}x)")
        if i["mismatches"] or i["problems"]:
            failed.append("ingest results/counters")
    if "ingest_scale" in out:
        i = out["ingest_scale"]
        print(f"  ingest batch at {args.big:,} / {args.small:,} sends, side by side: {i['side']:.2f}x "
              f"(target < {ingest.SCALE_TARGET}) {i['verdict']}; before/after {i['before_after']:.2f}x, "
              f"drift {i['drift']:.2f}x")
        if i["verdict"] != "OK":
            failed.append("ingest at scale")
    if "queries" in out:
        q = out["queries"]
        print(f"  queries: campaigns(first: 5) = {q['first5']} SQL statements, first: 50 = {q['first50']} "
              f"-> {'equal' if q['equal'] else 'NOT equal (N+1)'}")
        if not q["equal"]:
            failed.append("query count")
    if "latency" in out:
        for name, r in out["latency"]["results"].items():
            side = (f"; side by side (the target) x{r['side_p50']:.2f} / x{r['side_p95']:.2f}; "
                    f"machine drift x{r['drift_p50']:.2f} / x{r['drift_p95']:.2f}") if "side_p50" in r else ""
            print(f"  latency {name}: before/after p50 x{r['ratio_p50']:.2f}, p95 x{r['ratio_p95']:.2f}{side}"
                  f"{'  ' + r['verdict'] if 'verdict' in r else ''}")
            if r.get("verdict", "").startswith("FAIL"):
                failed.append(f"latency {name}")
    print(f"  total time {time.perf_counter() - started:.0f} s; "
          f"{'targets met' if not failed else 'FAILED: ' + ', '.join(failed)}")
    return 1 if failed else 0


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    args = _parser().parse_args()
    sys.exit(asyncio.run(_main(args)))


if __name__ == "__main__":
    main()
