"""Benchmark 1 — `sendEventsIngest` throughput on PostgreSQL.

Batches of 1,000 events (see bench/events.py for the mix) are posted over
GraphQL to the in-process app. Reported: events/s over the timed batches and
p50/p95 of one batch's round trip, first with one client (batches one after
the other), then with two clients posting at the same time (separate sends,
shared campaigns and counter rows), measured side by side in the same run.

Then (`scale`, issue 15 item 4) the batch time at 1M sends against 10k, side by side in one run:
two organizations A and B set up alike, each brought to 10k sends (copies of its own ingested sends
and their events, under new external ids), timed batches alternating A, B; then B alone is brought
to 1M sends the same way (VACUUM ANALYZE after, as autovacuum would) and the alternating batches run
again. Printed: B at 1M / A at 10k in the same phase (the target, < 1.5), B before/after and A's
drift (the machine), and the SQL statements whose time per batch grew.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

from bench import harness as h
from bench.events import EventStream

WARMUP = 3


async def _run_stream(c: h.Client, stream: EventStream, batches: int, times: list[float], problems: list[str]) -> int:
    sent = 0
    for _ in range(batches):
        batch = stream.next_batch()
        t0 = time.perf_counter()
        r = await h.ingest(c, batch.events)
        times.append(time.perf_counter() - t0)
        sent += len(batch.events)
        expected_accepted = len(batch.events) - batch.expected_duplicates
        if r["rejected"] or r["accepted"] != expected_accepted or r["duplicates"] != batch.expected_duplicates:
            problems.append(f"{stream.tag} batch {stream.n}: accepted {r['accepted']} (want {expected_accepted}), "
                            f"duplicates {r['duplicates']} (want {batch.expected_duplicates}), "
                            f"rejected {len(r['rejected'])} {r['rejected'][:2]}")
    return sent


async def _setup(env: h.Env, label: str):
    """One organization, 2 campaigns (EMAIL+SMS, budget), 1,000 leads in 2 centers."""
    c = await env.organization(label)
    z = await h.zone(c, "North")
    centers = [await h.center(c, z, f"North-{i}") for i in range(2)]
    lead_ids = await h.leads(c, [{"externalId": f"L{i}", "name": f"Lead {i}", "email": f"l{i}@bench.test",
                                  "phone": f"+3360000{i:04d}", "centerId": centers[i % 2]} for i in range(1000)])
    campaigns = [await h.campaign(c, f"Ingest {k}", budget="1000000") for k in range(2)]
    for cid in campaigns:
        await h.launch(c, cid, lead_ids)
    return c, campaigns, [(campaigns[i % 2], lead) for i, lead in enumerate(lead_ids)]


async def _pass(label: str, clients: int, batches: int, size: int) -> dict:
    """A fresh database per pass, so both passes start from the same data size."""
    async with h.running_app() as env:
        out = await _pass_in(env, label, clients, batches, size)
        out["mismatches"], out["sends"], out["send_events"] = await _consistency(env, out["client"], out["campaigns"])
        out["database"] = env.database_name
    return out


async def _pass_in(env: h.Env, label: str, clients: int, batches: int, size: int) -> dict:
    c, campaigns, targets = await _setup(env, label)
    streams = [EventStream(f"{label}{k}", targets, size=size, seed=11 + k) for k in range(clients)]
    problems: list[str] = []
    # Warm-up: fills each stream's history so timed batches have the full mix.
    await asyncio.gather(*(_run_stream(c, s, WARMUP, [], problems) for s in streams))
    times: list[float] = []
    per_client = [batches // clients + (1 if k < batches % clients else 0) for k in range(clients)]
    with h.recording() as stmts:
        t0 = time.perf_counter()
        counts = await asyncio.gather(*(_run_stream(c, s, n, times, problems) for s, n in zip(streams, per_client)))
        wall = time.perf_counter() - t0
    events = sum(counts)
    k = max(1, len(times) // 4)
    return {"clients": clients, "batches": sum(per_client), "events": events, "wall": wall,
            "events_per_s": events / wall, **h.summary(times), "problems": problems, "client": c,
            "campaigns": campaigns, "statements": len(stmts) / max(1, len(times)),
            "methods": Counter(s.method for s in stmts), "first_quarter": sum(times[:k]) / k,
            "last_quarter": sum(times[-k:]) / k}


async def _consistency(env: h.Env, c: h.Client, campaigns: list[str]) -> tuple[list[str], int, int]:
    """Live counters (API) against the sends themselves (SQL)."""
    d = await c("{ campaigns(first: 10){ edges{ node{ id metrics{ totals{ "
                "generated sent delivered read clicked } } } } } }")
    api = {e["node"]["id"]: e["node"]["metrics"]["totals"] for e in d["campaigns"]["edges"]}
    ids = [h.pk(x) for x in campaigns]
    pg = await env.pg()
    try:
        rows = await pg.fetch(
            "SELECT campaign_id, COUNT(*) AS generated, "
            "COUNT(*) FILTER (WHERE status IN ('SENT','DELIVERED','BOUNCED')) AS sent, "
            "COUNT(*) FILTER (WHERE status = 'DELIVERED') AS delivered, COUNT(read_at) AS read, "
            "COUNT(clicked_at) AS clicked FROM send WHERE campaign_id = ANY($1::int[]) GROUP BY campaign_id", ids)
        n_events = await pg.fetchval("SELECT COUNT(*) FROM send_event WHERE send_id IN "
                                     "(SELECT id FROM send WHERE campaign_id = ANY($1::int[]))", ids)
    finally:
        await pg.close()
    mismatches = []
    for r in rows:
        a = api[h.gid("Campaign", r["campaign_id"])]
        for f in ("generated", "sent", "delivered", "read", "clicked"):
            if a[f] != r[f]:
                mismatches.append(f"campaign {r['campaign_id']} {f}: counters {a[f]} vs sends {r[f]}")
    return mismatches, sum(r["generated"] for r in rows), n_events


SCALE_TARGET = 1.5


async def _org_sends(env: h.Env, c: h.Client, campaigns: list[str]) -> tuple[int, int]:
    pg = await env.pg()
    try:
        org = await pg.fetchval("SELECT organization_id FROM campaign WHERE id = $1", h.pk(campaigns[0]))
        return org, await pg.fetchval("SELECT COUNT(*) FROM send WHERE organization_id = $1", org)
    finally:
        await pg.close()


async def _timed_batches(streams: dict, batches: int) -> tuple[dict, dict]:
    """`batches` batches per organization, alternating; times and SQL statements per organization."""
    times: dict = {k: [] for k in streams}
    stmts: dict = {k: [] for k in streams}
    for i in range(batches):
        for k in (list(streams) if i % 2 == 0 else list(reversed(streams))):
            c, stream = streams[k]
            batch = stream.next_batch()
            with h.recording() as st:
                t0 = time.perf_counter()
                r = await h.ingest(c, batch.events)
                times[k].append(time.perf_counter() - t0)
            stmts[k].extend(st)
            if r["rejected"] or r["duplicates"] != batch.expected_duplicates:
                raise RuntimeError(f"scale pass, {k}: unexpected result {r['accepted']} accepted, "
                                   f"{r['duplicates']} duplicates, {r['rejected'][:2]}")
    return times, stmts


async def run_scale(small: int = 10_000, big: int = 1_000_000, batches: int = 6, size: int = 1000) -> dict:
    """Ingest batch time with 1M sends in the organization against 10k, side by side (see the module doc)."""
    from bench import latency

    print(f"\n== ingest at scale: {size}-event batches, organization B at {small:,} then {big:,} sends, "
          f"A at {small:,} (side by side, alternating) ==")
    async with h.running_app() as env:
        orgs = {}
        for k in ("A", "B"):
            c, campaigns, targets = await _setup(env, f"scale{k}")
            stream = EventStream(f"scale{k}", targets, size=size, seed=31)
            for _ in range(WARMUP):
                await h.ingest(c, stream.next_batch().events)
            org_id, _ = await _org_sends(env, c, campaigns)
            orgs[k] = (c, stream, campaigns, org_id)
        t0 = time.perf_counter()
        for k, (c, stream, campaigns, org_id) in orgs.items():
            await latency._bulk_load(env, org_id, [h.pk(x) for x in campaigns], small, pattern=f"scale{k}-b%",
                                     prefix="small")
        small_load = time.perf_counter() - t0
        streams = {k: (v[0], v[1]) for k, v in orgs.items()}
        await _timed_batches(streams, 1)  # warm-up after the load
        t1, s1 = await _timed_batches(streams, batches)
        sizes1 = {k: (await _org_sends(env, v[0], v[2]))[1] for k, v in orgs.items()}
        c, stream, campaigns, org_id = orgs["B"]
        t0 = time.perf_counter()
        load = await latency._bulk_load(env, org_id, [h.pk(x) for x in campaigns], big, pattern="scaleB-b%",
                                        prefix="big")
        big_load = time.perf_counter() - t0
        await _timed_batches(streams, 1)  # warm-up after the load
        t2, s2 = await _timed_batches(streams, batches)
        sizes2 = {k: (await _org_sends(env, v[0], v[2]))[1] for k, v in orgs.items()}
        mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
        side = mean(t2["B"]) / mean(t2["A"])
        before_after = mean(t2["B"]) / mean(t1["B"])
        drift = mean(t2["A"]) / mean(t1["A"])
        floor = mean(t1["B"]) / mean(t1["A"])
        grown = await latency._grown(env, h.per_shape(s1["B"], len(t1["B"])), h.per_shape(s2["B"], len(t2["B"])),
                                     "ingest batch", True, 0.02)
        print(f"  database {env.database_name} (dropped); bulk loads {small_load:.0f} s (both to {small:,}), "
              f"{big_load:.0f} s (B to {big:,}: {load.get('inserted', 0):,} sends and their events, counters "
              f"rebuilt, VACUUM ANALYZE)")
        print(f"  {'phase':<8} {'org':>3} {'sends':>10} {'batches':>7} {'mean batch':>12} {'p50':>12} {'max':>12}")
        for phase, tt, sz in (("1", t1, sizes1), ("2", t2, sizes2)):
            for k in ("A", "B"):
                print(f"  {phase:<8} {k:>3} {sz[k]:>10,} {len(tt[k]):>7} {h.ms(mean(tt[k])):>12} "
                      f"{h.ms(h.pct(tt[k], 50)):>12} {h.ms(max(tt[k])):>12}")
        verdict = "OK" if side < SCALE_TARGET else "FAIL"
        print(f"  batch time at {big // 1000:,}k / {small // 1000:,}k, side by side (B/A in phase 2): {side:.2f}x "
              f"(target < {SCALE_TARGET}) {verdict}; noise floor (B/A in phase 1, equal sizes) {floor:.2f}x; "
              f"B before/after {before_after:.2f}x; machine drift (A phase 2 / phase 1) {drift:.2f}x")
        for g in grown[:5]:
            print(f"  grown: {g['small_ms']:.1f} -> {g['big_ms']:.1f} ms per batch  {g['statement']}")
            for line in g["plan"][:14]:
                print(f"      {line}")
        if not grown:
            print("  no SQL statement's time per batch grew >= 3x (and by >= 20 ms)")
    return {"side": side, "before_after": before_after, "drift": drift, "floor": floor, "verdict": verdict,
            "sizes": sizes2, "grown": [{k: v for k, v in g.items() if k != "plan"} for g in grown]}


async def run(batches: int = 20, size: int = 1000) -> dict:
    print("\n== ingest: sendEventsIngest throughput (PostgreSQL, batches of %d events) ==" % size)
    seq = await _pass("seq", 1, batches, size)
    par = await _pass("par", 2, batches, size)
    mismatches = seq["mismatches"] + par["mismatches"]
    sends, events = seq["sends"] + par["sends"], seq["send_events"] + par["send_events"]

    print(f"  databases: {seq['database']} (1 client), {par['database']} (2 clients), both dropped")
    print(f"  setup per pass: a fresh database and organization with 2 campaigns (EMAIL+SMS), 1,000 leads; "
          f"{WARMUP} warm-up batches per client before timing")
    print(f"  SQL statements per {size}-event batch: {seq['statements']:.1f} with 1 client, {par['statements']:.1f} "
          f"with 2 (more = batches retried after a deadlock or unique violation)")
    print(f"  {'clients':>7} {'batches':>7} {'events':>7} {'wall s':>7} {'events/s':>9} {'p50 batch':>12} "
          f"{'p95 batch':>12} {'max':>12} {'1st quarter':>12} {'last quarter':>12}")
    for r in (seq, par):
        print(f"  {r['clients']:>7} {r['batches']:>7} {r['events']:>7} {r['wall']:>7.2f} {r['events_per_s']:>9.0f} "
              f"{h.ms(r['p50']):>12} {h.ms(r['p95']):>12} {h.ms(r['max']):>12} {h.ms(r['first_quarter']):>12} "
              f"{h.ms(r['last_quarter']):>12}")
    ratio = par["events_per_s"] / seq["events_per_s"]
    growth = seq["last_quarter"] / seq["first_quarter"]
    print(f"  throughput 2 clients / 1 client: {ratio:.2f}x; batch time, last quarter / first quarter "
          f"(1 client): {growth:.2f}x")
    print(f"  afterwards: {sends} sends and {events} send events in the 4 campaigns; "
          f"counters == sends: {'yes' if not mismatches else 'NO'}")
    for m in mismatches[:10]:
        print(f"    MISMATCH {m}")
    problems = seq["problems"] + par["problems"]
    for p in problems[:10]:
        print(f"    UNEXPECTED RESULT {p}")
    strip = ("client", "campaigns", "methods")
    return {"seq": {k: v for k, v in seq.items() if k not in strip}, "par": {k: v for k, v in par.items() if k not in strip},
            "statements_per_batch": seq["statements"], "mismatches": mismatches, "problems": problems,
            "ratio_2_1": ratio, "growth": growth}
