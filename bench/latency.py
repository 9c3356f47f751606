"""Benchmark 2 — read latency at 10k sends vs 1M sends.

Two identical organizations A and B (2 zones, 4 centers, 400 leads, 10
launched campaigns with EMAIL+SMS, a little logged spend) each get 10,000
sends through the real `sendEventsIngest` path, spread over 14 days, 4
centers and every status. The `dashboard` query and a campaign-detail query
are timed for both (phase 1); then B's sends
are multiplied to 1,000,000 with `INSERT … SELECT generate_series` (each new
send, and its event history, is a copy of one of the ingested sends under a
new externalId — so campaigns, channels, centers and days, i.e. the counter
rows, keep exactly the same shape), counters are rebuilt with
`app.delivery.counters.rebuild`, tables are VACUUM ANALYZEd as autovacuum
would, and the same queries are timed again for both (phase 2). The target
is a 1M/10k ratio under 1.5 for p50 and p95 (KPIs come from counters, never
from scans), judged on B at 1M / A at 10k timed interleaved in phase 2 (same
moment); B's own before/after ratio is printed too, together with A's
phase 2 / phase 1 ratio — A's data did not change, so that is the machine's
drift, which before/after also carries.

Extras (informational, no target): the detail query with
`sends { totalCount }`, and the ingest batch latency in the same organization
at both sizes.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

from bench import harness as h
from bench.events import EventStream, iso

DASHBOARD = ("{ dashboard { activeCampaigns totalReach totalSpent{ amount } totalBudget{ amount } "
             "budgetUtilization } }")
DETAIL = """query($id:ID!){ campaign(id:$id){ id name status
  metrics{ totals{ generated sent delivered failed read clicked cost{ amount } credits deliveryRate clickRate }
           byChannel{ channel generated sent delivered failed read clicked cost{ amount } bounceRate } }
  budget{ allocated{ amount } spent{ amount } utilization byChannel{ channel cost{ amount } } }
  insights{ code }
  sends(first: 20){ edges{ node{ id status } } } } }"""
DETAIL_COUNT = """query($id:ID!){ campaign(id:$id){ id
  sends(first: 20){ totalCount edges{ node{ id status } } } } }"""

TARGET = 1.5
PROBE_BATCHES = 3


# ---------------------------------------------------------------- seeding


async def _seed(env: h.Env, n_sends: int):
    c = await env.organization("latency")
    zones = [await h.zone(c, f"Zone {i}") for i in range(2)]
    centers = [await h.center(c, z, f"Center {i}-{j}") for i, z in enumerate(zones) for j in range(2)]
    lead_ids = await h.leads(c, [{"externalId": f"P{i}", "name": f"Lead {i}", "email": f"p{i}@bench.test",
                                  "phone": f"+3361000{i:04d}", "centerId": centers[i % 4]} for i in range(400)])
    leads_of = {cen: [lead for i, lead in enumerate(lead_ids) if i % 4 == k] for k, cen in enumerate(centers)}
    owners = [(None, lead_ids)] * 4
    owners += [(z, leads_of[centers[2 * i]] + leads_of[centers[2 * i + 1]]) for i, z in enumerate(zones)]
    owners += [(cen, leads_of[cen]) for cen in centers]
    campaigns: list[tuple[str, list[str]]] = []
    for k, (owner, audience) in enumerate(owners):
        cid = await h.campaign(c, f"Latency {k}", owner=owner, budget="100000")
        await h.launch(c, cid, audience)
        campaigns.append((cid, audience))
    for cid, _ in campaigns[:3]:
        await h.spend(c, cid, "250", "EMAIL")
    kinds = ("SENT", "DELIVERED", "DELIVERED", "OPENED", "CLICKED", "FAILED", "DELIVERED", "SENT", "OPENED", "BOUNCED")
    start = datetime.now(timezone.utc) - timedelta(days=20)
    events = []
    for k in range(n_sends):
        cid, audience = campaigns[k % len(campaigns)]
        lead = audience[(k // len(campaigns)) % len(audience)]
        kind = kinds[(k // 3) % len(kinds)]
        t = start + timedelta(days=k % 14, minutes=k % 600)
        e = {"idempotencyKey": f"seed-{k}", "externalId": f"seed-{k}", "channel": ("EMAIL", "SMS")[k % 2],
             "type": kind, "occurredAt": iso(t), "campaignId": cid, "leadId": lead}
        if kind == "BOUNCED":
            e["reason"] = "mailbox full"
        events.append(e)
    for i in range(0, len(events), 1000):
        r = await h.ingest(c, events[i:i + 1000])
        assert not r["rejected"], r["rejected"][:3]
    return c, campaigns


async def _vacuum(env: h.Env) -> None:
    pg = await env.pg()
    try:
        for table in ("send", "send_event", "send_counter", "campaign", "lead"):
            await pg.execute(f"VACUUM ANALYZE {table}")
    finally:
        await pg.close()


async def _bulk_load(env: h.Env, org_id: int, campaign_ids: list[int], target: int, *, pattern: str = "seed-%",
                     prefix: str = "bulk") -> dict:
    """Multiply the organization's sends (and their events) up to `target` with generate_series:
    copies of its sends whose external id is LIKE `pattern`, under the external ids `<prefix>-<n>`."""
    from app.delivery import counters

    pg = await env.pg()
    t0 = time.perf_counter()
    try:
        await pg.execute("SET synchronous_commit = off; SET work_mem = '256MB'; SET maintenance_work_mem = '512MB'")
        have = await pg.fetchval("SELECT COUNT(*) FROM send WHERE organization_id = $1", org_id)
        extra = target - have
        if extra <= 0:
            return {"inserted": 0, "seconds": 0.0}
        cols = [r["column_name"] for r in await pg.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'send' ORDER BY ordinal_position")]
        copy = [x for x in cols if x not in ("id", "external_id", "updated_at")]
        # Template: the sends seeded through the API (not the ingest-probe ones), so the
        # detail campaign keeps its 1/10 share of the sends.
        await pg.execute(f"CREATE TEMP TABLE tpl AS SELECT row_number() OVER (ORDER BY id) AS rn, id AS tpl_id, "
                         f"{', '.join(copy)} FROM send WHERE organization_id = {int(org_id)} "
                         f"AND external_id LIKE '{pattern}'")
        n_tpl = await pg.fetchval("SELECT COUNT(*) FROM tpl")
        await pg.execute("CREATE UNIQUE INDEX ON tpl (rn); ANALYZE tpl")
        max_id = await pg.fetchval("SELECT COALESCE(MAX(id), 0) FROM send")
        # g % n_tpl + 1 picks the template send; 'bulk-<g>' is the new provider message id.
        await pg.execute(
            f"INSERT INTO send ({', '.join(copy)}, external_id, updated_at) "
            f"SELECT {', '.join('t.' + x for x in copy)}, '{prefix}-' || g, now() "
            f"FROM generate_series(1, {int(extra)}) g JOIN tpl t ON t.rn = (g % {int(n_tpl)}) + 1")
        t_sends = time.perf_counter() - t0
        ev_cols = [r["column_name"] for r in await pg.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'send_event' "
            "ORDER BY ordinal_position")]
        ev_copy = [x for x in ev_cols if x not in ("id", "send_id", "idempotency_key")]
        await pg.execute(
            f"INSERT INTO send_event (send_id, idempotency_key, {', '.join(ev_copy)}) "
            f"SELECT s.id, s.external_id || '-' || e.idempotency_key, {', '.join('e.' + x for x in ev_copy)} "
            f"FROM send s JOIN tpl t ON t.rn = (substr(s.external_id, {len(prefix) + 2})::bigint % {int(n_tpl)}) + 1 "
            f"JOIN send_event e ON e.send_id = t.tpl_id "
            f"WHERE s.organization_id = {int(org_id)} AND s.id > {int(max_id)}")
        t_events = time.perf_counter() - t0 - t_sends
    finally:
        await pg.close()
    t1 = time.perf_counter()
    rows = await counters.rebuild(campaign_ids)
    t_rebuild = time.perf_counter() - t1
    t2 = time.perf_counter()
    await _vacuum(env)
    t_vacuum = time.perf_counter() - t2
    return {"inserted": extra, "seconds": time.perf_counter() - t0, "sends_s": t_sends, "events_s": t_events,
            "rebuild_s": t_rebuild, "vacuum_s": t_vacuum, "counter_rows": rows}


async def _facts(env: h.Env, org_id: int, detail_id: int) -> dict:
    pg = await env.pg()
    try:
        return {
            "sends": await pg.fetchval("SELECT COUNT(*) FROM send WHERE organization_id = $1", org_id),
            "detail_sends": await pg.fetchval("SELECT COUNT(*) FROM send WHERE campaign_id = $1", detail_id),
            "events": await pg.fetchval("SELECT COUNT(*) FROM send_event WHERE organization_id = $1", org_id),
            "counter_rows": await pg.fetchval("SELECT COUNT(*) FROM send_counter WHERE organization_id = $1", org_id),
        }
    finally:
        await pg.close()


# ---------------------------------------------------------------- measuring


async def _measure(entries: dict[tuple[str, str], tuple[h.Client, str, dict | None]], requests: int):
    """Time every (query, organization) entry `requests` times, interleaved in a rotating
    order so that machine noise and drift hit every entry alike."""
    for c, q, v in entries.values():  # warm-up
        for _ in range(10):
            await c.timed(q, v)
    keys = list(entries)
    times: dict = {k: [] for k in keys}
    stmts: dict = {k: [] for k in keys}
    for i in range(requests):
        for j in range(len(keys)):
            key = keys[(i + j) % len(keys)]
            c, q, v = entries[key]
            with h.recording() as st:
                times[key].append(await c.timed(q, v))
            stmts[key].extend(st)
    return times, stmts


async def _probe_ingest(c: h.Client, stream: EventStream, batches: int, budget_s: float = 150.0):
    """A warm-up batch, then up to `batches` timed ones (fewer if over the time budget)."""
    started = time.perf_counter()
    await h.ingest(c, stream.next_batch().events)
    warm = time.perf_counter() - started
    times, stmts = [], []
    for i in range(batches):
        if i and time.perf_counter() - started > budget_s:
            break
        batch = stream.next_batch()
        with h.recording() as st:
            t0 = time.perf_counter()
            r = await h.ingest(c, batch.events)
            times.append(time.perf_counter() - t0)
        stmts.extend(st)
        assert not r["rejected"], r["rejected"][:3]
    return times, stmts, warm




async def _grown(env: h.Env, small: dict, big: dict, label: str, explain: bool, min_growth: float) -> list[dict]:
    """Statement shapes whose mean time per request grew >= 3x and by >= min_growth seconds."""
    out = []
    for key, (t_big, stmt) in sorted(big.items(), key=lambda kv: -kv[1][0]):
        t_small = small.get(key, (0.0, None))[0]
        if t_big - t_small >= min_growth and t_big >= 3 * max(t_small, 1e-6):
            plan = await h.explain(env, stmt) if explain else []
            out.append({"query": label, "statement": h.label(key), "small_ms": t_small * 1000, "big_ms": t_big * 1000,
                        "sql": stmt.sql, "plan": plan})
    return out


def _label(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else f"{n:,}"


async def run(env: h.Env, requests: int = 200, small: int = 10_000, big: int = 1_000_000) -> dict:
    print(f"\n== latency: dashboard and campaign detail at {small:,} vs {big:,} sends ==")
    print(f"  database: {env.database_name}")
    t0 = time.perf_counter()
    # Two identical organizations: B grows to `big`, A stays at `small` as a same-moment reference.
    c_a, campaigns_a = await _seed(env, small)
    c_b, campaigns_b = await _seed(env, small)
    detail_a, detail_b = campaigns_a[0][0], campaigns_b[0][0]
    detail_id = h.pk(detail_b)
    campaign_ids = [h.pk(cid) for cid, _ in campaigns_b]
    pg = await env.pg()
    org_id = await pg.fetchval("SELECT organization_id FROM campaign WHERE id = $1", detail_id)
    await pg.close()
    await _vacuum(env)
    seed_s = time.perf_counter() - t0
    names = {"dashboard": DASHBOARD, "campaign detail": DETAIL, "detail + sends.totalCount (extra)": DETAIL_COUNT}
    entries = {}
    for name, q in names.items():
        for org, c, detail in (("A", c_a, detail_a), ("B", c_b, detail_b)):
            entries[(name, org)] = (c, q, None if q is DASHBOARD else {"id": detail})
    probe = EventStream("probe", [(campaigns_b[1][0], lead) for lead in campaigns_b[1][1]], seed=5)

    facts_small = await _facts(env, org_id, detail_id)
    times_1, stmts_1 = await _measure(entries, requests)
    probe_small, probe_stmts_small, warm_small = await _probe_ingest(c_b, probe, PROBE_BATCHES)

    load = await _bulk_load(env, org_id, campaign_ids, big)
    facts_big = await _facts(env, org_id, detail_id)
    d = await c_b("query($id:ID!){ campaign(id:$id){ metrics{ totals{ generated } } } }", {"id": detail_b})
    api_generated = d["campaign"]["metrics"]["totals"]["generated"]
    times_2, stmts_2 = await _measure(entries, requests)
    probe_big, probe_stmts_big, warm_big = await _probe_ingest(c_b, probe, PROBE_BATCHES)

    print(f"  seeded 2 identical organizations (A, B) with {small:,} sends each through sendEventsIngest in "
          f"{seed_s:.1f} s; bulk-loaded {load['inserted']:,} more into B in {load['seconds']:.1f} s "
          f"(sends {load.get('sends_s', 0):.1f} s, events {load.get('events_s', 0):.1f} s, "
          f"counters.rebuild {load.get('rebuild_s', 0):.1f} s, VACUUM ANALYZE {load.get('vacuum_s', 0):.1f} s)")
    print(f"  organization B: sends {facts_small['sends']:,} -> {facts_big['sends']:,}; send events "
          f"{facts_small['events']:,} -> {facts_big['events']:,}; detail campaign sends "
          f"{facts_small['detail_sends']:,} -> {facts_big['detail_sends']:,} (API generated = {api_generated:,}); "
          f"send_counter rows {facts_small['counter_rows']:,} -> {facts_big['counter_rows']:,}")
    print(f"  {requests} timed requests per query, organization and phase (all interleaved), after 10 warm-up each")
    sm, bg = _label(small), _label(big)
    print(f"  before/after = B at {bg} (phase 2) / B at {sm} (phase 1), p50/p95")
    print("  drift        = A in phase 2 / A in phase 1: A's data did not change, so this is the machine")
    print(f"  side by side = B at {bg} / A at {sm}, both in phase 2 (same moment, same tables)  <- the target "
          f"(< {TARGET})")
    print(f"  noise floor  = B / A in phase 1, both at {sm} (should be ~1.0)")
    print(f"  {'query':<34} {'B ' + sm + ' p50/p95':>15} {'B ' + bg + ' p50/p95':>15} {'before/after':>13} {'drift':>11} "
          f"{'side by side':>13} {'noise floor':>12}  verdict")
    results = {}
    for name in names:
        b1, b2 = h.summary(times_1[(name, "B")]), h.summary(times_2[(name, "B")])
        a1, a2 = h.summary(times_1[(name, "A")]), h.summary(times_2[(name, "A")])
        r50, r95 = b2["p50"] / b1["p50"], b2["p95"] / b1["p95"]
        d50, d95 = a2["p50"] / a1["p50"], a2["p95"] / a1["p95"]
        s50, s95 = b2["p50"] / a2["p50"], b2["p95"] / a2["p95"]
        n50, n95 = b1["p50"] / a1["p50"], b1["p95"] / a1["p95"]
        extra = "(extra)" in name
        # The same-moment ratio decides: before/after also carries the machine's drift between phases.
        verdict = "info" if extra else ("OK (< %.1f)" % TARGET if max(s50, s95) < TARGET else "FAIL (>= %.1f)" % TARGET)
        print(f"  {name:<34} {b1['p50'] * 1000:>6.1f}/{b1['p95'] * 1000:>5.1f}ms {b2['p50'] * 1000:>6.1f}/"
              f"{b2['p95'] * 1000:>5.1f}ms {r50:>6.2f}/{r95:<6.2f} {d50:>5.2f}/{d95:<5.2f} {s50:>6.2f}/{s95:<6.2f} "
              f"{n50:>5.2f}/{n95:<6.2f}  {verdict}")
        results[name] = {"small": b1, "big": b2, "ratio_p50": r50, "ratio_p95": r95, "side_p50": s50,
                         "side_p95": s95, "noise_p50": n50, "noise_p95": n95, "drift_p50": d50, "drift_p95": d95,
                         "verdict": verdict, "a_phase1": a1, "a_phase2": a2}
    ps, pb = h.summary(probe_small), h.summary(probe_big)
    print(f"  {'ingest 1,000-event batch (extra)':<34} {ps['p50'] * 1000:>6.0f}/{ps['p95'] * 1000:>5.0f}ms "
          f"{pb['p50'] * 1000:>6.0f}/{pb['p95'] * 1000:>5.0f}ms {pb['p50'] / ps['p50']:>6.2f}/"
          f"{pb['p95'] / ps['p95']:<6.2f} {'':>11} {'':>13} {'':>12}  info ({len(probe_small)} / {len(probe_big)} batches in B; "
          f"warm-up batch {warm_small:.1f} s / {warm_big:.1f} s)")
    results["ingest probe"] = {"small": ps, "big": pb, "ratio_p50": pb["p50"] / ps["p50"],
                               "ratio_p95": pb["p95"] / ps["p95"]}

    probe_s, probe_b = h.per_shape(probe_stmts_small, len(probe_small)), h.per_shape(probe_stmts_big, len(probe_big))
    print(f"  ingest batch in B, SQL time per batch by statement (top 6 at {bg}; {sm} -> {bg}):")
    for key, (t_big, _) in sorted(probe_b.items(), key=lambda kv: -kv[1][0])[:6]:
        print(f"    {probe_s.get(key, (0.0,))[0] * 1000:8.1f} ms -> {t_big * 1000:8.1f} ms  {h.label(key)}")

    # Which SQL statements got slower with the data (mean per request), with plans.
    grown: list[dict] = []
    for name in names:
        failing = results[name]["verdict"].startswith("FAIL") or "(extra)" in name
        grown += await _grown(env, h.per_shape(stmts_1[(name, "B")], requests),
                              h.per_shape(stmts_2[(name, "B")], requests), name, failing, 0.002)
    grown += await _grown(env, probe_s, probe_b, "ingest batch", True, 0.1)
    if grown:
        print(f"  SQL statements whose mean time grew >= 3x from {sm} to {bg} (and by >= 2 ms per read request, "
              ">= 100 ms per ingest batch):")
        for g in grown:
            print(f"   [{g['query']}] {g['small_ms']:.2f} ms -> {g['big_ms']:.2f} ms: {g['statement']}")
            for line in g["plan"][:40]:
                print(f"        {line}")
    else:
        print(f"  no SQL statement's time grew >= 3x from {sm} to {bg}")
    return {"results": results, "facts_small": facts_small, "facts_big": facts_big, "load": load, "grown": grown}
