"""Realtime bench: `python -m bench.realtime [--sizes 10,1000,5000] [--db sqlite|postgres]
[--broadcast redis://127.0.0.1:6379/0]` (see --help for rounds, layouts, idle sockets).

The API runs as a real uvicorn server in a subprocess (`python -m app.cli serve` behind a
few lines that raise RLIMIT_NOFILE and log garbage-collector pauses), so the client load
generated here (one asyncio process, many real sockets) never shares the server's event
loop. Measured side by side in one run:

1. Fan-out latency of `campaignKpis` (one campaign, N subscribers): after every subscriber
   got its first snapshot, ~20 rounds of "commit one SENT event with sendEventsIngest over
   HTTP" — t0 is taken when the HTTP response returns (the event is committed) — and the
   arrival time of the update (totals.sent incremented) on every subscription.
   Layouts: up to 50 subscriptions per socket, and 1 subscription per socket for N <= 1000.
   Alongside: server/client CPU per change, server GC pauses, snapshot computations while
   subscribing and per change, objects the server still tracks per delivered update.
2. Snapshot computations for one change with 1,000 subscribers of one topic
   (pulse_snapshot_computations_total{topic="campaign"} before/after).
3. Server RSS per idle subscribed websocket (1 subscription each) vs a bare `websockets`
   echo server (permessage-deflate negotiated as the API did, with uvicorn's settings) in a subprocess.

The client and the server share the machine's cores (and so may other processes): read
the ratios within one run, not absolute numbers. Nothing here touches product code.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import platform
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import httpx
import orjson
import websockets

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
PROTOCOL = "graphql-transport-ws"
DEFAULT_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/test"

KPIS = """subscription($id: ID!) { campaignKpis(campaignId: $id) {
  campaignId status reach totals { generated sent delivered cost { amount } }
  budget { spent { amount } utilization } computedAt } }"""

now = time.perf_counter


# ---------------------------------------------------------------- process plumbing


def raise_nofile() -> int:
    """Soft RLIMIT_NOFILE up to the hard limit (also used as the subprocesses' preexec_fn)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


async def settled_rss(pid: int, wait: float = 2.0) -> int:
    """RSS once it stops moving (a few readings, the last one)."""
    await asyncio.sleep(wait)
    last = rss_bytes(pid)
    for _ in range(10):
        await asyncio.sleep(0.5)
        cur = rss_bytes(pid)
        if abs(cur - last) < 64 * 1024:
            return cur
        last = cur
    return last


class Proc:
    """A subprocess with its log in a file; stopped with SIGINT then SIGKILL."""

    def __init__(self, args: list[str], env: dict, log: Path) -> None:
        self.log_path = log
        self.log = open(log, "wb")
        self.p = subprocess.Popen(args, env=env, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT,
                                  preexec_fn=raise_nofile)

    @property
    def pid(self) -> int:
        return self.p.pid

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGINT)
            try:
                self.p.wait(20)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)
        self.log.close()

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")


async def wait_http(url: str, proc: Proc, timeout: float = 60) -> None:
    deadline = now() + timeout
    async with httpx.AsyncClient(timeout=2) as c:
        while now() < deadline:
            if proc.p.poll() is not None:
                raise RuntimeError(f"server exited ({proc.p.returncode}):\n{proc.text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if (await c.get(url)).status_code < 500:
                    return
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} not up after {timeout}s:\n{proc.text()[-3000:]}")


def run_cli(env: dict, *args: str) -> str:
    out = subprocess.run([PY, "-m", "app.cli", *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise RuntimeError(f"pulse {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
    return out.stdout


async def pg_create(admin: str) -> tuple[str, str]:
    import asyncpg

    name = f"pulse_rt_{os.getpid()}_{uuid.uuid4().hex[:4]}"
    conn = await asyncpg.connect(re.sub(r"^postgres(ql)?://", "postgresql://", admin))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = re.sub(r"/[^/?]*(\?|$)", f"/{name}\\1", re.sub(r"^postgresql://", "postgres://", admin), count=1)
    return url, name


async def pg_drop(admin: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(re.sub(r"^postgres(ql)?://", "postgresql://", admin))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


# The API server: `python -m app.cli serve` behind a few lines that raise RLIMIT_NOFILE and log
# every garbage-collector pass over 5 ms (monotonic end time, generation, duration) to a file;
# on SIGUSR1 it collects and logs the number of objects the collector tracks (retention check).
SERVER_WRAPPER = textwrap.dedent("""
    import gc, os, resource, signal, sys, time
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    log = open(os.environ["PULSE_BENCH_GC_LOG"], "a", buffering=1)
    started = [0.0]

    def on_gc(phase, info):
        if phase == "start":
            started[0] = time.monotonic()
        else:
            end = time.monotonic()
            if end - started[0] > 0.005:
                log.write(f"{end:.6f} {info['generation']} {end - started[0]:.6f}\\n")

    gc.callbacks.append(on_gc)

    def count_objects(*_):  # SIGUSR1: full collection, then how many objects the collector tracks
        gc.collect()
        log.write(f"{time.monotonic():.6f} objects {len(gc.get_objects())}\\n")

    signal.signal(signal.SIGUSR1, count_objects)
    sys.argv = ["pulse", *sys.argv[1:]]
    from app.cli import main
    main()
""")


def gc_pauses(path: Path, start: float, end: float) -> list[tuple[int, float]]:
    """(generation, seconds) of the server's GC passes over 5 ms that ended in [start, end] (monotonic)."""
    out = []
    with contextlib.suppress(FileNotFoundError):
        for line in path.read_text().splitlines():
            t, gen, dur = line.split()
            if gen == "objects":
                continue
            if start <= float(t) <= end:
                out.append((int(gen), float(dur)))
    return out


async def tracked_objects(pid: int, path: Path) -> int:
    """Ask the server (SIGUSR1) to collect and count the objects its collector tracks."""
    since = time.monotonic()
    os.kill(pid, signal.SIGUSR1)
    deadline = now() + 30
    while now() < deadline:
        await asyncio.sleep(0.1)
        with contextlib.suppress(FileNotFoundError):
            for line in reversed(path.read_text().splitlines()):
                t, kind, value = line.split()
                if kind == "objects" and float(t) >= since:
                    return int(value)
    raise RuntimeError("the server did not report its object count")


class ClientGC:
    """The same for this client process (it shares the cores and measures the arrivals)."""

    def __init__(self) -> None:
        self.passes: list[tuple[float, int, float]] = []
        self._t = 0.0
        gc.callbacks.append(self._cb)

    def _cb(self, phase, info) -> None:
        if phase == "start":
            self._t = time.monotonic()
        else:
            end = time.monotonic()
            if end - self._t > 0.005:
                self.passes.append((end, info["generation"], end - self._t))

    def between(self, start: float, end: float) -> list[tuple[int, float]]:
        return [(g, d) for t, g, d in self.passes if start <= t <= end]


CLIENT_GC: ClientGC | None = None


BARE_SERVER = textwrap.dedent("""
    import asyncio, resource, sys
    import websockets
    from websockets.asyncio.server import serve
    from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory

    async def handler(ws):
        async for message in ws:     # idle connections just await messages (echoed)
            await ws.send(message)

    async def main(port, deflate):
        # Same as the API: permessage-deflate with the settings uvicorn's websockets-sansio server
        # uses when the API negotiated it, none when it did not.
        ext = [ServerPerMessageDeflateFactory(server_max_window_bits=12, client_max_window_bits=12,
                                              compress_settings={"memLevel": 5})] if deflate else []
        async with serve(handler, "127.0.0.1", port, compression=None, extensions=ext,
                         subprotocols=["graphql-transport-ws"], backlog=2048):
            print("ready", flush=True)
            await asyncio.Future()

    try:
        import uvloop
        uvloop.run(main(int(sys.argv[1]), sys.argv[2] == "on"))
    except ImportError:
        asyncio.run(main(int(sys.argv[1]), sys.argv[2] == "on"))
""")


# ---------------------------------------------------------------- the API over HTTP


class Api:
    def __init__(self, base: str, token: str) -> None:
        self.base = base
        self.http = httpx.AsyncClient(base_url=base, timeout=60, headers={"Authorization": f"Bearer {token}"})

    async def gql(self, query: str, variables: dict | None = None) -> dict:
        r = await self.http.post("/graphql", json={"query": query, "variables": variables or {}})
        body = r.json()
        if r.status_code != 200 or body.get("errors"):
            raise RuntimeError(f"GraphQL error {r.status_code}: {body}")
        return body["data"]

    async def metrics(self) -> str:
        return (await self.http.get("/metrics")).text

    async def metric(self, name: str, labels: str = "") -> float:
        pattern = re.escape(name + (f"{{{labels}}}" if labels else "")) + r" ([-+0-9.eE]+|NaN)"
        m = re.search(r"^" + pattern + r"$", await self.metrics(), re.M)
        return float(m.group(1)) if m else 0.0

    async def close(self) -> None:
        await self.http.aclose()


async def setup_campaign(api: Api, n_leads: int = 5) -> tuple[str, list[str]]:
    d = await api.gql("mutation($i:CampaignCreateInput!){ campaignCreate(input:$i){ campaign{ id } userErrors{ message } } }",
                      {"i": {"name": f"Realtime bench {uuid.uuid4().hex[:6]}", "budget": "100000",
                             "channels": [{"channel": "EMAIL", "unitCost": "0.01"}]}})
    assert not d["campaignCreate"]["userErrors"], d
    cid = d["campaignCreate"]["campaign"]["id"]
    tag = uuid.uuid4().hex[:6]
    d = await api.gql("mutation($l:[LeadInput!]!){ leadsUpsert(leads:$l){ leads{ id } userErrors{ message } } }",
                      {"l": [{"externalId": f"rt-{tag}-{i}", "name": f"Lead {i}", "email": f"rt-{tag}-{i}@example.test"}
                             for i in range(n_leads)]})
    assert not d["leadsUpsert"]["userErrors"], d
    leads = [x["id"] for x in d["leadsUpsert"]["leads"]]
    d = await api.gql("mutation($c:ID!,$i:AudienceInput!){ audienceSet(campaignId:$c, input:$i){ userErrors{ message } } }",
                      {"c": cid, "i": {"leadIds": leads}})
    assert not d["audienceSet"]["userErrors"], d
    d = await api.gql("mutation($id:ID!){ campaignLaunch(id:$id){ campaign{ status } userErrors{ message } } }", {"id": cid})
    assert not d["campaignLaunch"]["userErrors"], d
    return cid, leads


async def sent_total(api: Api, cid: str) -> int:
    d = await api.gql("query($id:ID!){ campaign(id:$id){ metrics{ totals{ sent } } } }", {"id": cid})
    return d["campaign"]["metrics"]["totals"]["sent"]


INGEST = ("mutation($e:[SendEventInput!]!){ sendEventsIngest(events:$e){ accepted duplicates "
          "rejected{ index code message } userErrors{ code message } } }")


async def one_change(api: Api, cid: str, lead: str) -> tuple[float, float]:
    """Commit one new SENT event; returns (request start, response returned)."""
    key = uuid.uuid4().hex
    event = {"idempotencyKey": key, "externalId": f"rt-{key}", "channel": "EMAIL", "type": "SENT",
             "occurredAt": datetime.now(timezone.utc).isoformat(), "campaignId": cid, "leadId": lead}
    t_req = now()
    r = await api.http.post("/graphql", json={"query": INGEST, "variables": {"e": [event]}})
    t0 = now()
    result = r.json()["data"]["sendEventsIngest"]
    if result["accepted"] != 1:
        raise RuntimeError(f"ingest refused: {result}")
    return t_req, t0


# ---------------------------------------------------------------- subscribers


@dataclass
class Fanout:
    """Every subscription's latest totals.sent and, for the current round, its arrival time."""

    n: int = 0
    target: int | None = None
    arrived: dict = field(default_factory=dict)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    messages: int = 0
    problems: list = field(default_factory=list)

    def start(self, target: int) -> None:
        self.target = target
        self.arrived = {}
        self.done.clear()

    def on_value(self, sid: str, sent: int, t: float) -> None:
        self.messages += 1
        if self.target is not None and sent >= self.target and sid not in self.arrived:
            self.arrived[sid] = t
            if len(self.arrived) >= self.n:
                self.done.set()


async def _reader(ws, fan: Fanout) -> None:
    try:
        async for raw in ws:
            t = now()
            m = orjson.loads(raw)
            kind = m.get("type")
            if kind == "next":
                payload = m["payload"]
                if payload.get("errors"):
                    fan.problems.append(payload["errors"])
                    continue
                fan.on_value(m["id"], payload["data"]["campaignKpis"]["totals"]["sent"], t)
            elif kind == "ping":
                await ws.send('{"type":"pong"}')
            elif kind in ("error", "complete"):
                fan.problems.append(m)
    except websockets.ConnectionClosed as exc:
        if exc.rcvd is None or exc.rcvd.code != 1000:
            who = "by the server" if exc.rcvd is not None and (exc.sent is None or exc.rcvd_then_sent) else "by the client"
            fan.problems.append(f"socket closed {who}: {exc}")


async def _open(url: str, token: str, sem: asyncio.Semaphore, **kw):
    async with sem:
        for attempt in range(5):
            try:
                # No client keepalive (browsers send none either): a stalled server must not be
                # disconnected by the load generator; the server's own keepalive stays on.
                ws = await websockets.connect(url, subprotocols=[PROTOCOL], open_timeout=60, max_size=None,
                                              ping_interval=None, **kw)
                break
            except (OSError, asyncio.TimeoutError, websockets.InvalidHandshake):
                if attempt == 4:
                    raise
                await asyncio.sleep(0.5 * (attempt + 1))
        await ws.send(orjson.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}).decode())
        ack = orjson.loads(await asyncio.wait_for(ws.recv(), 300))
        if ack.get("type") != "connection_ack":
            raise RuntimeError(f"no ack: {ack}")
        return ws


class Group:
    """N campaignKpis subscriptions of one campaign, `per` per socket."""

    def __init__(self, n: int, per: int) -> None:
        self.n, self.per = n, per
        self.fan = Fanout(n=n)
        self.sockets: list = []
        self.readers: list[asyncio.Task] = []
        self.deflate: bool | None = None

    async def open(self, ws_url: str, token: str, cid: str, base_sent: int, concurrency: int = 64) -> float:
        """Open sockets, subscribe, wait for every first snapshot; returns the seconds it took."""
        started = now()
        self.fan.start(base_sent)
        sem = asyncio.Semaphore(concurrency)
        counts = [min(self.per, self.n - i) for i in range(0, self.n, self.per)]

        async def one(index: int, count: int) -> None:
            ws = await _open(ws_url, token, sem)
            self.sockets.append(ws)
            self.readers.append(asyncio.create_task(_reader(ws, self.fan)))
            for j in range(count):
                await ws.send(orjson.dumps({"id": f"{index}.{j}", "type": "subscribe",
                                            "payload": {"query": KPIS, "variables": {"id": cid}}}).decode())

        await asyncio.gather(*(one(i, c) for i, c in enumerate(counts)))
        ext = self.sockets[0].response.headers.get("Sec-WebSocket-Extensions", "")
        self.deflate = "permessage-deflate" in ext
        try:
            await asyncio.wait_for(self.fan.done.wait(), 300)
        except asyncio.TimeoutError:
            raise RuntimeError(f"only {len(self.fan.arrived)}/{self.n} first snapshots; problems: {self.fan.problems[:3]}")
        return now() - started

    async def close(self) -> None:
        sem = asyncio.Semaphore(200)

        async def one(ws):
            async with sem:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(ws.close(), 10)

        await asyncio.gather(*(one(ws) for ws in self.sockets))
        for t in self.readers:
            t.cancel()
        await asyncio.gather(*self.readers, return_exceptions=True)
        self.sockets, self.readers = [], []


async def wait_no_subscriptions(api: Api, timeout: float = 60) -> None:
    deadline = now() + timeout
    while now() < deadline:
        if await api.metric("pulse_subscriptions_active") == 0 and await api.metric("pulse_ws_connections") == 0:
            return
        await asyncio.sleep(0.2)
    raise RuntimeError("server still holds subscriptions after the client closed them")


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


@dataclass
class LatencyResult:
    n: int
    per: int
    sockets: int
    rounds: int
    samples: list = field(default_factory=list)       # arrival − t0 (response returned), every sub, every round
    completion: list = field(default_factory=list)    # last arrival − t0, per round
    http: list = field(default_factory=list)          # ingest HTTP round trip
    missing: int = 0
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    open_s: float = 0.0
    open_snapshots: float = 0.0                       # pulse_snapshot_computations_total delta while subscribing
    retained: float = 0.0                             # server objects still tracked after the rounds, per delivered update
    round_snapshots: float = 0.0                      # snapshot computations per change
    server_gc: list = field(default_factory=list)     # (generation, seconds) of server GC passes > 5 ms
    client_gc: list = field(default_factory=list)
    problems: int = 0


async def latency_rounds(group: Group, api: Api, cid: str, lead: str, base: int, rounds: int,
                         server_pid: int, gap: float, gc_log: Path | None = None) -> tuple[LatencyResult, int]:
    res = LatencyResult(group.n, group.per, len(group.sockets), rounds)
    gc.collect()
    gc.freeze()  # this client's own collector stays out of the measurement as far as possible
    snaps = await api.metric("pulse_snapshot_computations_total", 'topic="campaign"')
    objects0 = await tracked_objects(server_pid, gc_log) if gc_log else 0
    cpu_s, cpu_c, mono = cpu_seconds(server_pid), time.process_time(), time.monotonic()
    sent = base
    for _ in range(rounds):
        sent += 1
        group.fan.start(sent)
        t_req, t0 = await one_change(api, cid, lead)
        res.http.append(t0 - t_req)
        try:
            await asyncio.wait_for(group.fan.done.wait(), 60)
        except asyncio.TimeoutError:
            res.missing += group.n - len(group.fan.arrived)
        lat = [t - t0 for t in group.fan.arrived.values()]
        res.samples.extend(lat)
        if lat:
            res.completion.append(max(lat))
        await asyncio.sleep(gap)
    res.server_cpu = (cpu_seconds(server_pid) - cpu_s) / rounds
    res.client_cpu = (time.process_time() - cpu_c) / rounds
    res.server_gc = gc_pauses(gc_log, mono, time.monotonic()) if gc_log else []
    res.client_gc = CLIENT_GC.between(mono, time.monotonic()) if CLIENT_GC else []
    if gc_log:
        await asyncio.sleep(0.5)
        res.retained = (await tracked_objects(server_pid, gc_log) - objects0) / max(1, len(res.samples))
    res.round_snapshots = (await api.metric("pulse_snapshot_computations_total", 'topic="campaign"') - snaps) / rounds
    gc.unfreeze()
    res.problems = len(group.fan.problems)
    return res, sent


# ---------------------------------------------------------------- bench


@dataclass
class Env:
    ws_url: str
    api: Api
    token: str
    cid: str
    leads: list
    server: Proc
    sent: int = 0


async def snapshot_count(env: Env, group: Group) -> dict:
    """Snapshot computations and messages for one change seen by every subscriber of one topic."""
    await asyncio.sleep(1.0)  # nothing in flight
    labels = 'topic="campaign"'
    snaps0 = await env.api.metric("pulse_snapshot_computations_total", labels)
    msgs0 = await env.api.metric("pulse_subscription_messages_total", 'subscription="campaignKpis"')
    env.sent += 1
    group.fan.start(env.sent)
    _, t0 = await one_change(env.api, env.cid, env.leads[0])
    await asyncio.wait_for(group.fan.done.wait(), 60)
    await asyncio.sleep(1.0)  # anything a late round would add
    snaps1 = await env.api.metric("pulse_snapshot_computations_total", labels)
    msgs1 = await env.api.metric("pulse_subscription_messages_total", 'subscription="campaignKpis"')
    return {"subscribers": group.n, "snapshots": snaps1 - snaps0, "messages": msgs1 - msgs0}


async def bare_memory(m: int, tmp: Path, concurrency: int, deflate: bool) -> dict:
    port = free_port()
    proc = Proc([PY, "-c", BARE_SERVER, str(port), "on" if deflate else "off"], dict(os.environ),
                tmp / "bare-server.log")
    try:
        deadline = now() + 30
        while "ready" not in proc.text():
            if proc.p.poll() is not None or now() > deadline:
                raise RuntimeError(f"bare server failed:\n{proc.text()}")
            await asyncio.sleep(0.1)
        url = f"ws://127.0.0.1:{port}/"
        sem = asyncio.Semaphore(concurrency)

        async def one():
            async with sem:
                ws = await websockets.connect(url, subprotocols=[PROTOCOL], open_timeout=60)
                await ws.send('{"type":"connection_init","payload":{}}')
                await asyncio.wait_for(ws.recv(), 60)
                return ws

        warm = await asyncio.gather(*(one() for _ in range(20)))
        await asyncio.gather(*(w.close() for w in warm))
        before = await settled_rss(proc.pid, 1.0)
        socks = await asyncio.gather(*(one() for _ in range(m)))
        deflate = "permessage-deflate" in socks[0].response.headers.get("Sec-WebSocket-Extensions", "")
        after = await settled_rss(proc.pid)
        sem2 = asyncio.Semaphore(200)

        async def close(ws):
            async with sem2:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(ws.close(), 10)

        await asyncio.gather(*(close(ws) for ws in socks))
        return {"m": m, "before": before, "after": after, "per_conn": (after - before) / m, "deflate": deflate}
    finally:
        proc.stop()


async def bench(args) -> int:
    global CLIENT_GC
    CLIENT_GC = ClientGC()
    started = now()
    nofile = raise_nofile()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    configs = [(n, 1) for n in sizes if n <= args.per_socket_max] + [(n, args.per_conn) for n in sizes]
    configs = sorted(set(configs))  # per N, 1/socket first: the memory figure is taken on a server that has
    # not yet held a bigger layout (freed memory would be reused and hide the cost)
    need = max([n // per + 50 for n, per in configs] + [args.idle + 50])
    if need > nofile - 100:
        print(f"warning: RLIMIT_NOFILE is {nofile}, the largest layout needs ~{need} sockets on each side")
    print(f"Campaign Pulse realtime bench — {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.node()}, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}, websockets {websockets.__version__}, "
          f"RLIMIT_NOFILE {nofile}, load average {os.getloadavg()[0]:.1f}")
    tmp = Path(tempfile.mkdtemp(prefix="pulse-rt-"))
    pg_name = None
    admin = os.environ.get("PULSE_BENCH_DATABASE_URL", DEFAULT_ADMIN_URL)
    env_vars = dict(os.environ)
    if args.db == "postgres":
        db_url, pg_name = await pg_create(admin)
    else:
        db_url = f"sqlite://{tmp}/pulse-rt.db"
    port = free_port()
    gc_log = tmp / "server-gc.log"
    env_vars.update({
        "PULSE_DATABASE_URL": db_url,
        "PULSE_BROADCAST_URL": args.broadcast,
        "PULSE_AUTO_MIGRATE": "true",
        "PULSE_WS_MAX_SUBSCRIPTIONS": str(max(args.per_conn, 1000)),
        "PULSE_SUBSCRIPTION_MIN_INTERVAL_S": str(args.min_interval),
        "PULSE_LOG_LEVEL": "warning",
        "PULSE_ENV": "development",
    })
    print(f"database: {args.db} ({'throwaway ' + pg_name if pg_name else db_url}); pub/sub: {args.broadcast}; "
          f"min interval {args.min_interval}s; server: uvicorn subprocess on :{port}")
    server = None
    api = None
    results: list[LatencyResult] = []
    problems: list[str] = []
    snap: dict | None = None
    mem: dict | None = None
    bare: dict | None = None
    try:
        if args.db == "postgres":
            run_cli(env_vars, "migrate")
        token = run_cli(env_vars, "org", "create", "--name", f"rt-{uuid.uuid4().hex[:6]}",
                        "--owner-email", "owner@rt.example").strip().splitlines()[-1].strip()
        env_vars["PULSE_BENCH_GC_LOG"] = str(gc_log)
        server = Proc([PY, "-c", SERVER_WRAPPER, "serve", "--host", "127.0.0.1", "--port", str(port)], env_vars,
                      tmp / "server.log")
        base_url = f"http://127.0.0.1:{port}"
        await wait_http(base_url + "/healthz", server)
        api = Api(base_url, token)
        cid, leads = await setup_campaign(api)
        env = Env(f"ws://127.0.0.1:{port}/graphql", api, token, cid, leads, server, await sent_total(api, cid))

        # warm-up: code paths, hub, connections
        warm = Group(20, 1)
        await warm.open(env.ws_url, token, cid, env.sent)
        _, env.sent = await latency_rounds(warm, api, cid, leads[0], env.sent, 3, server.pid, 0.1)
        await warm.close()
        await wait_no_subscriptions(api)

        for n, per in configs:
            rss_before = await settled_rss(server.pid, 0.5)
            group = Group(n, per)
            snaps = await api.metric("pulse_snapshot_computations_total", 'topic="campaign"')
            open_s = await group.open(env.ws_url, token, cid, env.sent, args.concurrency)
            open_snaps = await api.metric("pulse_snapshot_computations_total", 'topic="campaign"') - snaps
            print(f"  N={n:>5} × {per:>2}/socket: {len(group.sockets)} sockets, all first snapshots in {open_s:.1f}s "
                  f"(deflate {'on' if group.deflate else 'off'})", flush=True)
            if mem is None and per == 1 and n == args.idle:
                after = await settled_rss(server.pid)
                mem = {"m": n, "before": rss_before, "after": after, "per_conn": (after - rss_before) / n,
                       "deflate": group.deflate}
            if snap is None and n == args.snapshot_subs:
                snap = await snapshot_count(env, group)
            res, env.sent = await latency_rounds(group, api, cid, leads[0], env.sent, args.rounds, server.pid,
                                                 args.gap, gc_log)
            res.open_s, res.open_snapshots = open_s, open_snaps
            results.append(res)
            print(f"    metric: {open_snaps:.0f} snapshot computations while subscribing; p50 {pct(res.samples, 50) * 1e3:.1f} ms, "
                  f"p95 {pct(res.samples, 95) * 1e3:.1f} ms, missing {res.missing}, problems {res.problems}", flush=True)
            for text, count in Counter(str(p)[:200] for p in group.fan.problems).most_common(3):
                print(f"      {count} × {text}")
                problems.append(f"N={n} × {per}/socket: {count} × {text}")
            await group.close()
            await wait_no_subscriptions(api)

        if mem is None or snap is None:  # no configuration matched: dedicated passes
            if snap is None:
                group = Group(args.snapshot_subs, args.per_conn)
                await group.open(env.ws_url, token, cid, env.sent, args.concurrency)
                snap = await snapshot_count(env, group)
                await group.close()
                await wait_no_subscriptions(api)
            if mem is None:
                rss_before = await settled_rss(server.pid, 0.5)
                group = Group(args.idle, 1)
                await group.open(env.ws_url, token, cid, env.sent, args.concurrency)
                after = await settled_rss(server.pid)
                mem = {"m": args.idle, "before": rss_before, "after": after, "per_conn": (after - rss_before) / args.idle,
                       "deflate": group.deflate}
                await group.close()
                await wait_no_subscriptions(api)

        if mem is not None:
            bare = await bare_memory(args.idle, tmp, args.concurrency, bool(mem["deflate"]))
    except BaseException:
        print(f"bench failed; server log and database kept in {tmp}", file=sys.stderr)
        raise
    finally:
        if api is not None:
            await api.close()
        if server is not None:
            server.stop()
        if pg_name:
            with contextlib.suppress(Exception):
                await pg_drop(admin, pg_name)

    log = server.text() if server else ""
    errors = [line for line in log.splitlines() if re.search(r"Traceback|ERROR|Exception", line)]
    shutil.rmtree(tmp, ignore_errors=True)
    return report(results, snap, mem, bare, errors + problems, log, now() - started, args)


def report(results, snap, mem, bare, errors, log, elapsed, args) -> int:
    ms = lambda s: f"{s * 1e3:8.1f}"  # noqa: E731
    print("\n== fan-out latency: campaignKpis of one campaign, update arrival − t0 (ingest HTTP response returned) ==")
    print(f"{'N':>6} {'subs/sock':>9} {'sockets':>7} {'rounds':>6} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} "
          f"{'last p50':>8} {'last max':>8} {'min ms':>8} {'http p50':>8} {'srv CPU':>8} {'cli CPU':>8} {'missing':>7}")
    for r in results:
        print(f"{r.n:>6} {r.per:>9} {r.sockets:>7} {r.rounds:>6} {ms(pct(r.samples, 50))} {ms(pct(r.samples, 95))} "
              f"{ms(max(r.samples, default=float('nan')))} {ms(pct(r.completion, 50))} "
              f"{ms(max(r.completion, default=float('nan')))} {ms(min(r.samples, default=float('nan')))} "
              f"{ms(pct(r.http, 50))} {ms(r.server_cpu)} {ms(r.client_cpu)} {r.missing:>7}")
    print("  last = per round, the last subscriber's arrival; min < 0 = the update beat the HTTP response (the event is\n"
          "  published before the response is written); srv/cli CPU = CPU ms per change of the server / this client\n"
          "  process (both share the same cores).")
    print("\n== while subscribing and during the rounds ==")
    print(f"{'N':>6} {'subs/sock':>9} {'all first s':>11} {'snaps':>9} {'snap/chg':>8} "
          f"{'srv GC>5ms':>10} {'gen2':>4} {'gen2 ms':>8} {'gen2 max':>8} {'cli GC ms':>9} {'kept/msg':>8}")
    for r in results:
        g2 = [d for g, d in r.server_gc if g == 2]
        print(f"{r.n:>6} {r.per:>9} {r.open_s:>11.1f} {r.open_snapshots:>9.0f} {r.round_snapshots:>8.2f} "
              f"{len(r.server_gc):>10} {len(g2):>4} {ms(sum(g2))} {ms(max(g2, default=0))} "
              f"{ms(sum(d for _, d in r.client_gc))} {r.retained:>8.1f}")
    print("  all first s = seconds until every subscription had its first snapshot; snaps = increase of\n"
          "  pulse_snapshot_computations_total while subscribing (a newcomer's own first read may not be counted);\n"
          "  snap/chg = the same per change during the rounds; srv GC = server\n"
          "  garbage-collector passes over 5 ms during the rounds (gen2 = full collections, total and longest);\n"
          "  kept/msg = objects the server's collector still tracks after the rounds (after a full collection),\n"
          "  per delivered update: ~0 unless something is retained per message.")
    print("\n== p95 ratios (same run) ==")
    for per in sorted({r.per for r in results}, reverse=True):
        small = min((r for r in results if r.per == per), key=lambda r: r.n, default=None)
        if small is None:
            continue
        p95_small = pct(small.samples, 95)
        for r in sorted((r for r in results if r.per == per and r.n != small.n), key=lambda r: r.n):
            ratio = pct(r.samples, 95) / p95_small if p95_small > 0 else float("nan")
            target = "  (target < 10)" if r.n == 1000 and small.n == 10 else ""
            print(f"  {per:>2}/socket: p95 N={r.n} / N={small.n} = {ratio:6.1f}×{target}")
    print("  server CPU per extra subscriber and change (marginal, (CPU(N) − CPU(small)) / (N − small); steadier "
          "than wall times under load):")
    for per in sorted({r.per for r in results}, reverse=True):
        small = min((r for r in results if r.per == per), key=lambda r: r.n, default=None)
        for r in sorted((r for r in results if small and r.per == per and r.n != small.n), key=lambda r: r.n):
            print(f"  {per:>2}/socket: N={r.n}: {(r.server_cpu - small.server_cpu) / (r.n - small.n) * 1e6:6.0f} µs "
                  f"(client: {(r.client_cpu - small.client_cpu) / (r.n - small.n) * 1e6:4.0f} µs)")
    if snap:
        print(f"\n== snapshot computations for one change, {snap['subscribers']} subscribers of one campaign ==")
        print(f"  pulse_snapshot_computations_total{{topic=\"campaign\"}} +{snap['snapshots']:.0f} "
              f"(expected 1 per instance); campaignKpis messages +{snap['messages']:.0f}")
    if mem and bare:
        ratio = mem["per_conn"] / bare["per_conn"] if bare["per_conn"] > 0 else float("nan")
        print(f"\n== server RSS per idle websocket ({mem['m']} sockets) ==")
        print(f"  API (1 campaignKpis subscription each): {mem['before'] / 2**20:7.1f} → {mem['after'] / 2**20:7.1f} MiB, "
              f"{mem['per_conn'] / 1024:6.1f} KiB/connection (deflate {'on' if mem['deflate'] else 'off'})")
        print(f"  bare websockets echo server:            {bare['before'] / 2**20:7.1f} → {bare['after'] / 2**20:7.1f} MiB, "
              f"{bare['per_conn'] / 1024:6.1f} KiB/connection (deflate {'on' if bare['deflate'] else 'off'})")
        print(f"  ratio API / bare = {ratio:.2f}×  (target ≤ 2×, issue 15)")
    print(f"\nserver log errors and client-side problems: {len(errors)}"
          + ("" if not errors else ":\n    " + "\n    ".join(errors[:10])))
    print(f"total {elapsed:.0f}s; load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs "
          "(other processes share them: compare rows of this run, not runs)")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.realtime", description="Campaign Pulse realtime fan-out bench.")
    p.add_argument("--sizes", default="10,1000,5000", help="subscriber counts (default 10,1000,5000)")
    p.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite",
                   help="sqlite file in a temp dir, or a throwaway database next to PULSE_BENCH_DATABASE_URL "
                        f"(default {DEFAULT_ADMIN_URL})")
    p.add_argument("--broadcast", default="memory://", help="PULSE_BROADCAST_URL of the server (e.g. redis://127.0.0.1:6379/0)")
    p.add_argument("--rounds", type=int, default=20, help="changes per layout (default 20)")
    p.add_argument("--gap", type=float, default=0.3, help="pause between changes, seconds (default 0.3)")
    p.add_argument("--per-conn", type=int, default=50, help="subscriptions per socket in the shared layout (default 50)")
    p.add_argument("--per-socket-max", type=int, default=1000, help="also run 1 subscription per socket up to this N")
    p.add_argument("--idle", type=int, default=1000, help="idle sockets for the memory comparison (default 1000)")
    p.add_argument("--snapshot-subs", type=int, default=1000, help="subscribers for the snapshot count (default 1000)")
    p.add_argument("--min-interval", type=float, default=0.0, help="PULSE_SUBSCRIPTION_MIN_INTERVAL_S (default 0)")
    p.add_argument("--concurrency", type=int, default=64, help="websocket handshakes in flight (default 64)")
    args = p.parse_args(argv)
    try:
        import uvloop
    except ImportError:
        return asyncio.run(bench(args))
    return uvloop.run(bench(args))


if __name__ == "__main__":
    sys.exit(main())
