"""Benchmark — campaign analytics read latency (SPEC §9) at 10k vs 1M sends and goal events.

`python -m bench.analytics [--requests 200] [--copies 100] [--no-grow-campaign] [--no-fix] [--rebuild-probe S]`

Own throwaway PostgreSQL database `pulse_bench_analytics_<pid>` next to the
admin database (PULSE_BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test),
migrated with `app.db.run_migrations`, dropped at the end (PULSE_BENCH_KEEP=1 keeps it).

Phase 0 — 10k, through the real code paths. One organization (Europe/Paris),
6,000 leads (5,500 audience + 500 outsiders), campaign M: SALE goal, 10 % control
group, EMAIL + SMS, launched on the 5,500 leads. 10,000 sends to its treatment
recipients (their SENT / DELIVERED / OPENED / CLICKED / REPLIED / FAILED / BOUNCED
events, ~25k, through `sendEventsIngest` in time order, 5,000 a batch) and 10,000
goal events (85 % SALE with a value, 10 % PAGE_VIEWS, 5 % LEAD; treatment, control
and outsider leads; inside and outside the attribution windows) through
`goalEventsIngest`. Every rollup (campaign_day_stat, campaign_outcome,
attribution, recipients' exposed/engaged/converted flags) is written by the
product's own ingestion code. A reference campaign R is an SQL copy of M (see
below); its API answers must equal M's, and again after `analytics.rebuild([R])`
(this proves the copies are what the real code computes, and times rebuild at 10k).

Phase (a) — the organization grows to 1M: 98 more SQL copies of M as other
campaigns (M + R + 98 = 100 campaigns x 10k sends = 1M sends, ~1M goal events,
~600k leads, 550k recipients). M itself is unchanged (its answers are checked).

Phase (b) — the measured campaign itself grows: 99 copies of M's data into M
(M: 1,000,000 sends, 550,000 recipients, ~1M goal events of its leads), on top of
(a). R stays at 10k: a same-moment, same-tables reference (M/R at (b)).

Bulk copies: `INSERT … SELECT` of the phase-0 rows x `generate_series`-style
copy numbers into lead, recipient, send, goal_event and attribution, with new
ids / external ids / idempotency keys (FK triggers off during the load with
session_replication_role = replica; the rows are consistent by construction).
A copy of a campaign's data has, row for row, the same times, groups, reads and
goals, so its rollups are the source's: campaign_day_stat / campaign_outcome rows
are copied for new campaigns and multiplied by the number of copies for M, and so
are campaign.audience_size / reach / control_size (checked: M's answers at (b) ==
phase-0 answers x 100, except the confidence interval, which narrows). send_counter
(not read here) is rebuilt with `app.delivery.counters.rebuild`. Not copied (not
read by these queries nor by analytics.rebuild): send_event, send_change, send_job,
audience_member. `analytics.rebuild` is not used for the bulk rows: ~10 s per 10k
campaign here (timed on R), i.e. ~15+ min for (a), and on a big campaign it fails
(`--rebuild-probe SECONDS` tries it on M at the end).

Measured over HTTP (in-process ASGI client; every timed request of a phase
interleaved in a shuffled order): `campaign { stats(period: LIFETIME) { totals
daily recipients(first: 20) } }`, `campaign { funnel }`, `campaign { lift }`, for
M and R, plus a data-independent probe (`viewer { organization { id } }`) that
gauges the machine's drift between phases. Up to --requests (200) per entry; a
query too slow for that within --entry-budget seconds gets fewer (>= 20; reported).
Ratios: (a)/10k and (b)/10k for M (target < 1.5), M/R at (b), drift-corrected.
Info, no target: a goalEventsIngest batch of 100 events for M's leads per phase.
SQL statements whose time per request grew are EXPLAIN ANALYZEd right after the
phase (custom plan, and the generic plan of a prepared statement). Finally the
proposed indexes are created in the throwaway database and `stats` re-measured.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import random
import sys
import time
from collections import defaultdict
from datetime import datetime, timedelta, timezone

import asyncpg
import httpx
from asgi_lifespan import LifespanManager

from bench import harness as h

TARGET = 1.5
AUDIENCE = 5_500
OUTSIDERS = 500
SENDS = 10_000
GOALS = 10_000
BATCH = 5_000  # the largest batch the API takes

STATS_Q = """query($id:ID!){ campaign(id:$id){ id stats(period: LIFETIME){ dateFrom dateTo
  totals{ sent viewed clicked goals revenue{ amount currency } }
  daily{ day sent viewed clicked goals revenue{ amount } }
  recipients(first: 20){ edges{ cursor node{ group lead{ id externalId name } sentAt viewedAt clickedAt goalAt } }
                         pageInfo{ hasNextPage endCursor } } } } }"""
FUNNEL_Q = """query($id:ID!){ campaign(id:$id){ id funnel{ prospects exposures engagements conversions goalKind
  exposureRate engagementRate conversionRate } } }"""
LIFT_Q = """query($id:ID!){ campaign(id:$id){ id lift{ available unavailableReason tooSmall treatmentSize controlSize
  treatmentConversions controlConversions treatmentConversionRate controlConversionRate treatmentAov{ amount }
  controlAov{ amount } baselineRevenue{ amount } actualRevenue{ amount } incrementalRevenue{ amount }
  incrementalConversions rateDifference rateDifferenceCiLow rateDifferenceCiHigh } } }"""
PROBE_Q = "{ viewer { organization { id } } }"
QUERIES = {"stats": STATS_Q, "funnel": FUNNEL_Q, "lift": LIFT_Q}

GOALS_M = """mutation($e:[GoalEventInput!]!){ goalEventsIngest(events:$e){ accepted duplicates
  rejected{ index code message } userErrors{ code message } } }"""

BULK_TABLES = ("lead", "recipient", "send", "goal_event", "attribution", "campaign",
               "campaign_day_stat", "campaign_outcome", "send_counter")


def iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def log(msg: str) -> None:
    print(msg, flush=True)


# ---------------------------------------------------------------- the app and its database


@contextlib.asynccontextmanager
async def running_app():
    from app.db import run_migrations
    from app.main import create_app
    from app.settings import Settings

    name = f"pulse_bench_analytics_{os.getpid()}"
    admin = h._asyncpg(h.admin_url())
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = h.with_database(h.admin_url(), name)
    if url.startswith("postgresql://"):
        url = "postgres://" + url[len("postgresql://"):]
    try:
        t0 = time.perf_counter()
        await run_migrations(url)
        log(f"  database {name}: migrated in {time.perf_counter() - t0:.1f} s")
        settings = Settings(env="production", database_url=url, broadcast_url="memory://", auto_migrate=False,
                            worker_in_process=False)
        app = create_app(settings)
        h.install_recorder()
        async with LifespanManager(app, startup_timeout=120, shutdown_timeout=60):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://pulse.bench", timeout=600) as http:
                yield h.Env(http, url, name)
    finally:
        if os.environ.get("PULSE_BENCH_KEEP"):
            log(f"\n(kept database {name}: PULSE_BENCH_KEEP is set)")
        else:
            await h.drop_database(name)
            log(f"\n(dropped database {name})")


# ---------------------------------------------------------------- phase 0: seeding through the API


async def seed(env: h.Env, rng: random.Random) -> dict:
    from app.tenancy.service import create_organization

    issued = await create_organization(f"bench-analytics-{os.getpid()}", f"owner@analytics-{os.getpid()}.test",
                                       "EUR", "Europe/Paris")
    c = h.Client(env.http, issued.token)
    t0 = time.perf_counter()
    lead_ids = await h.leads(c, [{"externalId": f"A{i}", "name": f"Lead {i}", "email": f"a{i}@bench.test",
                                  "phone": f"+3361{i:07d}"} for i in range(AUDIENCE + OUTSIDERS)])
    audience, outsiders = lead_ids[:AUDIENCE], lead_ids[AUDIENCE:]
    d = await c("mutation($i:CampaignCreateInput!){ campaignCreate(input:$i){ campaign{ id } "
                "userErrors{ field message code } } }",
                {"i": {"name": "Spring sale", "controlGroupPercent": 10, "goal": {"type": "SALE"}, "budget": "100000",
                       "channels": [{"channel": "EMAIL", "unitCost": "0.01"}, {"channel": "SMS", "unitCost": "0.05"}]}})
    assert not d["campaignCreate"]["userErrors"], d
    cid = d["campaignCreate"]["campaign"]["id"]
    await h.launch(c, cid, audience)
    pg = await env.pg()
    try:
        rows = await pg.fetch('SELECT lead_id, "group" FROM recipient WHERE campaign_id = $1 ORDER BY lead_id', h.pk(cid))
    finally:
        await pg.close()
    groups = {h.gid("Lead", r["lead_id"]): r["group"] for r in rows}
    treatment = [x for x in audience if groups[x] == "TREATMENT"]
    control = [x for x in audience if groups[x] == "CONTROL"]
    setup_s = time.perf_counter() - t0

    # Sends: after the launch (a control recipient's window starts when it joined), over 14 days.
    base = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(minutes=2)
    events: list[dict] = []
    reads: dict[str, list[datetime]] = defaultdict(list)  # lead -> counted reads
    for k in range(SENDS):
        lead = treatment[k % len(treatment)]
        channel = ("EMAIL", "SMS")[(k // len(treatment)) % 2]
        ext = f"m-{k}"
        t = base + timedelta(days=k % 14, minutes=(k * 7) % 600)
        seq = iter(range(10))

        def e(kind, at, **kw):
            return {"idempotencyKey": f"{ext}-{next(seq)}", "externalId": ext, "channel": channel, "type": kind,
                    "occurredAt": iso(at), **kw}
        events.append(e("SENT", t, campaignId=cid, leadId=lead))
        r = rng.random()
        if r < 0.04:
            events.append(e("FAILED", t + timedelta(seconds=30), reason="provider refused"))
            continue
        if r < 0.06 and channel == "EMAIL":
            events.append(e("BOUNCED", t + timedelta(seconds=30), reason="mailbox unknown"))
            continue
        events.append(e("DELIVERED", t + timedelta(minutes=1)))
        r = rng.random()
        if r < 0.42:
            late = r < 0.03  # read after the 7-day view window: not counted
            read = t + (timedelta(days=7, hours=rng.randint(2, 40)) if late else timedelta(minutes=rng.randint(5, 4320)))
            events.append(e("OPENED", read))
            if not late:
                reads[lead].append(read)
            if rng.random() < 0.3:
                events.append(e("CLICKED", read + timedelta(minutes=rng.randint(1, 30)), url="https://shop.test/sale"))
            if channel == "SMS" and rng.random() < 0.1:
                events.append(e("REPLIED", read + timedelta(minutes=rng.randint(1, 60))))
    events.sort(key=lambda x: x["occurredAt"])
    t0 = time.perf_counter()
    for i in range(0, len(events), BATCH):
        r = await h.ingest(c, events[i:i + BATCH])
        assert not r["rejected"], r["rejected"][:3]
    sends_s = time.perf_counter() - t0

    goals: list[dict] = []
    for i in range(GOALS):
        r = rng.random()
        if r < 0.05:
            lead = rng.choice(outsiders)
            at = base + timedelta(minutes=rng.randint(0, 30 * 1440))
        elif r < 0.15:
            lead = rng.choice(control)
            at = base + timedelta(minutes=rng.randint(0, 32 * 1440))
        else:
            lead = rng.choice(treatment)
            if reads.get(lead) and rng.random() < 0.75:
                at = rng.choice(reads[lead]) + timedelta(minutes=rng.randint(1, 9 * 1440))
            else:
                at = base + timedelta(minutes=rng.randint(0, 30 * 1440))
        kind = rng.random()
        g = {"idempotencyKey": f"g-{i}", "leadId": lead, "occurredAt": iso(at),
             "goalType": "SALE" if kind < 0.85 else ("PAGE_VIEWS" if kind < 0.95 else "LEAD")}
        if g["goalType"] == "SALE":
            g["value"] = f"{rng.randint(1000, 25000) / 100:.2f}"
        goals.append(g)
    t0 = time.perf_counter()
    for i in range(0, len(goals), BATCH):
        d = await c(GOALS_M, {"e": goals[i:i + BATCH]})
        r = d["goalEventsIngest"]
        assert not r["userErrors"] and not r["rejected"] and r["accepted"] == len(goals[i:i + BATCH]), r
    goals_s = time.perf_counter() - t0
    log(f"  seeded through the API: org + {len(lead_ids):,} leads + campaign M launched ({len(treatment):,} "
        f"treatment / {len(control):,} control) in {setup_s:.1f} s; {SENDS:,} sends = {len(events):,} send events "
        f"in {sends_s:.1f} s; {GOALS:,} goal events in {goals_s:.1f} s")
    return {"client": c, "campaign": cid, "campaign_pk": h.pk(cid), "treatment": treatment, "control": control}


# ---------------------------------------------------------------- bulk copies (SQL)


async def _columns(pg, table: str) -> list[str]:
    return [r["column_name"] for r in await pg.fetch(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1 "
        "ORDER BY ordinal_position", table)]


def _q(col: str) -> str:
    return f'"{col}"'


async def _insert_copy(pg, table: str, src_alias: str, overrides: dict[str, str], tail: str,
                       skip: tuple = ("id",)) -> int:
    cols = [c for c in await _columns(pg, table) if c not in skip or c in overrides]
    select = ", ".join(overrides.get(c, f"{src_alias}.{_q(c)}") for c in cols)
    status = await pg.execute(f"INSERT INTO {table} ({', '.join(map(_q, cols))}) SELECT {select} {tail}")
    return int(status.split()[-1])


async def snapshot_unit(pg, campaign_id: int, org_id: int) -> dict:
    """Remember phase-0 rows of the organization / campaign M: the unit every bulk copy repeats."""
    await pg.execute(f"""
        CREATE UNLOGGED TABLE _bench_lead AS SELECT row_number() OVER (ORDER BY id) AS rn, id FROM lead
            WHERE organization_id = {org_id};
        CREATE UNLOGGED TABLE _bench_send AS SELECT row_number() OVER (ORDER BY id) AS rn, id FROM send
            WHERE campaign_id = {campaign_id};
        CREATE UNLOGGED TABLE _bench_goal AS SELECT row_number() OVER (ORDER BY id) AS rn, id FROM goal_event
            WHERE organization_id = {org_id};
        CREATE UNLOGGED TABLE _bench_day AS SELECT * FROM campaign_day_stat WHERE campaign_id = {campaign_id};
        CREATE UNLOGGED TABLE _bench_outcome AS SELECT * FROM campaign_outcome WHERE campaign_id = {campaign_id};
        CREATE UNIQUE INDEX ON _bench_lead (id); CREATE UNIQUE INDEX ON _bench_goal (id);
        CREATE UNIQUE INDEX ON _bench_send (id);
        ANALYZE _bench_lead; ANALYZE _bench_send; ANALYZE _bench_goal;""")
    unit = {"src": campaign_id, "org": org_id}
    for t in ("lead", "send", "goal"):
        unit[t] = await pg.fetchval(f"SELECT COUNT(*) FROM _bench_{t}")
    unit["campaign"] = dict(await pg.fetchrow(
        "SELECT audience_size, reach, control_size FROM campaign WHERE id = $1", campaign_id))
    return unit


async def new_campaigns(pg, unit: dict, names: list[str]) -> list[int]:
    cols = [c for c in await _columns(pg, "campaign") if c != "id"]
    over = {"name": "n.name", "cloned_from_id": "NULL"}
    select = ", ".join(over.get(c, f"c.{_q(c)}") for c in cols)
    rows = await pg.fetch(
        f"INSERT INTO campaign ({', '.join(map(_q, cols))}) SELECT {select} FROM campaign c "
        f"CROSS JOIN unnest($1::text[]) WITH ORDINALITY AS n(name, j) WHERE c.id = {unit['src']} ORDER BY n.j "
        "RETURNING id, name", names)
    ids = {r["name"]: r["id"] for r in rows}
    out = [ids[n] for n in names]
    ccols = [c for c in await _columns(pg, "campaign_channel") if c != "id"]
    csel = ", ".join("t.id" if c == "campaign_id" else f"cc.{_q(c)}" for c in ccols)
    await pg.execute(f"INSERT INTO campaign_channel ({', '.join(map(_q, ccols))}) SELECT {csel} FROM campaign_channel cc "
                     f"CROSS JOIN unnest($1::int[]) AS t(id) WHERE cc.campaign_id = {unit['src']}", out)
    return out


async def copy_unit(pg, unit: dict, targets: list[int], tag: str) -> dict:
    """Copy the unit's rows len(targets) times; copy j goes to campaign targets[j-1] (may repeat)."""
    from app.delivery import counters

    t0 = time.perf_counter()
    src = unit["src"]
    n_lead, n_send, n_goal = unit["lead"], unit["send"], unit["goal"]
    await pg.execute("SET session_replication_role = replica; SET synchronous_commit = off; "
                     "SET work_mem = '256MB'; SET maintenance_work_mem = '512MB'")
    await pg.execute("DROP TABLE IF EXISTS _bench_target; CREATE UNLOGGED TABLE _bench_target (j int PRIMARY KEY, "
                     "campaign_id int NOT NULL)")
    await pg.executemany("INSERT INTO _bench_target VALUES ($1, $2)", list(enumerate(targets, 1)))
    base = {}
    for table in ("lead", "send", "goal_event"):
        base[table] = await pg.fetchval(f"SELECT COALESCE(MAX(id), 0) FROM {table}")
    L = f"({base['lead']} + (t.j - 1) * {n_lead} + ul.rn)"
    counts = {}
    timings = {}

    async def step(name, coro):
        s = time.perf_counter()
        counts[name] = await coro
        timings[name] = time.perf_counter() - s

    await step("lead", _insert_copy(
        pg, "lead", "l", {"id": L, "external_id": f"l.external_id || '-{tag}' || t.j"},
        "FROM _bench_target t CROSS JOIN _bench_lead ul JOIN lead l ON l.id = ul.id ORDER BY t.j, ul.rn", skip=()))
    await step("recipient", _insert_copy(
        pg, "recipient", "r", {"campaign_id": "t.campaign_id", "lead_id": L},
        f"FROM _bench_target t CROSS JOIN recipient r JOIN _bench_lead ul ON ul.id = r.lead_id "
        f"WHERE r.campaign_id = {src} ORDER BY t.j, r.id"))
    await step("send", _insert_copy(
        pg, "send", "s", {"id": f"({base['send']} + (t.j - 1) * {n_send} + us.rn)", "campaign_id": "t.campaign_id",
                          "lead_id": L, "external_id": f"s.external_id || '-{tag}' || t.j"},
        "FROM _bench_target t CROSS JOIN _bench_send us JOIN send s ON s.id = us.id "
        "JOIN _bench_lead ul ON ul.id = s.lead_id ORDER BY t.j, us.rn", skip=()))
    await step("goal_event", _insert_copy(
        pg, "goal_event", "g", {"id": f"({base['goal_event']} + (t.j - 1) * {n_goal} + ug.rn)", "lead_id": L,
                                "idempotency_key": f"g.idempotency_key || '-{tag}' || t.j"},
        "FROM _bench_target t CROSS JOIN _bench_goal ug JOIN goal_event g ON g.id = ug.id "
        "JOIN _bench_lead ul ON ul.id = g.lead_id ORDER BY t.j, ug.rn", skip=()))
    await step("attribution", _insert_copy(
        pg, "attribution", "a", {"campaign_id": "t.campaign_id", "lead_id": L,
                                 "goal_event_id": f"({base['goal_event']} + (t.j - 1) * {n_goal} + ug.rn)"},
        f"FROM _bench_target t CROSS JOIN attribution a JOIN _bench_lead ul ON ul.id = a.lead_id "
        f"JOIN _bench_goal ug ON ug.id = a.goal_event_id WHERE a.campaign_id = {src} ORDER BY t.j, a.id"))
    for table in ("lead", "send", "goal_event"):
        await pg.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))")

    # Rollups: a copy's rollups are the unit's. New campaigns get the unit's rows; a campaign
    # receiving k copies on top of its own unit gets the unit's figures x (k + 1).
    s = time.perf_counter()
    per = defaultdict(int)
    for cid in targets:
        per[cid] += 1
    fresh = [cid for cid, k in per.items() if k == 1 and cid != src]
    grown = {cid: k for cid, k in per.items() if cid == src}
    assert len(fresh) + len(grown) == len(per), "a new campaign gets exactly one copy"
    stat_cols = ("sent", "viewed", "clicked", "goals", "revenue_micros")
    out_cols = ("exposed", "engaged", "converters", "conversions", "revenue_micros")
    if fresh:
        await pg.execute(
            f"INSERT INTO campaign_day_stat (organization_id, campaign_id, day, {', '.join(stat_cols)}) "
            f"SELECT d.organization_id, t.id, d.day, {', '.join('d.' + c for c in stat_cols)} "
            "FROM _bench_day d CROSS JOIN unnest($1::int[]) AS t(id)", fresh)
        await pg.execute(
            f"INSERT INTO campaign_outcome (organization_id, campaign_id, \"group\", {', '.join(out_cols)}) "
            f"SELECT o.organization_id, t.id, o.\"group\", {', '.join('o.' + c for c in out_cols)} "
            "FROM _bench_outcome o CROSS JOIN unnest($1::int[]) AS t(id)", fresh)
    for cid, k in grown.items():
        f = k + 1
        await pg.execute(f"UPDATE campaign_day_stat x SET {', '.join(f'{c} = d.{c} * {f}' for c in stat_cols)} "
                         f"FROM _bench_day d WHERE x.campaign_id = {cid} AND x.day = d.day")
        await pg.execute(f"UPDATE campaign_outcome x SET {', '.join(f'{c} = o.{c} * {f}' for c in out_cols)} "
                         f"FROM _bench_outcome o WHERE x.campaign_id = {cid} AND x.\"group\" = o.\"group\"")
        u = unit["campaign"]
        await pg.execute(f"UPDATE campaign SET audience_size = {u['audience_size'] * f}, reach = {u['reach'] * f}, "
                         f"control_size = {u['control_size'] * f} WHERE id = {cid}")
    await pg.execute("SET session_replication_role = origin")
    timings["rollups"] = time.perf_counter() - s
    s = time.perf_counter()
    await counters.rebuild(sorted(per))  # send_counter and campaign spend (SQL GROUP BY)
    timings["counters.rebuild"] = time.perf_counter() - s
    s = time.perf_counter()
    for table in BULK_TABLES:
        await pg.execute(f"VACUUM ANALYZE {table}")
    timings["vacuum analyze"] = time.perf_counter() - s
    return {"counts": counts, "timings": timings, "seconds": time.perf_counter() - t0}


async def facts(pg, campaign_id: int, org_id: int) -> dict:
    q = {
        "org sends": f"SELECT COUNT(*) FROM send WHERE organization_id = {org_id}",
        "org goal events": f"SELECT COUNT(*) FROM goal_event WHERE organization_id = {org_id}",
        "org campaigns": f"SELECT COUNT(*) FROM campaign WHERE organization_id = {org_id}",
        "org leads": f"SELECT COUNT(*) FROM lead WHERE organization_id = {org_id}",
        "recipients (all)": "SELECT COUNT(*) FROM recipient",
        "attributions (all)": "SELECT COUNT(*) FROM attribution",
        "M sends": f"SELECT COUNT(*) FROM send WHERE campaign_id = {campaign_id}",
        "M recipients": f"SELECT COUNT(*) FROM recipient WHERE campaign_id = {campaign_id}",
        "M attributions": f"SELECT COUNT(*) FROM attribution WHERE campaign_id = {campaign_id}",
        "M goal events of its leads": f"SELECT COUNT(*) FROM goal_event g WHERE EXISTS (SELECT 1 FROM recipient r "
                                      f"WHERE r.campaign_id = {campaign_id} AND r.lead_id = g.lead_id)",
        "M day rows": f"SELECT COUNT(*) FROM campaign_day_stat WHERE campaign_id = {campaign_id}",
    }
    return {k: await pg.fetchval(v) for k, v in q.items()}


# ---------------------------------------------------------------- answers (checks)


async def answers(c: h.Client, cid: str) -> dict:
    out = {}
    for name, q in QUERIES.items():
        d = (await c(q, {"id": cid}))["campaign"]
        d.pop("id")
        out[name] = d
    # recipients differ between copies (other leads); compare their shape only
    rec = out["stats"]["stats"].pop("recipients")
    out["recipients_n"] = len(rec["edges"])
    out["recipients_groups"] = sorted(e["node"]["group"] for e in rec["edges"])
    return out


def scaled(a: dict, f: int) -> dict:
    """Phase-0 answers with every count / sum scaled by f (rates and AOVs unchanged)."""
    import copy
    from decimal import Decimal

    x = copy.deepcopy(a)
    st = x["stats"]["stats"]
    for row in [st["totals"], *st["daily"]]:
        for k in ("sent", "viewed", "clicked", "goals"):
            row[k] *= f
        row["revenue"]["amount"] = f"{Decimal(row['revenue']['amount']) * f:.2f}"
    fu = x["funnel"]["funnel"]
    for k in ("prospects", "exposures", "engagements", "conversions"):
        fu[k] *= f
    lf = x["lift"]["lift"]
    for k in ("treatmentSize", "controlSize", "treatmentConversions", "controlConversions"):
        lf[k] *= f
    for k in ("baselineRevenue", "actualRevenue", "incrementalRevenue"):
        lf[k]["amount"] = f"{Decimal(lf[k]['amount']) * f:.2f}"
    lf["incrementalConversions"] *= f
    return x


def without_ci(a: dict) -> dict:
    """The rate difference's confidence interval narrows with the sample size: not a scaled figure."""
    import copy

    x = copy.deepcopy(a)
    for k in ("rateDifferenceCiLow", "rateDifferenceCiHigh", "tooSmall"):
        x["lift"]["lift"].pop(k, None)
    return x


def diff(a: dict, b: dict, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            out += diff(a.get(k), b.get(k), f"{path}.{k}")
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} vs {len(b)} items"]
        out = []
        for i, (x, y) in enumerate(zip(a, b)):
            out += diff(x, y, f"{path}[{i}]")
        return out
    if isinstance(a, float) and isinstance(b, float):
        return [] if abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b)) else [f"{path}: {a} vs {b}"]
    if isinstance(a, str) and isinstance(b, str) and path.endswith("amount"):
        # money is rounded to cents from float figures: allow a cent of rounding per scaled unit
        from decimal import Decimal
        return [] if abs(Decimal(a) - Decimal(b)) <= Decimal("1.00") else [f"{path}: {a} vs {b}"]
    return [] if a == b else [f"{path}: {a!r} vs {b!r}"]


# ---------------------------------------------------------------- measuring


async def measure(c: h.Client, entries: dict, requests: int, budget: float, rng: random.Random):
    """Each entry (label -> (query, variables)) timed up to `requests` times, all interleaved in a
    shuffled order. An entry whose warm-up shows it cannot do `requests` within `budget` seconds
    gets fewer (at least 20): the count used is reported."""
    times: dict[str, list[float]] = defaultdict(list)
    stmts: dict[str, list[h.Stmt]] = defaultdict(list)
    counts = {}
    for label, (q, v) in entries.items():
        for _ in range(2):
            await c(q, v)
        warm = [await c.timed(q, v) for _ in range(3)]
        counts[label] = max(20, min(requests, int(budget / max(sorted(warm)[1], 1e-6))))
    order = [label for label in entries for _ in range(counts[label])]
    rng.shuffle(order)
    for label in order:
        q, v = entries[label]
        with h.recording() as sink:
            times[label].append(await c.timed(q, v))
        stmts[label] += sink
    return {"times": times, "stmts": stmts, "counts": counts}




async def explain_grown(env: h.Env, phases: dict, p: str) -> list[str]:
    """Statements of M's and R's queries whose mean time per request grew >= 3x and by >= 0.5 ms
    since phase 0 — EXPLAIN ANALYZEd right away, while the data is in this phase's shape."""
    out: list[str] = []
    seen = set()
    pairs = [(label, h.per_shape(phases["0"]["stmts"][label], phases["0"]["counts"][label]),
              h.per_shape(phases[p]["stmts"][label], phases[p]["counts"][label]))
             for label in phases[p]["stmts"] if label != "probe"]
    if "goal_probe" in phases[p]:
        g0, gp = phases["0"]["goal_probe"], phases[p]["goal_probe"]
        pairs.append(("goalEventsIngest batch (info)", h.per_shape(g0["stmts"], len(g0["times"])),
                      h.per_shape(gp["stmts"], len(gp["times"]))))
    for label, small, big in pairs:
        for k, (t_big, stmt) in sorted(big.items(), key=lambda kv: -kv[1][0]):
            t_small = small.get(k, (0.0,))[0]
            if t_big - t_small < 0.0005 or t_big < 3 * max(t_small, 1e-6):
                continue
            out.append(f"  [phase {p}, {label}] {t_small * 1000:.2f} ms -> {t_big * 1000:.2f} ms per request: {k}")
            if k in seen:
                out.append("    (same statement as above, other campaign)")
                continue
            seen.add(k)
            out.append(f"    SQL: {stmt.sql}")
            out.append(f"    values: {str(stmt.values)[:300]}")
            out += [f"      {line}" for line in await h.explain(env, stmt)]
    return out


async def goal_probe(c: h.Client, leads: list[str], tag: str, batches: int = 5, size: int = 100) -> dict:
    """goalEventsIngest batches for M's own (original) leads. The goals are dated before the
    campaign started, so they are never attributed and change no rollup (the bulk copies and the
    checks stay exact), while ingestion does all its lookups (recipients, sends, goals, attribution)."""
    rng = random.Random(hash(tag) & 0xFFFF)
    when = datetime.now(timezone.utc) - timedelta(days=3)
    times, stmts = [], []
    for b in range(batches):
        ev = [{"idempotencyKey": f"probe-{tag}-{b}-{i}", "leadId": rng.choice(leads), "goalType": "SALE",
               "value": "10.00", "occurredAt": iso(when + timedelta(minutes=i))} for i in range(size)]
        with h.recording() as sink:
            t0 = time.perf_counter()
            d = await c(GOALS_M, {"e": ev})
            elapsed = time.perf_counter() - t0
        assert d["goalEventsIngest"]["accepted"] == size, d
        if b:  # the first batch warms up
            times.append(elapsed)
            stmts += sink
    return {"times": times, "stmts": stmts}


# ---------------------------------------------------------------- main


async def run(args) -> int:
    rng = random.Random(11)
    started = time.perf_counter()
    log(f"== analytics latency: stats / funnel / lift at 10k vs 1M sends and goal events "
        f"({datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs) ==")
    problems: list[str] = []
    async with running_app() as env:
        s = await seed(env, rng)
        c, m_gid, m_pk = s["client"], s["campaign"], s["campaign_pk"]
        pg = await env.pg()
        try:
            org_id = await pg.fetchval("SELECT organization_id FROM campaign WHERE id = $1", m_pk)
            for table in BULK_TABLES:
                await pg.execute(f"VACUUM ANALYZE {table}")
            unit = await snapshot_unit(pg, m_pk, org_id)
            log(f"  unit (phase-0 rows every copy repeats): {unit['lead']:,} leads, {unit['send']:,} sends, "
                f"{unit['goal']:,} goal events; M audience/reach/control = {unit['campaign']}")

            # Reference campaign R: an SQL copy of M, checked against M and against analytics.rebuild.
            (r_pk,) = await new_campaigns(pg, unit, ["Reference R (copy of M)"])
            await copy_unit(pg, unit, [r_pk], "r")
            r_gid = h.gid("Campaign", r_pk)
            m0 = await answers(c, m_gid)
            r0 = await answers(c, r_gid)
            d = diff(m0, r0)
            log(f"  check: R (SQL copy) answers == M's: {'yes' if not d else 'NO ' + str(d[:5])}")
            if d:
                problems.append(f"copy R differs from M: {d[:5]}")
            from app.analytics import service as analytics

            t0 = time.perf_counter()
            await analytics.rebuild([r_pk])
            rebuild_10k = time.perf_counter() - t0
            d = diff(r0, await answers(c, r_gid))
            log(f"  check: analytics.rebuild([R]) took {rebuild_10k:.1f} s at 10k sends (x 98 campaigns ~ "
                f"{rebuild_10k * 98 / 60:.0f} min); answers unchanged: {'yes' if not d else 'NO ' + str(d[:5])}")
            if d:
                problems.append(f"rebuild changed R: {d[:5]}")
            for table in BULK_TABLES:
                await pg.execute(f"VACUUM ANALYZE {table}")
            f0 = await facts(pg, m_pk, org_id)
        finally:
            await pg.close()

        entries = {}
        for qn, q in QUERIES.items():
            entries[f"{qn} M"] = (q, {"id": m_gid})
            entries[f"{qn} R"] = (q, {"id": r_gid})
        entries["probe"] = (PROBE_Q, None)
        phases: dict[str, dict] = {}
        explained: list[str] = []

        async def phase(name: str, fa: dict, extra: dict | None = None) -> None:
            t0 = time.perf_counter()
            log(f"  phase {name}: measuring {len(entries)} entries (up to {args.requests} requests each, "
                f"interleaved)")
            phases[name] = {"facts": fa, **(extra or {}), **await measure(c, entries, args.requests,
                                                                           args.entry_budget, rng)}
            if args.goal_probe:
                phases[name]["goal_probe"] = await goal_probe(c, s["treatment"], name)
            if name != "0":
                explained.extend(await explain_grown(env, phases, name))
            log(f"    done in {time.perf_counter() - t0:.0f} s")

        await phase("0", f0)

        # (a) the organization grows to ~1M sends / goal events in other campaigns
        pg = await env.pg()
        try:
            n_a = args.copies - 2
            ids = await new_campaigns(pg, unit, [f"Bulk a{j}" for j in range(1, n_a + 1)])
            load_a = await copy_unit(pg, unit, ids, "a")
            fa = await facts(pg, m_pk, org_id)
        finally:
            await pg.close()
        log(f"  (a) bulk-loaded {n_a} other campaigns in {load_a['seconds']:.1f} s "
            f"({', '.join(f'{k} {v:.1f} s' for k, v in load_a['timings'].items())}); rows {load_a['counts']}")
        d = diff(m0, await answers(c, h.gid("Campaign", ids[-1])))
        log(f"  check: a bulk campaign's answers == M's phase-0 answers: {'yes' if not d else 'NO ' + str(d[:5])}")
        if d:
            problems.append(f"bulk campaign differs from M: {d[:5]}")
        d = diff(m0, await answers(c, m_gid))
        if d:
            problems.append(f"M's answers changed in (a): {d[:5]}")
        await phase("a", fa, {"load": load_a})

        if args.grow_campaign:
            pg = await env.pg()
            try:
                k = args.copies - 1
                load_b = await copy_unit(pg, unit, [m_pk] * k, "b")
                fb = await facts(pg, m_pk, org_id)
            finally:
                await pg.close()
            log(f"  (b) bulk-loaded {k} copies into M in {load_b['seconds']:.1f} s "
                f"({', '.join(f'{k} {v:.1f} s' for k, v in load_b['timings'].items())}); rows {load_b['counts']}")
            mb = await answers(c, m_gid)
            d = diff(without_ci(scaled(m0, args.copies)), without_ci(mb))
            log(f"  check: M's answers == phase-0 answers x {args.copies}: {'yes' if not d else 'NO ' + str(d[:5])}")
            if d:
                problems.append(f"M at (b) is not phase 0 x {args.copies}: {d[:5]}")
            await phase("b", fb, {"load": load_b})

        report(phases, args)
        shapes(phases)
        log("\n== EXPLAIN ANALYZE of statements whose time per request grew >= 3x and by >= 0.5 ms "
            "(run right after each phase's measurement) ==")
        for line in explained or ["  none"]:
            log(line)

        if args.grow_campaign and args.try_fix:
            await try_fix(env, c, phases, entries, args, rng)

        if args.grow_campaign and args.rebuild_probe:
            log(f"\n  rebuild probe: analytics.rebuild([M]) at {fb['M sends']:,} sends, "
                f"{args.rebuild_probe:.0f} s limit (rolled back if it fails or runs out of time)")
            t0 = time.perf_counter()
            try:
                await asyncio.wait_for(analytics.rebuild([m_pk]), args.rebuild_probe)
                log(f"    finished in {time.perf_counter() - t0:.1f} s")
                d = diff(mb, await answers(c, m_gid))
                log(f"    answers after rebuild == bulk-loaded rollups: {'yes' if not d else 'NO ' + str(d[:5])}")
            except asyncio.TimeoutError:
                log(f"    not finished after {time.perf_counter() - t0:.1f} s (10k took {rebuild_10k:.1f} s)")
            except Exception as exc:  # noqa: BLE001 - evidence
                log(f"    failed after {time.perf_counter() - t0:.1f} s: {type(exc).__name__}: {str(exc)[:300]}")
    log(f"\n  total time {time.perf_counter() - started:.0f} s")
    for p in problems:
        log(f"  PROBLEM: {p}")
    return 1 if problems else 0


FIX_INDEXES = (
    "CREATE INDEX bench_fix_send_campaign_lead ON send (campaign_id, lead_id)",
    "CREATE INDEX bench_fix_recipient_campaign_id ON recipient (campaign_id, id)",
)


async def try_fix(env: h.Env, c: h.Client, phases: dict, entries: dict, args, rng: random.Random) -> None:
    """The proposed fix, tried in the throwaway database only (product code untouched)."""
    log("\n== proposed fix, tried in this throwaway database: two indexes ==")
    pg = await env.pg()
    try:
        for ddl in FIX_INDEXES:
            t0 = time.perf_counter()
            await pg.execute(ddl)
            log(f"  {ddl}  ({time.perf_counter() - t0:.1f} s)")
        await pg.execute("ANALYZE send; ANALYZE recipient")
    finally:
        await pg.close()
    sub = {k: v for k, v in entries.items() if k in ("stats M", "stats R", "funnel M", "probe")}
    fixed = await measure(c, sub, min(args.requests, 100), args.entry_budget, rng)
    z, b = phases["0"], phases["b"]

    def f(x):
        return f"{x * 1000:.1f}"
    for label in sub:
        s0, sb, sf = h.summary(z["times"][label]), h.summary(b["times"][label]), h.summary(fixed["times"][label])
        log(f"  {label:<8} p50/p95 ms: 10k {f(s0['p50'])}/{f(s0['p95'])}   (b) {f(sb['p50'])}/{f(sb['p95'])}   "
            f"(b) + indexes {f(sf['p50'])}/{f(sf['p95'])} (n={fixed['counts'][label]})   ratio to 10k "
            f"{sf['p50'] / s0['p50']:.2f}/{sf['p95'] / s0['p95']:.2f}")
    fs = {k: h.summary(v) for k, v in fixed["times"].items()}
    zs = {k: h.summary(v) for k, v in z["times"].items()}
    log(f"  same moment, with the indexes: stats M (1M) / stats R (10k) = {fs['stats M']['p50'] / fs['stats R']['p50']:.2f}"
        f"/{fs['stats M']['p95'] / fs['stats R']['p95']:.2f} (p50/p95); stats M / funnel M (a query that does not "
        f"depend on the data) = {fs['stats M']['p50'] / fs['funnel M']['p50']:.2f} vs "
        f"{zs['stats M']['p50'] / zs['funnel M']['p50']:.2f} at 10k (p50)")
    for label, tables in (("stats M", ('FROM "send"', 'FROM "recipient"')), ("stats R", ('FROM "recipient"',))):
        per = h.per_shape(fixed["stmts"][label], fixed["counts"][label])
        before = h.per_shape(b["stmts"][label], b["counts"][label])
        for k, (t, stmt) in per.items():
            if any(x in stmt.sql for x in tables):
                log(f"  {label}: {before.get(k, (0.0,))[0] * 1000:.2f} ms per request at (b) -> {t * 1000:.2f} ms "
                    f"with the indexes: {k}")
                for line in await h.explain(env, stmt):
                    log(f"      {line}")


def report(phases: dict, args) -> None:
    def f(x):
        return f"{x * 1000:.1f}"

    log("\n== results (ms; p50/p95; ratios p50/p95) ==")
    for name, ph in phases.items():
        fa = ph["facts"]
        log(f"  phase {name}: org sends {fa['org sends']:,}, org goal events {fa['org goal events']:,}, "
            f"campaigns {fa['org campaigns']}, recipients {fa['recipients (all)']:,}, attributions "
            f"{fa['attributions (all)']:,}; M: sends {fa['M sends']:,}, recipients {fa['M recipients']:,}, "
            f"attributions {fa['M attributions']:,}, day rows {fa['M day rows']}; requests per entry "
            f"{min(ph['counts'].values())}..{max(ph['counts'].values())}")
    s = {p: {k: h.summary(v) for k, v in ph["times"].items()} for p, ph in phases.items()}
    has_b = "b" in phases
    head = f"  {'query':<7} {'M @10k':>13} {'(a) org 1M':>13} {'(a)/10k':>11}"
    if has_b:
        head += f" {'(b) M 1M':>13} {'(b)/10k':>11} {'M/R @ (b)':>11}"
    log(head + "   target: 1M/10k < %.1f" % TARGET)
    drift = {p: s[p]["probe"]["p50"] / s["0"]["probe"]["p50"] for p in phases}
    drift95 = {p: s[p]["probe"]["p95"] / s["0"]["probe"]["p95"] for p in phases}
    for qn in [*QUERIES, "probe"]:
        key = f"{qn} M" if qn != "probe" else "probe"
        z, a = s["0"][key], s["a"][key]
        ra = (a["p50"] / z["p50"], a["p95"] / z["p95"])
        line = f"  {qn:<7} {f(z['p50']):>6}/{f(z['p95']):<6} {f(a['p50']):>6}/{f(a['p95']):<6} " \
               f"{ra[0]:>5.2f}/{ra[1]:<5.2f}"
        worst = [max(ra)]
        corrected = [max(ra[0] / drift["a"], ra[1] / drift95["a"])]
        side = 0.0
        if has_b:
            b = s["b"][key]
            rb = (b["p50"] / z["p50"], b["p95"] / z["p95"])
            line += f" {f(b['p50']):>6}/{f(b['p95']):<6} {rb[0]:>5.2f}/{rb[1]:<5.2f}"
            worst.append(max(rb))
            corrected.append(max(rb[0] / drift["b"], rb[1] / drift95["b"]))
            if qn != "probe":
                rr = s["b"][f"{qn} R"]
                side = max(b["p50"] / rr["p50"], b["p95"] / rr["p95"])
                line += f" {b['p50'] / rr['p50']:>5.2f}/{b['p95'] / rr['p95']:<5.2f}"
        if qn == "probe":
            line += "   noise gauge (no data dependence): machine drift since phase 0"
        else:
            if max(worst) < TARGET:
                line += "   meets"
            elif max(corrected) < TARGET and side < TARGET:
                line += (f"   raw miss, but drift-corrected worst {max(corrected):.2f}" +
                         (f" and M/R {side:.2f}" if has_b else "") + ": machine noise, not data size")
            else:
                line += "   MISSES"
        log(line)
    log("  drift-corrected p50 ratios (query ratio / probe ratio): " + "; ".join(
        f"{qn} " + ", ".join(f"({p}) {s[p][qn + ' M']['p50'] / s['0'][qn + ' M']['p50'] / drift[p]:.2f}"
                             for p in phases if p != "0") for qn in QUERIES))
    log("  R (a copy of M that stays at 10k), p50/p95 per phase:")
    for qn in QUERIES:
        log(f"    {qn:<7} " + "   ".join(f"{p}: {f(s[p][qn + ' R']['p50'])}/{f(s[p][qn + ' R']['p95'])}"
                                        for p in phases))
    if all("goal_probe" in ph for ph in phases.values()):
        log("  goalEventsIngest, 100 events for M's leads per batch (info, no target), p50/p95 over "
            f"{len(phases['0']['goal_probe']['times'])} batches: " + "   ".join(
                f"{p}: {f(h.pct(ph['goal_probe']['times'], 50))}/{f(h.pct(ph['goal_probe']['times'], 95))}"
                for p, ph in phases.items()))


def shapes(phases: dict) -> None:
    log("\n== SQL time per request for M, by statement (mean ms; phase " + " -> ".join(phases) + ") ==")
    labels = [f"{qn} M" for qn in QUERIES]
    blocks = [(label, {p: h.per_shape(ph["stmts"][label], ph["counts"][label]) for p, ph in phases.items()})
              for label in labels]
    if all("goal_probe" in ph for ph in phases.values()):
        blocks.append(("goalEventsIngest batch (info)", {
            p: h.per_shape(ph["goal_probe"]["stmts"], len(ph["goal_probe"]["times"])) for p, ph in phases.items()}))
    for label, per in blocks:
        n = len(per["0"])
        log(f"  [{label}] {n} statement shapes")
        keys = sorted(set().union(*[set(v) for v in per.values()]),
                      key=lambda k: -max(v.get(k, (0,))[0] for v in per.values()))
        for k in keys[:10]:
            log("    " + " -> ".join(f"{per[p].get(k, (0.0,))[0] * 1000:7.2f}" for p in per) + f"  {k}")


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    p = argparse.ArgumentParser(prog="python -m bench.analytics", description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=200, help="timed requests per query, campaign and phase")
    p.add_argument("--entry-budget", type=float, default=15.0,
                   help="seconds per query, campaign and phase; slower queries get fewer requests (>= 20)")
    p.add_argument("--copies", type=int, default=100, help="the 10k unit x copies = the big size (default 100 -> 1M)")
    p.add_argument("--no-grow-campaign", dest="grow_campaign", action="store_false",
                   help="skip phase (b) (the measured campaign itself grows to 1M)")
    p.add_argument("--no-goal-probe", dest="goal_probe", action="store_false",
                   help="skip the goalEventsIngest probe (info) of each phase")
    p.add_argument("--no-fix", dest="try_fix", action="store_false",
                   help="skip trying the proposed indexes at the end")
    p.add_argument("--rebuild-probe", type=float, default=0.0, metavar="SECONDS",
                   help="at the end, try analytics.rebuild on the 1M campaign for this long (default: skip)")
    sys.exit(asyncio.run(run(p.parse_args())))


if __name__ == "__main__":
    main()
