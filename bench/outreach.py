"""Benchmark — `leadsKpis` latency for an organization with 10k leads vs one with 1M leads (issue 13).

`python -m bench.outreach [--small 10000] [--big 1000000] [--requests 200]`

Own throwaway PostgreSQL database next to the admin database (PULSE_BENCH_DATABASE_URL,
default postgres://postgres@127.0.0.1:5432/test), migrated at start-up, dropped at the end
(PULSE_BENCH_KEEP=1 keeps it). The app runs in-process and is driven over HTTP (ASGI).

Two organizations, S (small) and B (big), built the same way:
1. Through the API (the real code paths): 2 zones, 4 centers, 40 leads, a campaign with a
   three-step sequence (email, LinkedIn request, LinkedIn message) launched on them, the
   scheduler tick, one step marked done. This writes per-lead figures, counters and a
   snapshot with the product's own code.
2. Bulk, with `INSERT … SELECT generate_series` (as bench/latency.py does for sends): the
   remaining leads (spread over the 4 centers; some without email, some with a LinkedIn URL,
   a third verified), their per-lead figures (`lead_outreach`: live, touches, steps,
   overdue, actions in fixed patterns), the counters added from those rows with the same
   contribution rule as `app.outreach.state.contribution` (GROUP BY zone, center), and 400
   days of daily snapshots (what 400 local midnights of the scheduler would have left).
   Then VACUUM ANALYZE.
Checks: B's `leadsKpis.all` equals its lead count, and `active`, `engaged`, `offTrack`,
`actionRequired` equal direct counts over `lead_outreach`.

Timing: the same `leadsKpis` query (every KPI with its week/month/quarter/year comparison),
at organization scope and at one center's scope, for S and B alternately (rotating order
each round, after a warm-up). Prints p50/p95 per size and the ratio B/S (target ≤ 1.5).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from datetime import date, datetime, timedelta, timezone

from bench import harness as h

TARGET = 1.5
KPIS = """query($s:ID){ leadsKpis(scope:$s){ today
  all{ value previousWeek changeWeek previousMonth changeMonth previousQuarter changeQuarter previousYear changeYear }
  active{ value changeWeek changeMonth changeQuarter changeYear } inactive{ value changeWeek changeMonth }
  verifiedOnly{ value changeWeek changeMonth } socialOnly{ value changeWeek changeMonth }
  engaged{ value changeWeek changeMonth } onTrack{ value changeWeek changeMonth }
  offTrack{ value changeWeek changeMonth } actionRequired{ value changeWeek changeMonth } } }"""
STEPS = "mutation($c:ID!,$s:[StepInput!]!){ stepsSet(campaignId:$c, steps:$s){ userErrors{ code message } } }"
ACTIONS = "{ actionRequired(first: 5) { id } }"
DONE = "mutation($r:ID!){ stepMarkDone(recipientStepId:$r, action:REQUEST_SENT){ userErrors{ code message } } }"
API_LEADS = 40


def log(*a) -> None:
    print(*a, flush=True)


def _label(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else f"{n:,}"


async def _through_api(env: h.Env, label: str) -> tuple[h.Client, int, list[str]]:
    from app.outreach.service import tick

    c = await env.organization(f"outreach-{label}")
    zones = [await h.zone(c, f"Zone {i}") for i in range(2)]
    centers = [await h.center(c, z, f"Center {i}-{j}") for i, z in enumerate(zones) for j in range(2)]
    leads = await h.leads(c, [{"externalId": f"api-{i}", "name": f"Lead {i}", "email": f"l{i}@bench.test",
                               "emailVerified": i % 3 == 0, "linkedinUrl": f"https://linkedin.example/in/{i}",
                               "centerId": centers[i % 4]} for i in range(API_LEADS)])
    cid = await h.campaign(c, f"Sequence {label}", channels=[{"channel": "EMAIL", "provider": "external"}])
    d = await c(STEPS, {"c": cid, "s": [{"kind": "EMAIL", "dayOffset": 0},
                                        {"kind": "LINKEDIN_REQUEST", "dayOffset": 0},
                                        {"kind": "LINKEDIN_MESSAGE", "dayOffset": 2}]})
    assert not d["stepsSet"]["userErrors"], d
    await tick(datetime.now(timezone.utc))
    await h.launch(c, cid, leads)
    todo = (await c(ACTIONS))["actionRequired"]
    assert todo, "the LinkedIn requests are action required after launch"
    d = await c(DONE, {"r": todo[0]["id"]})
    assert not d["stepMarkDone"]["userErrors"], d
    pg = await env.pg()
    try:
        org_id = await pg.fetchval("SELECT organization_id FROM campaign WHERE id = $1", h.pk(cid))
    finally:
        await pg.close()
    return c, org_id, centers


async def _bulk(env: h.Env, org_id: int, target: int) -> dict:
    """Grow the organization to `target` leads with their per-lead figures, counters and snapshots."""
    pg = await env.pg()
    t0 = time.perf_counter()
    try:
        await pg.execute("SET synchronous_commit = off; SET work_mem = '256MB'; SET maintenance_work_mem = '512MB'")
        have = await pg.fetchval("SELECT COUNT(*) FROM lead WHERE organization_id = $1", org_id)
        extra = target - have
        centers = await pg.fetch("SELECT id, zone_id FROM center WHERE organization_id = $1 ORDER BY id", org_id)
        n_c = len(centers)
        center_of = "CASE g % {n} {w} END".format(
            n=n_c, w=" ".join(f"WHEN {k} THEN {r['id']}" for k, r in enumerate(centers)))
        zone_of = "CASE g % {n} {w} END".format(
            n=n_c, w=" ".join(f"WHEN {k} THEN {r['zone_id']}" for k, r in enumerate(centers)))
        max_id = await pg.fetchval("SELECT COALESCE(MAX(id), 0) FROM lead")
        # every 10th lead has no email (every 20th of all: a LinkedIn URL → social only); a third verified
        await pg.execute(
            "INSERT INTO lead (organization_id, external_id, name, email, email_verified, linkedin_url, tags, "
            "tags_text, center_id, zone_id, unsubscribed, created_at, updated_at) "
            f"SELECT {int(org_id)}, 'bulk-' || g, 'Lead ' || g, "
            "CASE WHEN g % 10 = 0 THEN NULL ELSE 'b' || g || '@bench.test' END, (g % 3 = 0 AND g % 10 <> 0), "
            "CASE WHEN g % 20 = 0 THEN 'https://linkedin.example/in/b' || g END, '[]', '', "
            f"{center_of}, {zone_of}, '[]', now(), now() FROM generate_series(1, {int(extra)}) g")
        t_leads = time.perf_counter() - t0
        # per-lead figures in fixed patterns (id-based): half in a live campaign, a fifth touched,
        # a seventh in a sequence, of which some overdue and some with an action due
        await pg.execute(
            "INSERT INTO lead_outreach (lead_id, organization_id, zone_id, center_id, verified, social_only, live, "
            "touches, steps, overdue, actions) "
            "SELECT l.id, l.organization_id, COALESCE(l.zone_id, 0), COALESCE(l.center_id, 0), "
            "(l.email_verified AND l.email IS NOT NULL), "
            "(l.email IS NULL AND (l.linkedin_url IS NOT NULL OR l.twitter_url IS NOT NULL)), "
            "(l.id % 2), CASE WHEN l.id % 5 = 0 THEN 1 ELSE 0 END, CASE WHEN l.id % 7 = 0 THEN 3 ELSE 0 END, "
            "CASE WHEN l.id % 14 = 0 THEN 1 ELSE 0 END, CASE WHEN l.id % 21 = 0 THEN 1 ELSE 0 END "
            f"FROM lead l WHERE l.organization_id = {int(org_id)} AND l.id > {int(max_id)}")
        t_figures = time.perf_counter() - t0 - t_leads
        # counters: the bulk rows' contributions (app.outreach.state.contribution), added per (zone, center)
        await pg.execute(
            "INSERT INTO lead_kpi_counter (organization_id, zone_id, center_id, total, active, verified, social_only, "
            "engaged, in_sequence, off_track, action_required) "
            "SELECT organization_id, zone_id, center_id, COUNT(*), SUM((live > 0)::int), SUM(verified::int), "
            "SUM(social_only::int), SUM((touches > 0)::int), SUM((steps > 0)::int), SUM((overdue > 0)::int), "
            "SUM((actions > 0)::int) "
            f"FROM lead_outreach WHERE organization_id = {int(org_id)} AND lead_id > {int(max_id)} "
            "GROUP BY organization_id, zone_id, center_id "
            "ON CONFLICT (organization_id, zone_id, center_id) DO UPDATE SET "
            + ", ".join(f"{col} = lead_kpi_counter.{col} + excluded.{col}" for col in (
                "total", "active", "verified", "social_only", "engaged", "in_sequence", "off_track",
                "action_required")))
        # 400 days of snapshots before today (what the midnight ticks would have kept)
        today = date.today()
        await pg.execute("DELETE FROM lead_kpi_snapshot WHERE organization_id = $1 AND day < $2", org_id, today)
        await pg.execute(
            "INSERT INTO lead_kpi_snapshot (organization_id, day, zone_id, center_id, total, active, verified, "
            "social_only, engaged, in_sequence, off_track, action_required) "
            "SELECT k.organization_id, d::date, k.zone_id, k.center_id, "
            "(k.total * (1 - (($2::date - d::date) / 1000.0)))::int, k.active, k.verified, k.social_only, "
            "k.engaged, k.in_sequence, k.off_track, k.action_required "
            "FROM lead_kpi_counter k, generate_series($2::date - 400, $2::date - 1, interval '1 day') d "
            "WHERE k.organization_id = $1", org_id, today)
        t_counters = time.perf_counter() - t0 - t_leads - t_figures
        for table in ("lead", "lead_outreach", "lead_kpi_counter", "lead_kpi_snapshot"):
            await pg.execute(f"VACUUM ANALYZE {table}")
        facts = dict(await pg.fetchrow(
            "SELECT COUNT(*) AS leads, SUM((live > 0)::int) AS active, SUM((touches > 0)::int) AS engaged, "
            "SUM((overdue > 0)::int) AS off_track, SUM((actions > 0)::int) AS action_required "
            "FROM lead_outreach WHERE organization_id = $1", org_id))
        facts["lead_rows"] = await pg.fetchval("SELECT COUNT(*) FROM lead WHERE organization_id = $1", org_id)
        facts["snapshot_rows"] = await pg.fetchval(
            "SELECT COUNT(*) FROM lead_kpi_snapshot WHERE organization_id = $1", org_id)
        facts["counter_rows"] = await pg.fetchval(
            "SELECT COUNT(*) FROM lead_kpi_counter WHERE organization_id = $1", org_id)
    finally:
        await pg.close()
    return {"inserted": extra, "seconds": time.perf_counter() - t0, "leads_s": t_leads, "figures_s": t_figures,
            "counters_s": t_counters, "facts": facts}


async def _check(c: h.Client, facts: dict) -> dict:
    k = (await c(KPIS, {"s": None}))["leadsKpis"]
    got = {"all": k["all"]["value"], "active": k["active"]["value"], "engaged": k["engaged"]["value"],
           "offTrack": k["offTrack"]["value"], "actionRequired": k["actionRequired"]["value"]}
    want = {"all": facts["lead_rows"], "active": facts["active"], "engaged": facts["engaged"],
            "offTrack": facts["off_track"], "actionRequired": facts["action_required"]}
    assert got == want, (got, want)
    assert k["all"]["previousWeek"] is not None and k["all"]["previousYear"] is not None, k["all"]
    return got


async def _measure(entries: dict, requests: int) -> dict:
    for c, v in entries.values():  # warm-up
        for _ in range(10):
            await c.timed(KPIS, v)
    keys = list(entries)
    times: dict = {k: [] for k in keys}
    for i in range(requests):
        for j in range(len(keys)):
            key = keys[(i + j) % len(keys)]
            c, v = entries[key]
            times[key].append(await c.timed(KPIS, v))
    return times


async def run(args) -> int:
    small, big = args.small, args.big
    log(f"\n== outreach: leadsKpis at {small:,} vs {big:,} leads ==")
    async with h.running_app() as env:
        log(f"  database: {env.database_name}")
        t0 = time.perf_counter()
        c_s, org_s, centers_s = await _through_api(env, "small")
        c_b, org_b, centers_b = await _through_api(env, "big")
        log(f"  2 organizations seeded through the API ({API_LEADS} leads, a 3-step sequence launched, tick, "
            f"one step done) in {time.perf_counter() - t0:.1f} s")
        load_s = await _bulk(env, org_s, small)
        log(f"  S: bulk-loaded {load_s['inserted']:,} leads in {load_s['seconds']:.1f} s")
        load_b = await _bulk(env, org_b, big)
        log(f"  B: bulk-loaded {load_b['inserted']:,} leads in {load_b['seconds']:.1f} s (leads "
            f"{load_b['leads_s']:.1f} s, per-lead figures {load_b['figures_s']:.1f} s, counters + snapshots "
            f"{load_b['counters_s']:.1f} s, then VACUUM ANALYZE)")
        for name, c, load in (("S", c_s, load_s), ("B", c_b, load_b)):
            got = await _check(c, load["facts"])
            f = load["facts"]
            log(f"  {name}: {f['lead_rows']:,} leads, {f['counter_rows']} counter rows, {f['snapshot_rows']:,} "
                f"snapshot rows; leadsKpis = direct counts: {got}")
        entries = {("org", "S"): (c_s, {"s": None}), ("org", "B"): (c_b, {"s": None}),
                   ("center", "S"): (c_s, {"s": centers_s[1]}), ("center", "B"): (c_b, {"s": centers_b[1]})}
        times = await _measure(entries, args.requests)
    failed = []
    log(f"\n  leadsKpis over HTTP, {args.requests} requests each, S and B alternating (ms):")
    log(f"    {'scope':<8} {'S p50':>8} {'S p95':>8} {'B p50':>8} {'B p95':>8}   ratio B/S p50   p95")
    for scope in ("org", "center"):
        s, b = times[(scope, "S")], times[(scope, "B")]
        r50, r95 = h.pct(b, 50) / h.pct(s, 50), h.pct(b, 95) / h.pct(s, 95)
        ok = r50 <= TARGET and r95 <= TARGET
        if not ok:
            failed.append(scope)
        log(f"    {scope:<8} {h.pct(s, 50) * 1000:8.2f} {h.pct(s, 95) * 1000:8.2f} {h.pct(b, 50) * 1000:8.2f} "
            f"{h.pct(b, 95) * 1000:8.2f}   x{r50:.2f}          x{r95:.2f}  {'ok' if ok else 'OVER'}")
    log(f"  ratio {_label(big)}/{_label(small)} (target <= {TARGET}): "
        + ("met" if not failed else "NOT met for " + ", ".join(failed)))
    if big < 1_000_000:
        log(f"  NOTE: the big organization had {big:,} leads, not 1M (--big).")
    return 1 if failed else 0


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    p = argparse.ArgumentParser(prog="python -m bench.outreach", description=__doc__.split("\n\n")[0])
    p.add_argument("--small", type=int, default=10_000, help="leads of the small organization (default 10000)")
    p.add_argument("--big", type=int, default=1_000_000, help="leads of the big organization (default 1000000)")
    p.add_argument("--requests", type=int, default=200, help="timed requests per scope and size (default 200)")
    sys.exit(asyncio.run(run(p.parse_args())))


if __name__ == "__main__":
    main()
