"""Real `pulse worker` processes against one PostgreSQL database (SPEC §2, §6, §8).

Several worker processes race for the same campaign's send jobs; one is
SIGKILLed mid-batch and replaced. Whatever happens, every treatment recipient
gets exactly one message per channel, nothing is left PENDING, the counters
match the sends (and a rebuild from the sends), budget reservations go back to
zero, spend never exceeds the budget and a credit wallet never goes below zero.

PostgreSQL only: SQLite runs one embedded worker (see app/settings.py).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from decimal import Decimal
from email import message_from_bytes
from pathlib import Path

import pytest

from app.db import fetch
from tests.conftest import PG_URL, REDIS_URL, unique
from tests.helpers import METRIC_FIELDS, create_campaign, free_port, mutate, upsert_leads
from tests.sender.test_sender import pk

pytestmark = pytest.mark.skipif(not (PG_URL and REDIS_URL),
                                reason="worker processes need PostgreSQL and Redis (PULSE_TEST_DATABASE_URL, PULSE_TEST_REDIS_URL)")
ROOT = Path(__file__).resolve().parents[2]
# Recipients of the three-worker run (× 2 channels). The scenario of the issue is 10,000 × 2:
# PULSE_TEST_WORKER_RECIPIENTS=10000 (measured: 50-75 s of sending on a lightly loaded 2-core machine,
# 4-6 minutes while other benchmarks shared it);
# the default keeps the routine run near a minute.
RECIPIENTS = int(os.environ.get("PULSE_TEST_WORKER_RECIPIENTS", "3000"))

CAMPAIGN = f"""query($id:ID!){{ campaign(id:$id){{ status statusReason reach
  metrics{{ totals{{ {METRIC_FIELDS} }} byChannel{{ channel {METRIC_FIELDS} }} }}
  budget{{ allocated{{ amount }} spent{{ amount }} reserved{{ amount }} }} }} }}"""
WALLETS = ("{ creditWallets{ source balance "
           "entries(first: 500){ pageInfo{ hasNextPage } edges{ node{ kind amount } } } } }")
TOP_UP = 'mutation($s:CreditSource!,$n:Int!){ creditsTopUp(source:$s, amount:$n, reason:"test"){ userErrors{ code } } }'


class WorkerProcess:
    """One `python -m app.cli worker` subprocess; its output goes to a log file."""

    def __init__(self, settings, log_dir: Path, name: str, **env: str | float | int) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "wb")
        full_env = {**os.environ, "PULSE_DATABASE_URL": settings.database_url, "PULSE_BROADCAST_URL": settings.broadcast_url,
                    "PULSE_CHANNEL_PREFIX": settings.channel_prefix,
                    "PULSE_ENV": "test", "PULSE_AUTO_MIGRATE": "false", "PULSE_LOG_LEVEL": "warning",
                    "PULSE_SENDER_RATE": "5000", "PULSE_SENDER_BATCH": "500", "PULSE_SENDER_TICK_S": "0.05",
                    **{f"PULSE_{k.upper()}": str(v) for k, v in env.items()}}
        self.proc = subprocess.Popen([sys.executable, "-m", "app.cli", "worker"], cwd=ROOT, env=full_env,
                                     stdout=self._log, stderr=subprocess.STDOUT)

    def output(self, tail: int | None = 4000) -> str:
        if not self._log.closed:
            self._log.flush()
        text = self.log_path.read_text(errors="replace")
        return text[-tail:] if tail else text

    async def ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while "worker started" not in self.output():
            if self.proc.poll() is not None:
                raise AssertionError(f"worker {self.name} exited {self.proc.returncode}:\n{self.output()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"worker {self.name} did not start:\n{self.output()}")
            await asyncio.sleep(0.05)

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise AssertionError(f"worker {self.name} died ({self.proc.returncode}):\n{self.output()}")

    async def _exited(self, timeout: float) -> bool:
        # polled, never a blocking wait: the test's event loop (app, bus) must keep running
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    async def kill(self) -> None:
        """SIGKILL: no cleanup at all, whatever the worker was doing."""
        self.proc.send_signal(signal.SIGKILL)
        assert await self._exited(10)

    async def stop(self) -> int | None:
        """SIGTERM: a clean stop (the worker finishes its round and closes its providers)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            if not await self._exited(20):
                self.proc.kill()
                await self._exited(10)
        self._log.close()
        return self.proc.returncode


@pytest.fixture
async def workers(settings, tmp_path):
    """Start worker processes with `start(name, **env)`; all are stopped (SIGTERM) at teardown."""
    started: list[WorkerProcess] = []

    def start(name: str, **env) -> WorkerProcess:
        w = WorkerProcess(settings, tmp_path, name, **env)
        started.append(w)
        return w

    yield start
    codes = await asyncio.gather(*(w.stop() for w in started))
    # a clean stop on SIGTERM (the killed one excepted), and no round failed on the way
    assert all(code in (0, -signal.SIGKILL) for code in codes), [(w.name, w.output()) for w in started]
    assert not [w.name for w in started if "Traceback" in w.output(tail=None)], [(w.name, w.output()) for w in started]


async def wait_for(predicate, workers: list[WorkerProcess], timeout: float, what: str, interval: float = 0.25):
    """Poll an async predicate until it returns a truthy value, checking that the workers live."""
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        for w in workers:
            w.check_alive()
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)


async def campaign_status(cid: int) -> tuple[str, str | None]:
    row = (await fetch("SELECT status, status_reason FROM campaign WHERE id = ?", [cid]))[0]
    return row["status"], row["status_reason"]


async def send_stats(cid: int) -> dict:
    """Straight from the send table: the ground truth the API must agree with."""
    row = (await fetch(
        "SELECT COUNT(*) AS n, COUNT(DISTINCT (lead_id, channel)) AS pairs, "
        "SUM(CASE WHEN status = 'PENDING' THEN 1 ELSE 0 END) AS pending, "
        "SUM(CASE WHEN status = 'FAILED' THEN 1 ELSE 0 END) AS failed, "
        "SUM(CASE WHEN was_sent THEN 1 ELSE 0 END) AS was_sent, "
        "COALESCE(SUM(CASE WHEN was_sent THEN cost_micros ELSE 0 END), 0) AS cost, "
        "COALESCE(SUM(CASE WHEN was_sent THEN credits ELSE 0 END), 0) AS credits, "
        "COALESCE(SUM(reserved_micros), 0) AS reserved FROM send WHERE campaign_id = ?", [cid]))[0]
    return {k: int(v or 0) for k, v in row.items()}


async def duplicated_pairs(cid: int) -> list[dict]:
    return await fetch("SELECT lead_id, channel, COUNT(*) AS n FROM send WHERE campaign_id = ? "
                       "GROUP BY lead_id, channel HAVING COUNT(*) > 1 LIMIT 10", [cid])


async def expected_pairs(cid: int, channels: list[str]) -> set[tuple[int, str]]:
    rows = await fetch("SELECT lead_id FROM recipient WHERE campaign_id = ? AND \"group\" = 'TREATMENT'", [cid])
    return {(r["lead_id"], ch) for r in rows for ch in channels}


async def actual_pairs(cid: int) -> set[tuple[int, str]]:
    rows = await fetch("SELECT lead_id, channel FROM send WHERE campaign_id = ?", [cid])
    return {(r["lead_id"], r["channel"]) for r in rows}


async def make_audience(gql, n: int, tag: str, batch: int = 5000) -> None:
    """n leads with an email and a phone, tagged `tag`, upserted in batches (the API takes ≤ 5000)."""
    for start in range(0, n, batch):
        await upsert_leads(gql, [{"externalId": f"{tag}-{i}", "name": f"Lead {i}", "email": f"{tag}-{i}@example.test",
                                  "phone": f"+3360{i:07d}", "tags": [tag]} for i in range(start, min(n, start + batch))])


async def launch_on_tag(gql, tag: str, **campaign) -> tuple[dict, int]:
    c = await create_campaign(gql, **campaign)
    d = await gql("mutation($c:ID!,$t:String!){ audienceSet(campaignId:$c, input:{filter:{tags:[$t]}}){ "
                  "userErrors{ code message } } }", {"c": c["id"], "t": tag})
    assert not d["audienceSet"]["userErrors"], d
    r = await mutate(gql, "campaignLaunch", c["id"])
    assert not r["userErrors"], r
    assert r["campaign"]["status"] == "LIVE"
    return c, pk(c["id"])


# --------------------------------------------------------------------------- a


async def test_three_worker_processes_send_every_recipient_on_two_channels_exactly_once(tenant, workers):
    gql = tenant.gql
    n, tag = RECIPIENTS, unique("w3")
    t0 = time.monotonic()
    await make_audience(gql, n, tag)
    c, cid = await launch_on_tag(gql, tag, channels=[{"channel": "EMAIL", "unitCost": "0.001"},
                                                      {"channel": "SMS", "unitCost": "0.01"}])
    prepared = time.monotonic()
    procs = [workers(f"w{i}", simulated_refuse_rate=0.02) for i in range(3)]
    await asyncio.gather(*(w.ready() for w in procs))
    await wait_for(lambda: _completed(cid), procs, timeout=60 + n * 0.06, what="the campaign to complete", interval=0.5)
    sent_in = time.monotonic() - prepared

    stats = await send_stats(cid)
    assert stats["n"] == 2 * n
    assert stats["pairs"] == 2 * n  # every (recipient, channel) once ...
    assert await duplicated_pairs(cid) == []
    assert await actual_pairs(cid) == await expected_pairs(cid, ["EMAIL", "SMS"])  # ... and exactly the audience
    assert stats["pending"] == 0 and stats["reserved"] == 0
    d = (await gql(CAMPAIGN, {"id": c["id"]}))["campaign"]
    totals = d["metrics"]["totals"]
    assert d["status"] == "COMPLETED" and d["reach"] == n
    assert totals["generated"] == 2 * n and totals["pending"] == 0
    assert totals["failed"] == stats["failed"] and totals["sent"] == stats["was_sent"]
    assert totals["sent"] + totals["failed"] == 2 * n
    assert {m["channel"]: m["generated"] for m in d["metrics"]["byChannel"]} == {"EMAIL": n, "SMS": n}
    assert Decimal(totals["cost"]["amount"]) == Decimal(stats["cost"]) / 10**6
    assert d["budget"]["reserved"]["amount"] == "0.00"
    print(f"\n{n} x 2 with 3 worker processes: setup {prepared - t0:.1f}s, sending {sent_in:.1f}s")


async def _completed(cid: int) -> bool:
    return (await campaign_status(cid))[0] == "COMPLETED"


# --------------------------------------------------------------------------- b


class HoldingSmtpHandler:
    """An SMTP server's DATA handler that records every message and holds the
    `hold_at`-th one (does not answer) until released: a worker handing it off
    is then stuck mid-batch, with its claimed sends leased and unrecorded."""

    def __init__(self, hold_at: int) -> None:
        self.hold_at = hold_at
        self.received: list[tuple[str, str, str]] = []  # (rcpt, X-Pulse-External-Id, Message-ID)
        self.lock = threading.Lock()
        self.held = threading.Event()
        self.release = threading.Event()

    async def handle_DATA(self, server, session, envelope):
        msg = message_from_bytes(envelope.content)
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                self.received.append((rcpt, msg["X-Pulse-External-Id"], msg["Message-ID"]))
            n = len(self.received)
        if n == self.hold_at:
            self.held.set()
            while not self.release.is_set():
                await asyncio.sleep(0.02)
        return "250 OK"


async def wallets_by_source(gql) -> dict[str, dict]:
    return {w["source"]: w for w in (await gql(WALLETS))["creditWallets"]}


async def test_worker_killed_mid_batch_is_replaced_without_losing_or_repeating_a_message(tenant, workers):
    from aiosmtpd.controller import Controller

    from app.delivery.counters import rebuild

    gql = tenant.gql
    n, tag = 300, unique("kill")
    await make_audience(gql, n, tag)
    for source in ("EMAIL", "SMS"):
        await gql(TOP_UP, {"s": source, "n": 1000})
    c, cid = await launch_on_tag(gql, tag, budget="100", channels=[
        {"channel": "EMAIL", "unitCost": "0.01", "creditsPerMessage": 1, "provider": "smtp"},
        {"channel": "SMS", "unitCost": "0.05", "creditsPerMessage": 2}])  # simulated: refuses 2 % (refunded)

    handler = HoldingSmtpHandler(hold_at=60)
    smtp = Controller(handler, hostname="127.0.0.1", port=free_port())
    smtp.start()
    common = dict(smtp_host="127.0.0.1", smtp_port=smtp.port, smtp_timeout_s=60, dispatch_lease_s=2)
    try:
        # a moderate rate: 20 jobs per 50 ms tick, dispatch batches of at most 50
        first = workers("doomed", sender_rate=400, sender_batch=50, **common)
        await first.ready()
        await wait_for(lambda: asyncio.to_thread(handler.held.wait, 0.2), [first], timeout=60,
                       what="the worker to be mid-batch (an email held by the SMTP server)", interval=0)
        await first.kill()  # SIGKILL: no cleanup (an open transaction of its own is rolled back by PostgreSQL)
        assert first.proc.returncode == -signal.SIGKILL

        at_kill = await send_stats(cid)
        assert 0 < at_kill["n"] < 2 * n, at_kill  # some but not all queued
        # claimed for hand-off (leased), outcome never recorded
        leased = {r["external_id"] for r in await fetch(
            "SELECT external_id FROM send WHERE campaign_id = ? AND status = 'PENDING' AND dispatch_attempts = 1 "
            "AND dispatch_after IS NOT NULL", [cid])}
        held_ext = handler.received[-1][1]
        assert held_ext in leased  # claimed, handed to the SMTP server, outcome never recorded
        handler.release.set()

        second = workers("replacement", **common)
        await second.ready()
        await wait_for(lambda: _completed(cid), [second], timeout=120, what="the campaign to complete")
    finally:
        handler.release.set()
        smtp.stop()

    stats = await send_stats(cid)
    assert stats["n"] == stats["pairs"] == 2 * n
    assert await duplicated_pairs(cid) == []
    assert await actual_pairs(cid) == await expected_pairs(cid, ["EMAIL", "SMS"])
    assert stats["pending"] == 0 and stats["reserved"] == 0
    # the sends that were leased when the worker died were handed off again after the lease expired
    rows = await fetch("SELECT external_id, status, dispatch_attempts FROM send WHERE campaign_id = ?", [cid])
    by_ext = {r["external_id"]: r for r in rows}
    assert all(by_ext[e]["dispatch_attempts"] >= 2 and by_ext[e]["status"] != "PENDING" for e in leased)
    # SMTP: every email arrived; only messages in flight at the crash arrived twice (at-least-once
    # hand-off), each time with the same Message-ID so the receiving side can drop the repeat
    email_rows = await fetch("SELECT s.external_id, l.email FROM send s JOIN lead l ON l.id = s.lead_id "
                             "WHERE s.campaign_id = ? AND s.channel = 'EMAIL'", [cid])
    assert {r["external_id"] for r in email_rows} == {x for _, x, _ in handler.received}
    assert all(by_ext[r["external_id"]]["status"] == "SENT" for r in email_rows)
    arrivals = Counter(x for _, x, _ in handler.received)
    assert {x for x, k in arrivals.items() if k > 1} <= leased
    assert held_ext in arrivals and arrivals[held_ext] == 2
    assert {(x, rcpt) for rcpt, x, _ in handler.received} == {(r["external_id"], r["email"]) for r in email_rows}
    assert all(mid == f"<{x}@campaign-pulse>" for _, x, mid in handler.received)

    # counters == sends, and a rebuild from the sends gives the same numbers
    before = (await gql(CAMPAIGN, {"id": c["id"]}))["campaign"]
    totals = before["metrics"]["totals"]
    assert before["status"] == "COMPLETED"
    assert totals["generated"] == 2 * n and totals["pending"] == 0
    assert totals["sent"] == stats["was_sent"] and totals["failed"] == stats["failed"]
    assert totals["sent"] + totals["failed"] == 2 * n
    assert Decimal(totals["cost"]["amount"]) == Decimal(stats["cost"]) / 10**6
    assert totals["credits"] == stats["credits"]
    assert before["budget"]["reserved"]["amount"] == "0.00"
    assert Decimal(before["budget"]["spent"]["amount"]) == Decimal(stats["cost"]) / 10**6
    await rebuild([cid])
    after = (await gql(CAMPAIGN, {"id": c["id"]}))["campaign"]
    assert after == before

    # credits: consumed at queue time, refunded for messages that failed before being sent;
    # every wallet's balance is the sum of its ledger
    wallets = await wallets_by_source(gql)
    for w in wallets.values():
        assert not w["entries"]["pageInfo"]["hasNextPage"]  # the whole ledger
        assert sum(e["node"]["amount"] for e in w["entries"]["edges"]) == w["balance"]
    kept = {ch: int(r["n"]) for ch, r in ((r["channel"], r) for r in await fetch(
        "SELECT channel, COUNT(*) AS n FROM send WHERE campaign_id = ? AND was_sent GROUP BY channel", [cid]))}
    assert wallets["EMAIL"]["balance"] == 1000 - 1 * kept["EMAIL"]
    assert wallets["SMS"]["balance"] == 1000 - 2 * kept["SMS"]
    assert kept["SMS"] < n  # the simulated provider refused a few SMS: their credits came back
    assert totals["credits"] == 1 * kept["EMAIL"] + 2 * kept["SMS"]


# --------------------------------------------------------------------------- c


async def test_budget_and_credits_hold_exactly_with_several_worker_processes(tenant_factory, workers):
    budget_org, credit_org = await tenant_factory(), await tenant_factory()
    n = 200
    tags = unique("budget"), unique("credits")
    await make_audience(budget_org.gql, n, tags[0])
    await make_audience(credit_org.gql, n, tags[1])
    await credit_org.gql(TOP_UP, {"s": "EMAIL", "n": 100})
    # several workers already polling, each claiming 20 jobs per 50 ms tick: they race for the same jobs
    procs = [workers(f"race{i}", sender_rate=400, sender_batch=500, simulated_refuse_rate=0) for i in range(3)]
    await asyncio.gather(*(w.ready() for w in procs))
    (bc, bid), (cc, ccid) = await asyncio.gather(
        # 200 messages of 0.01 against a budget of 0.50 = 50 × 0.01
        launch_on_tag(budget_org.gql, tags[0], budget="0.50", channels=[{"channel": "EMAIL", "unitCost": "0.01"}]),
        # 200 messages of 2 credits against a wallet of 100 = 50 × 2
        launch_on_tag(credit_org.gql, tags[1], channels=[{"channel": "EMAIL", "unitCost": "0", "creditsPerMessage": 2}]))

    async def settled() -> bool:
        for cid in (bid, ccid):
            if (await campaign_status(cid))[0] != "PAUSED" or (await send_stats(cid))["pending"]:
                return False
        return True

    await wait_for(settled, procs, timeout=60, what="both campaigns to pause with nothing pending")
    await asyncio.sleep(1)  # a few more rounds: nothing else may be queued
    for cid in (bid, ccid):
        stats = await send_stats(cid)
        assert stats["n"] == stats["pairs"] == 50 and stats["pending"] == 0 and stats["reserved"] == 0
        assert stats["was_sent"] == 50  # refuse rate 0: every message accepted (3 % bounce: still sent, still paid)

    d = (await budget_org.gql(CAMPAIGN, {"id": bc["id"]}))["campaign"]
    assert (d["status"], d["statusReason"]) == ("PAUSED", "BUDGET_EXHAUSTED")
    assert d["budget"]["spent"]["amount"] == "0.50" and d["budget"]["reserved"]["amount"] == "0.00"
    assert d["metrics"]["totals"]["generated"] == 50 and d["metrics"]["totals"]["cost"]["amount"] == "0.50"
    assert d["metrics"]["totals"]["bounced"] < 50  # bounces happen and are paid for too

    d = (await credit_org.gql(CAMPAIGN, {"id": cc["id"]}))["campaign"]
    assert (d["status"], d["statusReason"]) == ("PAUSED", "CREDITS_EXHAUSTED")
    assert d["metrics"]["totals"]["generated"] == 50 and d["metrics"]["totals"]["credits"] == 100
    email = (await wallets_by_source(credit_org.gql))["EMAIL"]
    assert email["balance"] == 0 and not email["entries"]["pageInfo"]["hasNextPage"]
    assert sum(e["node"]["amount"] for e in email["entries"]["edges"]) == email["balance"]
    kinds = Counter(e["node"]["kind"] for e in email["entries"]["edges"])
    assert kinds == {"TOPUP": 1, "CONSUMPTION": 50}
