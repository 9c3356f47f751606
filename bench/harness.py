"""Shared benchmark plumbing: a throwaway PostgreSQL database, the real app
in-process, a GraphQL client, an SQL statement recorder and small statistics.

Nothing here touches product code: the app is created with `create_app` and
driven over GraphQL exactly like the tests do; the recorder wraps the Tortoise
asyncpg client classes at runtime (and only while the bench runs).
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import functools
import os
import re
import statistics
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
from asgi_lifespan import LifespanManager

DEFAULT_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/test"


# ---------------------------------------------------------------- database


def admin_url() -> str:
    return os.environ.get("PULSE_BENCH_DATABASE_URL", DEFAULT_ADMIN_URL)


def _asyncpg(url: str) -> str:
    return re.sub(r"^postgres(ql)?://", "postgresql://", url)


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def db_prefix() -> str:
    """Bench database names start with PULSE_BENCH_DB_PREFIX (default `pulse_bench`): sessions
    sharing one PostgreSQL server pick their own and never meet."""
    return re.sub(r"[^a-z0-9_]", "_", os.environ.get("PULSE_BENCH_DB_PREFIX", "pulse_bench").lower())


async def create_database() -> tuple[str, str]:
    name = f"{db_prefix()}_{os.getpid()}_{uuid.uuid4().hex[:4]}"
    conn = await asyncpg.connect(_asyncpg(admin_url()))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = with_database(admin_url(), name)
    if url.startswith("postgresql://"):  # Tortoise wants the postgres:// scheme for asyncpg
        url = "postgres://" + url[len("postgresql://"):]
    return url, name


async def drop_database(name: str) -> None:
    conn = await asyncpg.connect(_asyncpg(admin_url()))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


# ---------------------------------------------------------------- SQL recorder


@dataclass
class Stmt:
    method: str
    sql: str
    values: list | None
    seconds: float


_recording: contextvars.ContextVar[list[Stmt] | None] = contextvars.ContextVar("pulse_bench_sql", default=None)
_METHODS = ("execute_query", "execute_query_dict", "execute_many", "execute_insert", "execute_script")
_installed = False


def install_recorder() -> None:
    """Wrap the asyncpg client's execute methods so statements can be recorded.

    Recording is per asyncio context (a ContextVar set around one request), so
    background work such as the app's scheduler tick is never counted.
    """
    global _installed
    if _installed:
        return
    from tortoise.backends.asyncpg import client as pgc
    from tortoise.backends.base_postgres import client as basepg

    for cls in (basepg.BasePostgresClient, pgc.AsyncpgDBClient, pgc.TransactionWrapper):
        for name in _METHODS:
            original = cls.__dict__.get(name)
            if original is None:
                continue

            def make(original, name):
                @functools.wraps(original)
                async def wrapped(self, query, *args, **kwargs):
                    sink = _recording.get()
                    if sink is None:
                        return await original(self, query, *args, **kwargs)
                    t0 = time.perf_counter()
                    try:
                        return await original(self, query, *args, **kwargs)
                    finally:
                        values = args[0] if args else kwargs.get("values")
                        sink.append(Stmt(name, query, values, time.perf_counter() - t0))
                return wrapped

            setattr(cls, name, make(original, name))
    # Statements read by position (`app.db.fetch_positional`, `fetch_models`, `fetch_light`) go to
    # asyncpg's connection directly, through `app.db._records`.
    from app import db as pulse_db

    records = getattr(pulse_db, "_records", None)
    if records is not None:
        @functools.wraps(records)
        async def recorded(client, query, values):
            sink = _recording.get()
            if sink is None:
                return await records(client, query, values)
            t0 = time.perf_counter()
            try:
                return await records(client, query, values)
            finally:
                sink.append(Stmt("fetch_positional", query, values, time.perf_counter() - t0))

        pulse_db._records = recorded
    _installed = True


@contextlib.contextmanager
def recording():
    sink: list[Stmt] = []
    token = _recording.set(sink)
    try:
        yield sink
    finally:
        _recording.reset(token)


def shape(sql: str) -> str:
    """A stable, compact key for a statement (for grouping): parameters and lists
    collapsed, long select/insert column lists and bulk-update CASE bodies elided,
    repeated conditions counted. Statements differing only in their column lists
    share a key; statements with different tables or predicates never do."""
    s = re.sub(r"\s+", " ", sql).strip()
    s = re.sub(r"\$\d+", "?", s)
    s = re.sub(r"(\?\s*,\s*)+\?", "?…", s)
    s = re.sub(r"'[^']*'", "'…'", s)
    s = re.sub(r"^SELECT (.{40,}?) FROM ", "SELECT … FROM ", s)
    s = re.sub(r"^(INSERT INTO \S+) \((.{40,}?)\) VALUES", r"\1 (…) VALUES", s)
    s = re.sub(r"=CASE .*? END", "=CASE…", s)
    return re.sub(r"(\S+ IN \(\?…\))((?: AND \1)+)",
                  lambda m: f"{m.group(1)} [×{1 + m.group(2).count(' AND ')}, ANDed]", s)


def label(key: str, width: int = 170) -> str:
    """A shape, truncated for display."""
    return key if len(key) <= width else key[:width - 1] + "…"


def touches_send(sql: str) -> bool:
    return re.search(r'\bFROM\s+"?send"?(\s|$)|\bJOIN\s+"?send"?(\s|$)', sql, re.I) is not None


# ---------------------------------------------------------------- statistics


def pct(values: list[float], q: float) -> float:
    """Percentile with linear interpolation (q in 0..100)."""
    xs = sorted(values)
    if not xs:
        return float("nan")
    if len(xs) == 1:
        return xs[0]
    k = (len(xs) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def summary(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "p50": pct(values, 50), "p95": pct(values, 95), "mean": statistics.fmean(values),
            "min": min(values), "max": max(values)}


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


# ---------------------------------------------------------------- GraphQL client


def gid(type_name: str, pk: int) -> str:
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode()


def pk(global_id: str) -> int:
    return int(base64.b64decode(global_id).decode().partition(":")[2])


class GraphQLFailure(RuntimeError):
    pass


@dataclass
class Client:
    http: httpx.AsyncClient
    token: str

    async def post(self, query: str, variables: dict | None = None) -> httpx.Response:
        return await self.http.post("/graphql", json={"query": query, "variables": variables or {}},
                                    headers={"Authorization": f"Bearer {self.token}"})

    async def __call__(self, query: str, variables: dict | None = None) -> dict[str, Any]:
        r = await self.post(query, variables)
        if r.status_code != 200:
            raise GraphQLFailure(f"HTTP {r.status_code}: {r.text[:500]}")
        body = r.json()
        if body.get("errors"):
            raise GraphQLFailure(f"{body['errors']}"[:1000])
        return body["data"]

    async def timed(self, query: str, variables: dict | None = None) -> float:
        t0 = time.perf_counter()
        r = await self.post(query, variables)
        elapsed = time.perf_counter() - t0
        if r.status_code != 200 or r.json().get("errors"):
            raise GraphQLFailure(f"HTTP {r.status_code}: {r.text[:500]}")
        return elapsed


# ---------------------------------------------------------------- the running app


@dataclass
class Env:
    http: httpx.AsyncClient
    database_url: str
    database_name: str
    notes: list[str] = field(default_factory=list)

    async def pg(self) -> asyncpg.Connection:
        """A direct connection to the bench database (bulk loads, EXPLAIN)."""
        return await asyncpg.connect(_asyncpg(self.database_url))

    async def organization(self, label: str) -> Client:
        from app.tenancy.service import create_organization

        name = f"bench-{label}-{uuid.uuid4().hex[:6]}"
        issued = await create_organization(name, f"owner@{name}.test", "EUR", "UTC")
        return Client(self.http, issued.token)


@contextlib.asynccontextmanager
async def running_app():
    from app.main import create_app
    from app.settings import Settings

    url, name = await create_database()
    try:
        settings = Settings(
            env=os.environ.get("PULSE_BENCH_ENV", "production"),
            database_url=url,
            broadcast_url=os.environ.get("PULSE_BENCH_BROADCAST_URL", "memory://"),
            auto_migrate=True,
        )
        app = create_app(settings)
        install_recorder()
        async with LifespanManager(app, startup_timeout=120, shutdown_timeout=60):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://pulse.bench", timeout=300) as http:
                yield Env(http, url, name)
    finally:
        if os.environ.get("PULSE_BENCH_KEEP"):
            print(f"\n(kept database {name}: PULSE_BENCH_KEEP is set)")
        else:
            await drop_database(name)


# ---------------------------------------------------------------- seeding through the API


async def zone(c: Client, name: str) -> str:
    d = await c("mutation($n:String!){ zoneCreate(name:$n){ zone{ id } userErrors{ code message } } }", {"n": name})
    assert not d["zoneCreate"]["userErrors"], d
    return d["zoneCreate"]["zone"]["id"]


async def center(c: Client, zone_id: str, name: str) -> str:
    d = await c("mutation($z:ID!,$n:String!){ centerCreate(zoneId:$z, name:$n){ center{ id } "
                "userErrors{ code message } } }", {"z": zone_id, "n": name})
    assert not d["centerCreate"]["userErrors"], d
    return d["centerCreate"]["center"]["id"]


async def leads(c: Client, rows: list[dict]) -> list[str]:
    out: list[str] = []
    for i in range(0, len(rows), 5000):
        d = await c("mutation($l:[LeadInput!]!){ leadsUpsert(leads:$l){ leads{ id externalId } "
                    "userErrors{ field message code } } }", {"l": rows[i:i + 5000]})
        assert not d["leadsUpsert"]["userErrors"], d
        out += [x["id"] for x in d["leadsUpsert"]["leads"]]
    return out


async def campaign(c: Client, name: str, *, owner: str | None = None, budget: str | None = None,
                   channels: list[dict] | None = None) -> str:
    inp: dict[str, Any] = {"name": name, "channels": channels or [
        {"channel": "EMAIL", "unitCost": "0.01", "creditsPerMessage": 1},
        {"channel": "SMS", "unitCost": "0.05", "creditsPerMessage": 2}]}
    if owner:
        inp["ownerUnitId"] = owner
    if budget:
        inp["budget"] = budget
    d = await c("mutation($i:CampaignCreateInput!){ campaignCreate(input:$i){ campaign{ id } "
                "userErrors{ field message code } } }", {"i": inp})
    assert not d["campaignCreate"]["userErrors"], d
    return d["campaignCreate"]["campaign"]["id"]


async def launch(c: Client, campaign_id: str, lead_ids: list[str]) -> None:
    d = await c("mutation($c:ID!,$i:AudienceInput!){ audienceSet(campaignId:$c, input:$i){ "
                "userErrors{ code message } } }", {"c": campaign_id, "i": {"leadIds": lead_ids}})
    assert not d["audienceSet"]["userErrors"], d
    d = await c("mutation($id:ID!){ campaignLaunch(id:$id){ campaign{ status } userErrors{ code message } } }",
                {"id": campaign_id})
    assert not d["campaignLaunch"]["userErrors"], d


INGEST = ("mutation($e:[SendEventInput!]!){ sendEventsIngest(events:$e){ accepted duplicates "
          "rejected{ index code message } userErrors{ code message } } }")


async def ingest(c: Client, events: list[dict]) -> dict:
    d = await c(INGEST, {"e": events})
    r = d["sendEventsIngest"]
    if r["userErrors"]:
        raise GraphQLFailure(f"sendEventsIngest userErrors: {r['userErrors']}")
    return r


async def spend(c: Client, campaign_id: str, amount: str, channel: str | None = None) -> None:
    d = await c("mutation($i:SpendLogInput!){ spendLog(input:$i){ userErrors{ code message } } }",
                {"i": {"campaignId": campaign_id, "amount": amount, "category": "print", "channel": channel}})
    assert not d["spendLog"]["userErrors"], d


def per_shape(stmts: list["Stmt"], runs: int) -> dict[str, tuple[float, "Stmt"]]:
    """Mean SQL seconds per run for each statement shape, with the last statement of that shape."""
    from collections import defaultdict

    total: dict[str, float] = defaultdict(float)
    last: dict[str, Stmt] = {}
    for s in stmts:
        key = shape(s.sql)
        total[key] += s.seconds
        last[key] = s
    return {k: (total[k] / runs, last[k]) for k in total}


def sql_literal(v) -> str:
    """A parameter written inline, for EXPLAIN of a recorded statement."""
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if hasattr(v, "isoformat"):
        return "'" + v.isoformat() + "'"
    if isinstance(v, (list, tuple)):
        return "ARRAY[" + ", ".join(sql_literal(x) for x in v) + "]"
    v = getattr(v, "value", v)
    return "'" + str(v).replace("'", "''") + "'"


async def explain(env: "Env", stmt: "Stmt") -> list[str]:
    """EXPLAIN ANALYZE the statement twice: with a custom plan (parameters known to
    the planner) and with the generic plan of a prepared statement — the plan
    asyncpg's cached prepared statements get after five executions when
    plan_cache_mode=auto finds it cheaper."""
    if stmt.method == "execute_many" or not stmt.sql.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE", "INSERT")):
        return ["(not explained)"]
    values = list(stmt.values or [])
    out: list[str] = []
    pg = await env.pg()
    try:
        tr = pg.transaction()  # rolled back: EXPLAIN ANALYZE of an UPDATE changes nothing
        await tr.start()
        try:
            await pg.execute("SET LOCAL statement_timeout = '60s'")
            out.append("-- custom plan (EXPLAIN ANALYZE with the parameters bound):")
            out += [r[0] for r in await pg.fetch("EXPLAIN (ANALYZE, BUFFERS) " + stmt.sql, *values)]
            await pg.execute("SET LOCAL plan_cache_mode = force_generic_plan; SET LOCAL statement_timeout = '10s'")
            ps = await pg.prepare(stmt.sql)
            args = ", ".join(sql_literal(v) for v in values)
            out.append("-- generic plan (what a cached prepared statement switches to when plan_cache_mode=auto "
                       "finds it cheaper; 10 s timeout):")
            out += [r[0] for r in await pg.fetch(f"EXPLAIN (ANALYZE, BUFFERS) EXECUTE {ps.get_name()}({args})")]
        finally:
            await tr.rollback()
    except Exception as exc:  # noqa: BLE001 - evidence only
        out.append(f"(EXPLAIN failed: {type(exc).__name__}: {exc})")
    finally:
        await pg.close()
    return [line if len(line) <= 220 else line[:217] + "…" for line in out]
