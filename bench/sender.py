"""Sender benchmarks: `python -m bench.sender [dispatch|ingest|all]`.

Each run creates throwaway PostgreSQL databases next to the admin URL
(PULSE_BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test),
`<PULSE_BENCH_DB_PREFIX, default pulse_bench>_sender_<pid>_<n>`, migrates them with `app.db.run_migrations`
and drops them at the end (`--keep` keeps them for inspection).

1. dispatch — end-to-end throughput of the sender with the simulated
   provider: real `python -m app.cli worker` processes (1, then 2) against the
   bench database. A SCHEDULED-type campaign on EMAIL+SMS (unit costs, a
   budget and credits per message, so reservations and wallet consumption are
   exercised) with N recipients (2·N messages) is launched once the workers
   are up; the clock runs from the launch's commit until every job is done
   and no send of the campaign is PENDING any more (delivered, bounced or
   failed). Every run gets its own fresh database (same starting point for
   1 and 2 workers); with --dispatch-rounds > 1 the runs go in ABBA order.

2. ingest — `ingest_send_events` (validation, idempotency, send creation,
   event history replay, live counters, budget spend/alerts, change log) with
   batches of 1,000 events (SENT + DELIVERED for 500 new sends naming their
   campaign and lead) versus the raw rate of inserting the same rows without
   any of that (`Send.bulk_create` of the 500 sends in their final state, one
   SELECT for their ids, `SendEvent.bulk_create` of the 1,000 events, in one
   transaction: what ingest also has to do at the minimum). Rounds alternate
   accounted/raw, side by side in one process; medians are reported.

Alongside the rates, each run prints CPU seconds per message / per 1,000
events (the worker or bench process and its PostgreSQL backends, from
/proc) and the machine's CPU stall share (PSI): on a busy shared machine the
rates fall with contention, the CPU costs much less so. Lock waits of the
bench database's backends are sampled during the dispatch runs.

Planner statistics are refreshed (ANALYZE, outside the timings) before each
round, as autovacuum would on a long-lived database; `--no-analyze` leaves
the fast-growing fresh tables with stale estimates instead (the bench prints
whether the server runs autovacuum at all).

Figures are ratios measured side by side in one run on a shared machine:
compare them with each other, not with absolute targets.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/test"


# ---------------------------------------------------------------- database


def admin_url() -> str:
    return os.environ.get("PULSE_BENCH_DATABASE_URL", DEFAULT_ADMIN_URL)


def _asyncpg_url(url: str) -> str:
    return re.sub(r"^postgres(ql)?://", "postgresql://", url)


_DB_SEQ = [0]
_URL = [""]  # the current bench database


def db_prefix() -> str:
    """Bench database names start with this (PULSE_BENCH_DB_PREFIX, default `pulse_bench`): sessions
    sharing one PostgreSQL server pick their own and never collide."""
    return re.sub(r"[^a-z0-9_]", "_", os.environ.get("PULSE_BENCH_DB_PREFIX", "pulse_bench").lower())


def broadcast_url() -> str:
    """The workers' bus (a worker process refuses the in-process `memory://` bus)."""
    return os.environ.get("PULSE_BENCH_BROADCAST_URL", "redis://127.0.0.1:6379/0")


async def create_database() -> tuple[str, str]:
    _DB_SEQ[0] += 1
    name = f"{db_prefix()}_sender_{os.getpid()}_{_DB_SEQ[0]}"
    conn = await asyncpg.connect(_asyncpg_url(admin_url()))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    parts = urlsplit(admin_url())
    url = urlunsplit(("postgres", parts.netloc, "/" + name, parts.query, parts.fragment))
    return url, name


async def drop_database(name: str) -> None:
    conn = await asyncpg.connect(_asyncpg_url(admin_url()))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def fresh_database(keep: bool = False):
    """A new database, migrated, with Tortoise connected to it; dropped afterwards (unless keep)."""
    from tortoise import Tortoise

    from app import db
    from app.settings import Settings
    from app.wiring import wire

    wire()  # the bench calls the domains directly: their hooks must be registered, as create_app does
    url, name = await create_database()
    try:
        await db.run_migrations(url)
        await db.init_db(Settings(database_url=url, broadcast_url="memory://", auto_migrate=False,
                                  worker_in_process=False), migrate=False)
        yield url, name
    finally:
        await Tortoise.close_connections()
        if keep:
            print(f"  kept database {name}: {url}")
        else:
            await drop_database(name)


# ---------------------------------------------------------------- setup through the services


class Org:
    def __init__(self, org_id: int, owner, integration) -> None:
        self.id = org_id
        self.owner = owner  # Principal (OWNER, organization scope)
        self.integration = integration  # Principal (INTEGRATION, organization scope)


async def make_org(name: str) -> Org:
    from app.tenancy.access import principal_for_user
    from app.sender.service import system_principal
    from app.tenancy.service import create_organization

    issued = await create_organization(name, f"owner@{name}.bench", "EUR", "UTC")
    owner = await principal_for_user(issued.user)
    return Org(issued.user.organization_id, owner, system_principal(issued.user.organization_id))


async def make_leads(org: Org, prefix: str, n: int) -> list[int]:
    from app.audience.leads import LeadData, upsert_leads

    ids: list[int] = []
    for start in range(0, n, 5000):
        leads = await upsert_leads(org.owner, [
            LeadData(external_id=f"{prefix}-{i}", name=f"Lead {prefix} {i}", email=f"{prefix}-{i}@bench.test",
                     phone=f"+3361{i:07d}") for i in range(start, min(n, start + 5000))])
        ids += [lead.id for lead in leads]
    return ids


async def make_campaign(org: Org, name: str, lead_ids: list[int], *, launch: bool = True) -> int:
    from app.campaigns.service import CampaignData, ChannelData, create_campaign, set_audience, transition
    from models.enums import CampaignType, Channel

    campaign = await create_campaign(org.owner, CampaignData(
        name=name, type=CampaignType.SCHEDULED, budget="10000000", control_group_percent=0,
        channels=[ChannelData(Channel.EMAIL, unit_cost="0.01", credits_per_message=1),
                  ChannelData(Channel.SMS, unit_cost="0.05", credits_per_message=1)]))
    await set_audience(org.owner, campaign.id, lead_ids, None, None)
    if launch:
        await transition(org.owner, campaign.id, "launch")
    return campaign.id


async def top_up(org: Org, amount: int) -> None:
    from app.billing import credits
    from models.enums import CreditSource

    for source in (CreditSource.EMAIL, CreditSource.SMS):
        await credits.top_up(org.owner, source, amount, "bench")


# ---------------------------------------------------------------- 1. dispatch


class WorkerProcess:
    """One `python -m app.cli worker` subprocess; output to a log file."""

    def __init__(self, url: str, log_dir: Path, name: str, env: dict[str, str]) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "wb")
        full_env = {**os.environ, "PULSE_DATABASE_URL": url, "PULSE_BROADCAST_URL": broadcast_url(),
                    # a channel prefix of this run's own: other runs on the same Redis never hear it
                    "PULSE_CHANNEL_PREFIX": f"{db_prefix()}-sender-{os.getpid()}:",
                    "PULSE_AUTO_MIGRATE": "false", "PULSE_LOG_LEVEL": "warning", **env}
        self.proc = subprocess.Popen([sys.executable, "-m", "app.cli", "worker"], cwd=ROOT, env=full_env,
                                     stdout=self._log, stderr=subprocess.STDOUT)

    def output(self, tail: int = 3000) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")[-tail:]

    async def ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while "worker started" not in self.output():
            self.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"worker {self.name} did not start:\n{self.output()}")
            await asyncio.sleep(0.05)

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"worker {self.name} exited {self.proc.returncode}:\n{self.output()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()


async def _progress(pg, cid: int) -> dict:
    """On the bench's own connection, sequential scans priced out: the bench's polling (every
    50 ms) never counts among the workers' sequential scans of `send`."""
    row = await pg.fetchrow(
        "SELECT (SELECT COUNT(*) FROM send_job WHERE campaign_id = $1 AND state = 'READY') AS ready, "
        "COUNT(*) AS sends, COUNT(*) FILTER (WHERE status = 'PENDING') AS pending "
        "FROM send WHERE campaign_id = $1", cid)
    return {k: int(v or 0) for k, v in row.items()}


async def _check_campaign(cid: int, expected: int) -> list[str]:
    """Exactly one message per recipient and channel, nothing PENDING, counters match the sends,
    reservations back to zero, wallets equal their ledgers."""
    from app.db import fetch

    problems = []
    s = (await fetch(
        "SELECT COUNT(*) AS n, COUNT(DISTINCT (lead_id, channel)) AS pairs, "
        "COUNT(*) FILTER (WHERE status = 'PENDING') AS pending, "
        "COALESCE(SUM(CASE WHEN was_sent THEN cost_micros ELSE 0 END), 0) AS cost "
        "FROM send WHERE campaign_id = ?", [cid]))[0]
    c = (await fetch("SELECT COALESCE(SUM(generated), 0) AS generated, COALESCE(SUM(pending), 0) AS pending, "
                     "COALESCE(SUM(cost_micros), 0) AS cost FROM send_counter WHERE campaign_id = ?", [cid]))[0]
    camp = (await fetch("SELECT reserved_micros, spent_micros FROM campaign WHERE id = ?", [cid]))[0]
    if int(s["n"]) != expected or int(s["pairs"]) != expected:
        problems.append(f"campaign {cid}: {s['n']} sends / {s['pairs']} pairs, expected {expected}")
    if int(s["pending"]) or int(c["pending"]):
        problems.append(f"campaign {cid}: pending sends {s['pending']}, counter {c['pending']}")
    if int(c["generated"]) != int(s["n"]) or int(c["cost"]) != int(s["cost"]):
        problems.append(f"campaign {cid}: counters generated {c['generated']} cost {c['cost']} vs sends "
                        f"{s['n']} / {s['cost']}")
    if int(camp["reserved_micros"]) != 0 or int(camp["spent_micros"]) != int(s["cost"]):
        problems.append(f"campaign {cid}: reserved {camp['reserved_micros']}, spent {camp['spent_micros']} "
                        f"(sends cost {s['cost']})")
    bad = await fetch("SELECT w.id, w.balance, COALESCE(SUM(e.amount), 0) AS ledger FROM credit_wallet w "
                      "LEFT JOIN credit_entry e ON e.wallet_id = w.id GROUP BY w.id, w.balance "
                      "HAVING w.balance <> COALESCE(SUM(e.amount), 0) OR w.balance < 0")
    problems += [f"wallet {r['id']}: balance {r['balance']} != ledger {r['ledger']}" for r in bad]
    return problems


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_seconds(pid: int) -> float | None:
    """utime + stime of a local process (Linux /proc), or None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS
    except (OSError, IndexError, ValueError):
        return None


def _cpu_pressure_us() -> int | None:
    """Total time (µs) some runnable task waited for a CPU (Linux PSI), or None."""
    try:
        line = Path("/proc/pressure/cpu").read_text().splitlines()[0]
        return int(line.rsplit("total=", 1)[1])
    except (OSError, IndexError, ValueError):
        return None


def _stall(p0: int | None, seconds: float) -> str:
    p1 = _cpu_pressure_us()
    if p0 is None or p1 is None or seconds <= 0:
        return "n/a"
    return f"{(p1 - p0) / 1e6 / seconds * 100:.0f}%"


async def _backend_pids(include_self: bool = False) -> list[int]:
    from app.db import fetch

    rows = await fetch("SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                       + ("" if include_self else " AND pid <> pg_backend_pid()"))
    return [r["pid"] for r in rows]


async def _cpu_snapshot(workers: list[WorkerProcess]) -> dict[str, dict[int, float]]:
    snap: dict[str, dict[int, float]] = {"workers": {}, "postgres": {}}
    for kind, pids in (("workers", [w.proc.pid for w in workers]), ("postgres", await _backend_pids())):
        for pid in pids:
            cpu = _cpu_seconds(pid)
            if cpu is not None:
                snap[kind][pid] = cpu
    return snap


def _cpu_delta(before: dict, after: dict) -> dict[str, float]:
    return {kind: sum(v - before[kind].get(pid, 0.0) for pid, v in after[kind].items()) for kind in after}


async def _lock_waits() -> list[str]:
    """What the bench database's backends are waiting for on heavyweight locks right now."""
    from app.db import fetch

    rows = await fetch("SELECT left(regexp_replace(query, '\\s+', ' ', 'g'), 70) AS q FROM pg_stat_activity "
                       "WHERE datname = current_database() AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'")
    return [r["q"] for r in rows]


async def _dispatch_round(url: str, org: Org, tag: str, n_workers: int, recipients: int, log_dir: Path,
                          env: dict[str, str], timeout: float, fresh_stats: bool) -> dict:
    from collections import Counter

    from app.db import fetch
    from app.campaigns.service import transition

    lead_ids = await make_leads(org, tag, recipients)
    cid = await make_campaign(org, f"Dispatch {tag}", lead_ids, launch=False)
    if fresh_stats:
        await analyze()
    expected = 2 * recipients
    workers = [WorkerProcess(url, log_dir, f"{tag}-w{k}", env) for k in range(n_workers)]
    waits: Counter[str] = Counter()
    polls = 0
    pg = await asyncpg.connect(_asyncpg_url(url))
    await pg.execute("SET enable_seqscan = off")
    try:
        for w in workers:
            await w.ready()
        await asyncio.sleep(1.2)  # statistics of the setup flushed (PostgreSQL 15: at most every second)
        scans0 = await _send_scans(pg)
        l0 = time.perf_counter()
        await transition(org.owner, cid, "launch")  # recipients + jobs + LIVE in one transaction
        t0 = time.perf_counter()
        psi0 = _cpu_pressure_us()
        cpu0 = await _cpu_snapshot(workers)
        samples: list[tuple[float, int]] = []
        deadline = t0 + timeout
        while True:
            p = await _progress(pg, cid)
            now = time.perf_counter()
            done = p["sends"] - p["pending"]
            samples.append((now - t0, done))
            if p["ready"] == 0 and p["sends"] >= expected and p["pending"] == 0:
                break
            polls += 1
            waits.update(await _lock_waits())
            for w in workers:
                w.check_alive()
            if now > deadline:
                logs = "\n".join(f"--- {w.name} ({w.log_path}) tail:\n{w.output(4000)}" for w in workers)
                raise RuntimeError(f"dispatch {tag}: timed out after {timeout}s at {p}\n{logs}")
            await asyncio.sleep(0.05)
        wall = time.perf_counter() - t0
        cpu = _cpu_delta(cpu0, await _cpu_snapshot(workers))
        stall = _stall(psi0, wall)
    finally:
        for w in workers:
            w.stop()
    await asyncio.sleep(1.2)  # the workers' backends have exited and flushed their statistics
    scans = {k: v - scans0[k] for k, v in (await _send_scans(pg)).items()}
    await pg.close()
    row = (await fetch("SELECT COUNT(*) FILTER (WHERE status = 'DELIVERED') AS delivered, "
                       "COUNT(*) FILTER (WHERE status = 'BOUNCED') AS bounced, "
                       "COUNT(*) FILTER (WHERE status = 'FAILED') AS failed FROM send WHERE campaign_id = ?", [cid]))[0]
    events = (await fetch("SELECT COUNT(*) AS n FROM send_event e JOIN send s ON s.id = e.send_id "
                          "WHERE s.campaign_id = ?", [cid]))[0]["n"]
    half = next((t for t, d in samples if d >= expected / 2), wall)
    problems = await _check_campaign(cid, expected)
    errors = sum(w.output(10**7).count("Traceback") for w in workers)
    if errors:
        problems.append(f"{errors} tracebacks in worker logs ({', '.join(str(w.log_path) for w in workers)})")
    return {"workers": n_workers, "messages": expected, "wall": wall, "msgs_per_s": expected / wall,
            "launch_s": t0 - l0, "events": int(events), "half_s": half, "delivered": int(row["delivered"]),
            "bounced": int(row["bounced"]), "failed": int(row["failed"]), "problems": problems,
            "cpu": cpu, "polls": polls, "waits": waits, "stall": stall, "scans": scans}


async def _send_scans(pg) -> dict[str, int]:
    row = await pg.fetchrow("SELECT seq_scan, seq_tup_read, idx_scan FROM pg_stat_user_tables WHERE relname = 'send'")
    return {k: int(v or 0) for k, v in row.items()}


async def preload(org: "Org", n: int) -> None:
    """`n` finished system sends (DELIVERED, handed off, no lease) of an older campaign, as a
    long-lived database holds: the dispatch statements must not read them."""
    if n <= 0:
        return
    from models.credits import SendJob

    leads = await make_leads(org, "old", 100)
    old = await make_campaign(org, "Old", leads, launch=True)
    await SendJob.filter(campaign_id=old).update(state="QUEUED")
    pg = await asyncpg.connect(_asyncpg_url(_URL[0]))
    try:
        await pg.execute(
            "INSERT INTO send (organization_id, campaign_id, lead_id, channel, center_key, day, external_id, status, "
            "was_sent, cost_micros, credits, queued_at, sent_at, delivered_at, system, provider, reserved_micros, "
            "dispatch_after, dispatch_attempts, updated_at) "
            "SELECT $1::int8, $2::int8, ($3::int8[])[1 + g % 100], CASE WHEN g % 2 = 0 THEN 'EMAIL' ELSE 'SMS' END, 0, current_date, "
            "'cp-old-' || g, 'DELIVERED', true, 10000, 1, now() - interval '3 days', now() - interval '3 days', "
            "now() - interval '3 days', true, 'simulated', 0, NULL, 1, now() FROM generate_series(1, $4::int) g",
            org.id, old, leads, n)
        await pg.execute("VACUUM ANALYZE send")
    finally:
        await pg.close()


async def run_dispatch(recipients: int, rounds: int, env: dict[str, str], timeout: float, fresh_stats: bool,
                       keep: bool, counts: tuple[int, ...] = (1, 2), preloaded: int = 0) -> dict:
    order = []
    for r in range(rounds):  # ABBA: 1,2,4,4,2,1,1,2,4,...
        order += list(counts) if r % 2 == 0 else list(reversed(counts))
    results: dict[int, list[dict]] = {n: [] for n in counts}
    print(f"\n== dispatch: {recipients} recipients × EMAIL+SMS = {2 * recipients} messages per campaign, each run in "
          f"a fresh database holding {preloaded} finished sends beforehand; order {''.join(map(str, order))} (workers); env "
          + " ".join(f"{k}={v}" for k, v in sorted(env.items())))
    with tempfile.TemporaryDirectory(prefix="pulse-bench-sender-") as tmp:
        for i, n in enumerate(order):
            async with fresh_database(keep) as (url, _name):
                org = await make_org("bench-dispatch")
                await top_up(org, 10**9)
                _URL[0] = url
                await preload(org, preloaded)
                r = await _dispatch_round(url, org, f"d{i}w{n}", n, recipients, Path(tmp), env, timeout, fresh_stats)
            scans = r["scans"]
            results[n].append(r)
            cpu = r["cpu"]
            waiting = sum(r["waits"].values()) / max(1, r["polls"])
            print(f"  round {i + 1}: {n} worker{'s' if n > 1 else ' '} {r['messages']} msgs in {r['wall']:6.2f} s "
                  f"= {r['msgs_per_s']:5.0f} msgs/s (half done at {r['half_s']:.1f} s; "
                  f"launch took {r['launch_s']:.1f} s; "
                  f"{r['events']} events; delivered {r['delivered']}, bounced {r['bounced']}, failed {r['failed']})"
                  + (f"  PROBLEMS: {r['problems']}" if r["problems"] else ""))
            print(f"           CPU: workers {cpu['workers'] / r['messages'] * 1000:.2f} ms/msg "
                  f"({cpu['workers'] / r['wall'] * 100:.0f}% of one core), their postgres backends "
                  f"{cpu['postgres'] / r['messages'] * 1000:.2f} ms/msg ({cpu['postgres'] / r['wall'] * 100:.0f}%); "
                  f"machine CPU stall (PSI some) {r['stall']}; backends waiting on a lock: {waiting:.2f} on average"
                  + ("; most: " + "; ".join(f"{c}× {q}" for q, c in r["waits"].most_common(2)) if r["waits"] else ""))
            print(f"           table send, the workers' statements from launch to done: {scans['seq_scan']} "
                  f"sequential scans reading "
                  f"{scans['seq_tup_read']} rows ({scans['seq_tup_read'] / r['messages']:.0f} rows per message), "
                  f"{scans['idx_scan']} index scans")
    rate = {n: statistics.median(r["msgs_per_s"] for r in rs) for n, rs in results.items()}
    cpu_msg = {n: statistics.median((r["cpu"]["workers"] + r["cpu"]["postgres"]) / r["messages"] for r in rs)
               for n, rs in results.items()}
    scans = {n: statistics.median(r["scans"]["seq_scan"] for r in rs) for n, rs in results.items()}
    return {"rate": rate, "results": results, "cpu_msg": cpu_msg, "seq_scans": scans,
            "problems": [p for rs in results.values() for r in rs for p in r["problems"]]}


# ---------------------------------------------------------------- 2. ingest vs raw insert


def _pair(leads: list[int], k: int):
    """The k-th send of a side: one send per lead and channel (like a real campaign), never reused."""
    from models.enums import Channel

    return leads[k // 2], (Channel.EMAIL if k % 2 == 0 else Channel.SMS)


def _events_for(cid: int, leads: list[int], prefix: str, first: int, n_sends: int, t0: datetime):
    from app.delivery.ingest import SendEventData
    from models.enums import SendEventType

    out = []
    for i in range(n_sends):
        ext = f"{prefix}-{i}"
        lead, channel = _pair(leads, first + i)
        at = t0 + timedelta(milliseconds=i)
        out.append(SendEventData(idempotency_key=f"{ext}:sent", external_id=ext, channel=channel,
                                 type=SendEventType.SENT, occurred_at=at + timedelta(seconds=1),
                                 campaign_id=cid, lead_id=lead))
        out.append(SendEventData(idempotency_key=f"{ext}:delivered", external_id=ext, channel=channel,
                                 type=SendEventType.DELIVERED, occurred_at=at + timedelta(seconds=3),
                                 campaign_id=cid, lead_id=lead))
    return out


async def _accounted_batch(org: Org, cid: int, leads: list[int], prefix: str, first: int, n_sends: int,
                           t0: datetime) -> None:
    from app.delivery.ingest import ingest_send_events

    events = _events_for(cid, leads, prefix, first, n_sends, t0)
    r = await ingest_send_events(org.integration, events)
    if r.accepted != len(events) or r.rejected:
        raise RuntimeError(f"ingest batch {prefix}: accepted {r.accepted}/{len(events)}, rejected {r.rejected[:3]}")


def _final_sends(leads: list[int], prefix: str, first: int, n_sends: int, t0: datetime) -> list[dict]:
    """The sends of a raw side in their final state (what the accounted side's events lead to)."""
    from models.enums import Channel, SendStatus

    out = []
    for i in range(n_sends):
        lead, channel = _pair(leads, first + i)
        at = t0 + timedelta(milliseconds=i)
        out.append(dict(lead_id=lead, channel=channel, day=at.date(), external_id=f"{prefix}-{i}",
                        status=SendStatus.DELIVERED, was_sent=True,
                        cost_micros=10_000 if channel == Channel.EMAIL else 50_000, credits=1,
                        queued_at=at + timedelta(seconds=1), sent_at=at + timedelta(seconds=1),
                        delivered_at=at + timedelta(seconds=3)))
    return out


def _final_events(send: dict):
    """(idempotency key, payload hash, type, occurred at) of a raw side's send's two events."""
    from models.enums import SendEventType

    for kind, at in ((SendEventType.SENT, send["sent_at"]), (SendEventType.DELIVERED, send["delivered_at"])):
        key = f"{send['external_id']}:{kind.value.lower()}"
        yield key, hashlib.sha256(key.encode()).hexdigest(), kind, at


async def _raw_batch(org: Org, cid: int, leads: list[int], prefix: str, first: int, n_sends: int, t0: datetime) -> None:
    """The same sends (final state) and events, inserted plainly: no validation, no idempotency check,
    no replay, no counters, no spend, no change log."""
    from tortoise.transactions import in_transaction

    from models.sends import Send, SendEvent

    final = _final_sends(leads, prefix, first, n_sends, t0)
    sends = [Send(organization_id=org.id, campaign_id=cid, center_key=0, **f) for f in final]
    async with in_transaction():
        await Send.bulk_create(sends, batch_size=1000)
        ids = dict(await Send.filter(organization_id=org.id, external_id__in=[s.external_id for s in sends])
                   .values_list("external_id", "id"))
        await SendEvent.bulk_create([
            SendEvent(organization_id=org.id, send_id=ids[f["external_id"]], idempotency_key=key, payload_hash=digest,
                      type=kind, occurred_at=at)
            for f in final for key, digest, kind, at in _final_events(f)], batch_size=1000)


async def _raw_bulk_batch(org: Org, cid: int, leads: list[int], prefix: str, first: int, n_sends: int,
                          t0: datetime) -> None:
    """The strongest plain insert of the same rows: the sends (final state) with one
    `INSERT … SELECT unnest(…) RETURNING id` and the events with one more, in one transaction: the
    statements ingest's write path itself uses, without anything else."""
    from tortoise.transactions import in_transaction

    from app.db import insert_rows
    from app.delivery.ingest import _EVENT_INSERT_COLUMNS, _SEND_INSERT_COLUMNS, _db_value
    from app.delivery.sendstate import STATE_FIELDS

    now_ = datetime.now(timezone.utc)
    final = _final_sends(leads, prefix, first, n_sends, t0)
    rows = [(org.id, cid, f["lead_id"], f["channel"].value, 0, f["day"], f["external_id"],
             *(_db_value(f.get(field)) for field in STATE_FIELDS), False, 0, 0, now_) for f in final]
    async with in_transaction():
        ids = {r["external_id"]: r["id"] for r in await insert_rows("send", _SEND_INSERT_COLUMNS, rows,
                                                                    returning="id, external_id")}
        await insert_rows("send_event", _EVENT_INSERT_COLUMNS, [
            (org.id, ids[f["external_id"]], key, digest, kind.value, at, now_, None, None, None, None, False, None)
            for f in final for key, digest, kind, at in _final_events(f)])


async def _check_ingest(cid: int, n_sends: int, n_events: int) -> list[str]:
    from app.db import fetch
    from app.delivery import counters

    problems = []
    s = (await fetch("SELECT COUNT(*) AS n, COUNT(*) FILTER (WHERE status = 'DELIVERED') AS delivered, "
                     "COALESCE(SUM(cost_micros), 0) AS cost, "
                     "(SELECT COUNT(*) FROM send_event e JOIN send s2 ON s2.id = e.send_id "
                     "WHERE s2.campaign_id = ?) AS events "
                     "FROM send WHERE campaign_id = ?", [cid, cid]))[0]
    if int(s["n"]) != n_sends or int(s["delivered"]) != n_sends or int(s["events"]) != n_events:
        problems.append(f"campaign {cid}: {s['n']} sends ({s['delivered']} delivered), {s['events']} events; "
                        f"expected {n_sends} / {n_events}")
    before = await fetch("SELECT channel, day, generated, delivered, cost_micros, credits FROM send_counter "
                         "WHERE campaign_id = ? ORDER BY channel, day", [cid])
    spent = (await fetch("SELECT spent_micros FROM campaign WHERE id = ?", [cid]))[0]["spent_micros"]
    await counters.rebuild([cid])
    after = await fetch("SELECT channel, day, generated, delivered, cost_micros, credits FROM send_counter "
                        "WHERE campaign_id = ? ORDER BY channel, day", [cid])
    spent_after = (await fetch("SELECT spent_micros FROM campaign WHERE id = ?", [cid]))[0]["spent_micros"]
    if before != after or spent != spent_after:
        problems.append(f"campaign {cid}: live counters/spend differ from a rebuild ({before} / {spent} vs "
                        f"{after} / {spent_after})")
    return problems


async def analyze() -> None:
    """Fresh planner statistics (outside the timings): what autovacuum gives a long-lived database.
    Without it, the fast-growing tables of a new database keep stale estimates and asyncpg's cached
    statements switch to generic plans that filter a whole organization's rows (see --no-analyze)."""
    from app.db import execute

    await execute("ANALYZE")


async def run_ingest(rounds: int, batches: int, batch_events: int, fresh_stats: bool, keep: bool) -> dict:
    async with fresh_database(keep):
        return await _run_ingest(rounds, batches, batch_events, fresh_stats)


async def _run_ingest(rounds: int, batches: int, batch_events: int, fresh_stats: bool) -> dict:
    n_sends = batch_events // 2
    per_side = (rounds * batches + 1) * n_sends
    org = await make_org("bench-ingest")
    t_setup = time.perf_counter()
    leads = await make_leads(org, "ing", (per_side + 1) // 2)
    # Every lead is a recipient of both campaigns (as for a real campaign); one send per lead and channel.
    accounted_cid = await make_campaign(org, "Ingest accounted", leads)
    cids = {"accounted": accounted_cid, "raw": await make_campaign(org, "Ingest raw", leads),
            "bulk": await make_campaign(org, "Ingest raw bulk", leads)}
    t0 = datetime.now(timezone.utc) - timedelta(hours=1)
    print(f"\n== ingest: {rounds} rounds × {batches} batches × {batch_events} events (SENT+DELIVERED of "
          f"{n_sends} new sends) per side, sides in rotating order; {len(leads)} leads × EMAIL+SMS recipients "
          f"of each campaign (setup {time.perf_counter() - t_setup:.0f} s); planner statistics "
          + ("refreshed before each round" if fresh_stats else "left to autovacuum (--no-analyze)"))
    print("   raw = Tortoise bulk_create of the same rows; bulk = the same rows with one INSERT … unnest per table")
    batch_fn = {"accounted": _accounted_batch, "raw": _raw_batch, "bulk": _raw_bulk_batch}
    # Warm-up every path (connections, statement caches, first pages).
    for side, fn in batch_fn.items():
        await fn(org, cids[side], leads, f"warm-{side}", 0, n_sends, t0)
    first = {side: n_sends for side in batch_fn}
    rates: dict[str, list[float]] = {side: [] for side in batch_fn}
    batch_times: dict[str, list[float]] = {side: [] for side in batch_fn}
    cpu: dict[str, list[tuple[float, float]]] = {side: [] for side in batch_fn}
    orders = [["accounted", "raw", "bulk"], ["raw", "bulk", "accounted"], ["bulk", "accounted", "raw"]]
    seq = 0
    for r in range(rounds):
        if fresh_stats:
            await analyze()
        line = []
        for side in orders[r % 3]:
            times = []
            pids = await _backend_pids(include_self=True)
            pg0 = {pid: _cpu_seconds(pid) or 0.0 for pid in pids}
            own0 = time.process_time()
            start = time.perf_counter()
            psi0 = _cpu_pressure_us()
            for _ in range(batches):
                seq += 1
                b0 = time.perf_counter()
                await batch_fn[side](org, cids[side], leads, f"{side[0]}{seq}", first[side], n_sends, t0)
                first[side] += n_sends
                times.append(time.perf_counter() - b0)
            wall = time.perf_counter() - start
            stall = _stall(psi0, wall)
            own = time.process_time() - own0
            pg = sum((_cpu_seconds(pid) or 0.0) - pg0.get(pid, 0.0) for pid in await _backend_pids(include_self=True))
            cpu[side].append((own, pg))
            rate = batches * batch_events / wall
            rates[side].append(rate)
            batch_times[side].extend(times)
            n_ev = batches * batch_events
            line.append(f"{side:>9} {rate:6.0f} events/s (batch p50 {statistics.median(times) * 1000:4.0f} ms; "
                        f"CPU/1k events: python {own / n_ev * 1e6:3.0f} ms, pg {pg / n_ev * 1e6:3.0f} ms; stall {stall})")
        print(f"  round {r + 1}: " + " | ".join(line) + f"  acc/raw {rates['accounted'][-1] / rates['raw'][-1]:.2f}"
              f", acc/bulk {rates['accounted'][-1] / rates['bulk'][-1]:.2f}")
    problems = await _check_ingest(accounted_cid, per_side, 2 * per_side)
    med = {side: statistics.median(v) for side, v in rates.items()}
    ratios = {base: [a / b for a, b in zip(rates["accounted"], rates[base])] for base in ("raw", "bulk")}
    n_ev = batches * batch_events
    cpu_k = {side: (statistics.median(o for o, _ in v) / n_ev * 1e6, statistics.median(p for _, p in v) / n_ev * 1e6)
             for side, v in cpu.items()}
    return {"accounted": med["accounted"], "raw": med["raw"], "bulk": med["bulk"],
            "ratio": med["accounted"] / med["raw"], "ratio_min": min(ratios["raw"]), "ratio_max": max(ratios["raw"]),
            "ratio_bulk": med["accounted"] / med["bulk"], "bulk_min": min(ratios["bulk"]),
            "bulk_max": max(ratios["bulk"]), "cpu_k": cpu_k,
            "p50": {side: statistics.median(v) for side, v in batch_times.items()}, "problems": problems}


# ---------------------------------------------------------------- main


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.sender", description="Campaign Pulse sender benchmarks.")
    p.add_argument("which", nargs="?", default="all", choices=["dispatch", "ingest", "all"])
    p.add_argument("--recipients", type=int, default=5000, help="recipients per dispatch campaign (×2 messages)")
    p.add_argument("--workers", default="1,2",
                   help="worker counts compared side by side, e.g. 1,2,4 (default 1,2)")
    p.add_argument("--preload", type=int, default=0,
                   help="finished sends put in each dispatch database before the run (a long-lived database)")
    p.add_argument("--dispatch-rounds", type=int, default=1,
                   help="passes over the worker counts, in ABBA order (default 1; each run in a fresh database)")
    p.add_argument("--timeout", type=float, default=240, help="max seconds per dispatch run")
    p.add_argument("--rounds", type=int, default=5, help="ingest rounds (each: accounted then raw, alternating)")
    p.add_argument("--batches", type=int, default=8, help="ingest batches per side and round")
    p.add_argument("--batch-events", type=int, default=1000, help="events per ingest batch (even)")
    p.add_argument("--rate", default="100000", help="PULSE_SENDER_RATE for the workers")
    p.add_argument("--sender-batch", default="500", help="PULSE_SENDER_BATCH")
    p.add_argument("--tick", default="0.01", help="PULSE_SENDER_TICK_S")
    p.add_argument("--no-analyze", action="store_true",
                   help="do not refresh planner statistics between rounds (shows the stale-statistics plans)")
    p.add_argument("--keep", action="store_true", help="keep the bench database (for inspection)")
    return p


async def _main(args) -> int:
    started = time.perf_counter()
    print(f"Campaign Pulse sender bench — {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.node()}, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}")
    conn = await asyncpg.connect(_asyncpg_url(admin_url()))
    try:
        av = await conn.fetchval("SELECT setting FROM pg_settings WHERE name = 'autovacuum'")
    finally:
        await conn.close()
    print(f"throwaway databases {db_prefix()}_sender_{os.getpid()}_<n> next to {admin_url()}, dropped afterwards; "
          f"server autovacuum: {av}; planner statistics "
          + ("refreshed by the bench before each round" if not args.no_analyze else "not refreshed (--no-analyze)"))
    out: dict = {}
    env = {"PULSE_SENDER_RATE": args.rate, "PULSE_SENDER_BATCH": args.sender_batch, "PULSE_SENDER_TICK_S": args.tick}
    for k in ("PULSE_SIMULATED_REFUSE_RATE", "PULSE_SIMULATED_TRANSIENT_RATE"):
        if k in os.environ:
            env[k] = os.environ[k]
    if args.which in ("dispatch", "all"):
        counts = tuple(int(x) for x in args.workers.split(",") if x.strip())
        out["dispatch"] = await run_dispatch(args.recipients, args.dispatch_rounds, env, args.timeout,
                                             not args.no_analyze, args.keep, counts, args.preload)
    if args.which in ("ingest", "all"):
        out["ingest"] = await run_ingest(args.rounds, args.batches, args.batch_events, not args.no_analyze, args.keep)
    print("\n== results (medians; measured side by side in this run) ==")
    print(f"  {'benchmark':<44} {'value':>12}")
    problems = []
    if "dispatch" in out:
        d = out["dispatch"]
        first = min(d["rate"])
        for n in sorted(d["rate"]):
            label = f"dispatch, {n} worker{'s' if n > 1 else ''} (msgs/s)"
            print(f"  {label:<44} {d['rate'][n]:>12.0f}   ({d['rate'][n] / d['rate'][first]:.2f}x of {first}w; "
                  f"CPU workers+postgres {d['cpu_msg'][n] * 1000:.2f} ms/msg; "
                  f"{d['seq_scans'][n]:.0f} seq scans of send)")
        problems += d["problems"]
    if "ingest" in out:
        i = out["ingest"]
        print(f"  {'ingest accounted (events/s)':<44} {i['accounted']:>12.0f}")
        print(f"  {'ingest accounted (sends/s)':<44} {i['accounted'] / 2:>12.0f}")
        print(f"  {'raw insert, same rows (events/s)':<44} {i['raw']:>12.0f}")
        print(f"  {'raw insert, same rows (sends/s)':<44} {i['raw'] / 2:>12.0f}")
        print(f"  {'raw bulk insert (unnest), same rows (events/s)':<44} {i['bulk']:>12.0f}")
        print(f"  {'ratio accounted/raw (target >= 0.5)':<44} {i['ratio']:>12.2f}"
              f"   (per round {i['ratio_min']:.2f}..{i['ratio_max']:.2f})")
        print(f"  {'ratio accounted/raw bulk':<44} {i['ratio_bulk']:>12.2f}"
              f"   (per round {i['bulk_min']:.2f}..{i['bulk_max']:.2f})")
        ca, cr, cb = i["cpu_k"]["accounted"], i["cpu_k"]["raw"], i["cpu_k"]["bulk"]
        print(f"  {'CPU per 1000 events, python+pg: acc/raw/bulk':<44} {ca[0] + ca[1]:>6.0f} / {cr[0] + cr[1]:.0f} / "
              f"{cb[0] + cb[1]:.0f} ms (python {ca[0]:.0f} / {cr[0]:.0f} / {cb[0]:.0f}, "
              f"postgres {ca[1]:.0f} / {cr[1]:.0f} / {cb[1]:.0f})")
        p = i["p50"]
        print(f"  {'batch of 1000 p50: acc / raw / bulk (ms)':<44} "
              f"{p['accounted'] * 1000:>5.0f} / {p['raw'] * 1000:.0f} / {p['bulk'] * 1000:.0f}")
        problems += i["problems"]
    print(f"  total time {time.perf_counter() - started:.0f} s; "
          + ("consistency checks passed" if not problems else f"PROBLEMS: {problems}"))
    return 1 if problems else 0


def main() -> None:
    args = _parser().parse_args()
    if args.batch_events % 2:
        sys.exit("--batch-events must be even (SENT + DELIVERED per send)")
    sys.exit(asyncio.run(_main(args)))


if __name__ == "__main__":
    main()
