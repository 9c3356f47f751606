"""The database: Tortoise config, init/close, migrations, and the one module that knows the dialect.

Domain code writes raw SQL with `?` placeholders and calls the helpers below (`sql`, `fetch`,
`in_list`, `in_pairs`, `insert_rows`, `insert_together`, `insert_with_children`, `update_rows`, `for_update`, `lock_rows`, `merge_json_list`,
`param_date`/`param_datetime`, `db_date`/`db_datetime`); it never branches on the backend itself."""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import time
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

import orjson
from tortoise import Tortoise, connections
from tortoise.connection import get_connection
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.migrations.api import migrate as migrate_api

from app.settings import Settings
from models import MODEL_MODULES


async def _release_without_reset(connection) -> None:
    """Pool release hook: nothing beyond asyncpg's own rollback of an open transaction.

    asyncpg's default release runs `SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *;
    RESET ALL` — one more round trip after every checkout. Pulse uses none of those session
    features: no session advisory locks (only transaction-scoped `pg_advisory_xact_lock`), no
    cursors kept across checkouts, no LISTEN, no session `SET` (only `SET LOCAL` / `SET
    TRANSACTION`). Keep it that way, or drop this hook."""


def connection_config(database_url: str, pool_size: int | None = None) -> dict[str, Any] | str:
    """Tortoise's connection config for a URL; on PostgreSQL, asyncpg's pool without the reset
    round trip (`_release_without_reset`), of `pool_size` connections (PULSE_DB_POOL_SIZE)."""
    if not database_url.startswith(("postgres://", "postgresql://", "asyncpg://")):
        return database_url
    config = expand_db_url(database_url)
    config["credentials"]["reset"] = _release_without_reset
    if pool_size is not None and "maxsize" not in config["credentials"]:  # ?maxsize= in the URL wins
        config["credentials"]["maxsize"] = pool_size
    return config


def tortoise_config(database_url: str, pool_size: int | None = None) -> dict[str, Any]:
    return {
        "connections": {"default": connection_config(database_url, pool_size)},
        "apps": {
            "models": {
                "models": MODEL_MODULES,
                "migrations": "models.migrations",
                "default_connection": "default",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


async def init_db(settings: Settings, *, migrate: bool | None = None) -> None:
    pool_log = logging.getLogger("asyncpg.pool")
    if not any(isinstance(f, _PoolFloorOnce) for f in pool_log.filters):
        pool_log.addFilter(_PoolFloorOnce())
    config = tortoise_config(settings.database_url, settings.db_pool_size)
    if migrate if migrate is not None else settings.should_auto_migrate:
        await run_migrations(settings.database_url)
    # Requests run in other tasks than the lifespan: use the global context.
    await Tortoise.init(config=config, _enable_global_fallback=True)
    global _dialect
    _dialect = get_connection("default").capabilities.dialect
    if settings.is_sqlite:
        conn = connections.get("default")
        await conn.execute_script("PRAGMA journal_mode=WAL; PRAGMA busy_timeout=10000; PRAGMA foreign_keys=ON;")


async def run_migrations(database_url: str) -> None:
    config = tortoise_config(database_url)
    await migrate_api(config=config)
    await Tortoise.close_connections()


async def close_db() -> None:
    global _dialect
    _dialect = None
    await Tortoise.close_connections()


def conn():
    # get_connection, not `connections.get`: the `connections` proxy finds every attribute through
    # __getattr__ after a failed lookup (an AttributeError raised and caught: ~8 µs per call, and
    # every raw statement asks for its connection and dialect).
    return get_connection("default")


_dialect: str | None = None  # of the database init_db connected to (one per process)


def is_postgres() -> bool:
    return (_dialect or conn().capabilities.dialect) == "postgres"


_QMARK = re.compile(r"\?")


def sql(query: str) -> str:
    """Write raw SQL with `?` placeholders; converted to `$n` for PostgreSQL."""
    if not is_postgres():
        return query
    return _numbered(query)


@functools.lru_cache(maxsize=1024)
def _numbered(query: str) -> str:
    # Statements are fixed texts (values go in parameters): each is converted once.
    counter = iter(range(1, 10_000))
    return _QMARK.sub(lambda _m: f"${next(counter)}", query)


@functools.lru_cache(maxsize=64)
def select_columns(model, alias: str) -> str:
    """Every column of `model`'s table, as `alias."col"` (the row `fetch_models` builds models from)."""
    return ", ".join(f'{alias}."{column}"' for column in model._meta.fields_db_projection.values())


async def fetch_models(model, query: str, params: list | tuple = ()) -> list:
    """Model instances from a fixed raw statement selecting `select_columns(model, alias)`: no query
    builder on the way in, Tortoise's own row conversion on the way out (`_reader`: what
    `_init_from_db` sets, generated per model), so a model read here is the same as one read through
    a queryset (on SQLite and PostgreSQL alike). The statement selects `select_columns(model, …)`."""
    postgres, rows = await _positional_rows(query, params)
    from tortoise.timezone import get_use_tz

    return _reader(model, postgres, get_use_tz(), True)(rows)


async def _records(client, query: str, values: list) -> list:
    async with client.acquire_connection() as connection:
        return await connection.fetch(query, *values)


async def fetch(query: str, params: list | tuple = ()) -> list[dict]:
    return await conn().execute_query_dict(sql(query), list(params))


def for_update(*, skip_locked: bool = False) -> str:
    """The row-locking clause to append to a raw `SELECT`: `FOR NO KEY UPDATE [SKIP LOCKED]` on
    PostgreSQL, nothing on SQLite (one writer at a time: the transaction already excludes the others).

    NO KEY UPDATE, never plain FOR UPDATE (Pulse never changes a key of a row it locks): a plain
    FOR UPDATE conflicts with the KEY SHARE lock that every insert of a referencing row takes on its
    parent (a `send` on its campaign). Two ingests into one campaign that had each inserted sends and
    then locked the campaign FOR UPDATE deadlocked (PostgreSQL aborted one: "deadlock detected").
    Querysets use `.select_for_update(no_key=True)` for the same reason."""
    if not is_postgres():
        return ""
    return " FOR NO KEY UPDATE SKIP LOCKED" if skip_locked else " FOR NO KEY UPDATE"


@contextlib.asynccontextmanager
async def snapshot():
    """Several reads from one consistent view of the database (`async with db.snapshot():`): one
    REPEATABLE READ READ ONLY transaction on PostgreSQL (under READ COMMITTED each statement would see
    the commits made since the previous one: a KPI frame showed a message cost counted in the totals
    but not yet in the campaign's spend); on SQLite one transaction is already a consistent view.
    Inside a transaction already open, its view is used."""
    from tortoise.backends.base.client import TransactionalDBClient
    from tortoise.transactions import in_transaction

    if isinstance(conn(), TransactionalDBClient):
        yield
        return
    async with in_transaction() as connection:
        if connection.capabilities.dialect == "postgres":
            await connection.execute_query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield


def takes_row_locks() -> bool:
    """Whether `for_update` locks rows. Work that re-checks state once the locks are held (another
    transaction may have changed it while this one waited) is needed only then."""
    return is_postgres()


def param_datetime(value: datetime) -> datetime | str:
    """A timestamp as a raw-SQL parameter (SQLite stores Tortoise's ISO text)."""
    return value if is_postgres() else value.isoformat(sep=" ")


def param_date(value: date | str) -> date | str:
    """A date as a raw-SQL parameter: a `date` on PostgreSQL, ISO text on SQLite."""
    if is_postgres():
        return date.fromisoformat(value) if isinstance(value, str) else value
    return value.isoformat() if isinstance(value, date) else value


async def merge_json_list(table: str, column: str, row_id: int, values: list[str]) -> None:
    """Set union of `values` into a JSON list column, in one statement: concurrent writers that
    share no lock cannot lose each other's values."""
    payload = orjson.dumps(values).decode()
    if is_postgres():
        await conn().execute_query(
            f"UPDATE {table} SET {column} = (SELECT COALESCE(jsonb_agg(DISTINCT c ORDER BY c), '[]'::jsonb) "
            f"FROM jsonb_array_elements_text(COALESCE({column}, '[]'::jsonb) || $1::jsonb) AS c) WHERE id = $2",
            [payload, row_id])
    else:
        await conn().execute_query(
            f"UPDATE {table} SET {column} = (SELECT json_group_array(value) FROM (SELECT value FROM "
            f"json_each(COALESCE({table}.{column}, '[]')) UNION SELECT value FROM json_each(?) ORDER BY value)) "
            f"WHERE id = ?", [payload, row_id])


async def lock_rows(table: str, ids) -> None:
    """`SELECT … FOR NO KEY UPDATE` in id order (PostgreSQL; SQLite serializes writers anyway; why
    not plain FOR UPDATE: `for_update`).

    Tortoise drops FOR UPDATE from `.select_for_update(no_key=True).values_list()`, so row
    locks are taken here, explicitly."""
    ids = sorted(set(ids))
    if not ids or not is_postgres():
        return
    await conn().execute_query(
        f"SELECT id FROM {table} WHERE id IN ({','.join(f'${i}' for i in range(1, len(ids) + 1))}) ORDER BY id FOR NO KEY UPDATE",
        ids)


def in_list(column: str, values) -> tuple[str, list]:
    """`column IN (…)` for raw SQL: `column = ANY(?)` with one array parameter on PostgreSQL
    (one statement text, so one cached plan, whatever the number of values), `?` per value on SQLite."""
    values = list(values)
    if is_postgres():
        return f"{column} = ANY(?)", [values]
    return f"{column} IN ({','.join('?' for _ in values)})", values


def in_pairs(columns: tuple[str, str], pairs, types: tuple[str, str] = ("int8", "int8")) -> tuple[str, list]:
    """`(a, b) IN (the pairs)` for raw SQL — exactly these pairs, not `a = ANY(…) AND b = ANY(…)`
    (the cross product of both lists, whose generic plan is a sequential scan: the planner cannot
    estimate two array parameters and prices them as matching most of the table).

    PostgreSQL: `(a, b) IN (SELECT * FROM unnest(?::int8[], ?::int8[]))`, two array parameters: one
    statement text whatever the number of pairs, and a plan — custom or generic — that probes an
    index on (a, b) once per pair. SQLite: `(a, b) IN (VALUES (?, ?), …)`."""
    pairs = sorted(set(pairs))
    a, b = columns
    if is_postgres():
        return (f"({a}, {b}) IN (SELECT * FROM unnest(?::{types[0]}[], ?::{types[1]}[]))",
                [[p[0] for p in pairs], [p[1] for p in pairs]])
    if not pairs:
        return "1 = 0", []
    return f"({a}, {b}) IN (VALUES {', '.join('(?, ?)' for _ in pairs)})", [v for p in pairs for v in p]


def _returning(returning: str | None) -> str:
    return f" RETURNING {returning}" if returning else ""


def _unnest_insert(table: str, columns: dict[str, str], rows: list, tail: str = "", first: int = 1) -> tuple[str, list]:
    """PostgreSQL: `INSERT INTO table (…) SELECT * FROM unnest($first::type[], …) <tail>` and its arrays."""
    arrays = [list(col) for col in zip(*rows)]
    arrays += [[] for _ in range(len(columns) - len(arrays))]
    marks = ", ".join(f"${i}::{t}[]" for i, t in enumerate(columns.values(), start=first))
    return f"INSERT INTO {table} ({', '.join(columns)}) SELECT * FROM unnest({marks}){tail}", arrays


@dataclass(frozen=True)
class Rows:
    """Rows to insert (`insert_together`): `columns` maps each column to its PostgreSQL type, `rows`
    are tuples of plain values in that order; `on_conflict` an optional `ON CONFLICT …` clause."""

    table: str
    columns: dict
    rows: list
    on_conflict: str = ""


@dataclass(frozen=True)
class Added:
    """Amounts to add to columns of existing rows (`insert_together`): `UPDATE table SET c = c + v.c`
    for each row `(key value, *amounts)`, in key order; `columns` maps each column to its type."""

    table: str
    key: tuple
    columns: dict
    rows: list


async def insert_together(*writes: Rows | Added) -> None:
    """Several multi-row writes into different tables, none reading another's rows and none returning
    anything, in one round trip.

    PostgreSQL: one statement — each insert is an `INSERT … SELECT * FROM unnest(…)` (rows in their
    order, as `insert_rows`), each `Added` an `UPDATE … FROM unnest(…)`, all but the last as
    data-modifying `WITH` queries, the last the main statement. PostgreSQL runs them in one snapshot
    and does not specify their order, hence the conditions: different tables, no RETURNING, nothing
    that reads what another writes (each sees the transaction's earlier statements); the row locks an
    upsert takes are still taken in its rows' order. SQLite: one statement each, in the given order
    (multi-row insert; a prepared `UPDATE` per row)."""
    writes = tuple(w for w in writes if w.rows)
    if not writes:
        return
    if len({w.table for w in writes}) < len(writes):  # two writes of one table: one statement each, in order
        for w in writes:
            await insert_together(w)
        return
    if not is_postgres():
        for w in writes:
            if isinstance(w, Added):
                sets = ", ".join(f"{c} = {c} + ?" for c in w.columns)
                await conn().execute_many(f"UPDATE {w.table} SET {sets} WHERE {w.key[0]} = ?",
                                          [[*r[1:], r[0]] for r in sorted(w.rows, key=lambda r: r[0])])
            else:
                await insert_rows(w.table, w.columns, w.rows, on_conflict=w.on_conflict)
        return
    parts, params = [], []
    for w in writes:
        if isinstance(w, Added):
            text, arrays = _unnest_add(w, first=len(params) + 1)
        else:
            text, arrays = _unnest_insert(w.table, w.columns, w.rows, f" {w.on_conflict}" if w.on_conflict else "",
                                          first=len(params) + 1)
        parts.append(text)
        params += arrays
    ctes = ", ".join(f"w{i} AS ({text})" for i, text in enumerate(parts[:-1]))
    await conn().execute_query((f"WITH {ctes} " if ctes else "") + parts[-1], params)


async def insert_with_children(parent: Rows, keys: tuple[str, str], child: Rows, fk: str,
                               parent_of: list) -> list[tuple]:
    """Insert parent rows and child rows that may reference them, in one round trip on PostgreSQL.

    `keys`: two columns identifying a parent row (unique); `fk`: the child column holding the
    parent's id; `parent_of[i]`: for child row i whose `fk` value is None, the `keys` values of the
    new parent it belongs to (None when its `fk` is given). Returns `(id, key1, key2)` of each new
    parent. Parents are inserted in their order, children in theirs (ids assigned in that order).

    PostgreSQL: `WITH p AS (INSERT INTO parent … RETURNING id, keys), c AS (INSERT INTO child …
    SELECT …, COALESCE(v.fk, p.id), … FROM unnest(…) WITH ORDINALITY v LEFT JOIN p ON keys ORDER BY
    ordinality) SELECT id, keys FROM p` (foreign keys are checked at the end of the statement, when
    the parents exist). SQLite: `insert_rows` of the parents with RETURNING, then of the children."""
    k1, k2 = keys
    if not is_postgres():
        found = await insert_rows(parent.table, parent.columns, parent.rows, returning=f"id, {k1}, {k2}")
        ids = {(r[k1], r[k2]): r["id"] for r in found}
        at = list(child.columns).index(fk)
        rows = [r if ref is None else (*r[:at], ids[ref], *r[at + 1:]) for r, ref in zip(child.rows, parent_of)]
        await insert_rows(child.table, child.columns, rows, on_conflict=child.on_conflict)
        return [(r["id"], r[k1], r[k2]) for r in found]
    p_text, p_arrays = _unnest_insert(parent.table, parent.columns, parent.rows, f" RETURNING id, {k1}, {k2}")
    names = list(child.columns)
    arrays = [list(col) for col in zip(*child.rows)] if child.rows else [[] for _ in names]
    arrays += [[ref[0] if ref else None for ref in parent_of], [ref[1] if ref else None for ref in parent_of]]
    first = len(p_arrays) + 1
    types = [*child.columns.values(), parent.columns[k1], parent.columns[k2]]
    marks = ", ".join(f"${i}::{t}[]" for i, t in enumerate(types, start=first))
    select = ", ".join(f"COALESCE(v.{c}, p.id)" if c == fk else f"v.{c}" for c in names)
    c_text = (f"INSERT INTO {child.table} ({', '.join(names)}) SELECT {select} FROM unnest({marks}) WITH ORDINALITY "
              f"AS v({', '.join(names)}, pk1_, pk2_, ord_) LEFT JOIN p ON p.{k1} = v.pk1_ AND p.{k2} = v.pk2_ "
              f"ORDER BY v.ord_")
    query = f"WITH p AS ({p_text}), c AS ({c_text}) SELECT id, {k1}, {k2} FROM p"
    return [(r["id"], r[k1], r[k2]) for r in await conn().execute_query_dict(query, [*p_arrays, *arrays])]


def _unnest_add(w: Added, first: int) -> tuple[str, list]:
    key_name, key_type = w.key
    rows = sorted(w.rows, key=lambda r: r[0])  # one lock order for every transaction
    names = [key_name, *w.columns]
    marks = ", ".join(f"${i}::{t}[]" for i, t in enumerate((key_type, *w.columns.values()), start=first))
    sets = ", ".join(f"{c} = t.{c} + v.{c}" for c in w.columns)
    return (f"UPDATE {w.table} AS t SET {sets} FROM unnest({marks}) AS v({', '.join(names)}) "
            f"WHERE t.{key_name} = v.{key_name}", [list(col) for col in zip(*rows)])


async def insert_rows(table: str, columns: dict[str, str], rows: list, returning: str | None = None,
                      on_conflict: str = "") -> list[dict]:
    """Insert many rows in one statement, in the given order (ids are assigned in that order).

    `columns` maps each column to its PostgreSQL type; values are plain Python values (enum
    members as their `.value`). PostgreSQL: `INSERT … SELECT * FROM unnest($1::type[], …)`, one
    statement and one round trip whatever the number of rows. SQLite: multi-row `VALUES` in
    chunks under its parameter limit. With `returning`, the rows of `RETURNING <returning>`
    (match them by a unique key, not by position)."""
    if not rows:
        return []
    names = ", ".join(columns)
    tail = f" {on_conflict}" if on_conflict else ""
    if is_postgres():
        query, arrays = _unnest_insert(table, columns, rows, tail + _returning(returning))
        if returning:
            return await conn().execute_query_dict(query, arrays)
        await conn().execute_query(query, arrays)
        return []
    row_marks = "(" + ", ".join("?" for _ in columns) + ")"
    per = max(1, 30_000 // len(columns))
    out: list[dict] = []
    for start in range(0, len(rows), per):
        chunk = rows[start:start + per]
        query = f"INSERT INTO {table} ({names}) VALUES {', '.join(row_marks for _ in chunk)}{tail}{_returning(returning)}"
        params = [v for row in chunk for v in row]
        if returning:
            out += await conn().execute_query_dict(query, params)
        else:
            await conn().execute_query(query, params)
    return out


async def update_rows(table: str, key: tuple[str, str], columns: dict[str, str], rows: list) -> None:
    """Set `columns` of many rows, each row `(key value, *column values)`.

    PostgreSQL: one `UPDATE … FROM unnest(…)` statement (rows updated in key order); SQLite:
    one prepared `UPDATE … WHERE key = ?` run for every row (in-process, no round trips)."""
    if not rows:
        return
    key_name, key_type = key
    rows = sorted(rows, key=lambda r: r[0])  # one lock order for every transaction
    if is_postgres():
        names = [key_name, *columns]
        marks = ", ".join(f"${i}::{t}[]" for i, t in enumerate((key_type, *columns.values()), start=1))
        sets = ", ".join(f"{c} = v.{c}" for c in columns)
        await conn().execute_query(
            f"UPDATE {table} AS t SET {sets} FROM unnest({marks}) AS v({', '.join(names)}) "
            f"WHERE t.{key_name} = v.{key_name}", [list(col) for col in zip(*rows)])
        return
    sets = ", ".join(f"{c} = ?" for c in columns)
    await conn().execute_many(f"UPDATE {table} SET {sets} WHERE {key_name} = ?", [[*r[1:], r[0]] for r in rows])


def db_datetime(value):
    """A timestamp read by raw SQL: PostgreSQL gives datetimes, SQLite the ISO text Tortoise wrote."""
    if value is None or not isinstance(value, str):
        return value
    dt = datetime.fromisoformat(value)
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def db_date(value):
    return date.fromisoformat(value) if isinstance(value, str) else value


# Lock order of every write path (PostgreSQL row locks, each kind taken in id order):
#   sends / sender jobs → campaigns → credit wallets → counters → leads.
# A path that needs a later kind first (leadsUpsert: leads, then the ALWAYS_ON campaigns they may join)
# takes the earlier locks up front (audience.leads_locking). `transaction()` retries what still races.
TRANSACTION_ATTEMPTS = 8
retried_transactions = 0  # how many times transaction() had to retry (tests, diagnostics)


async def transaction(body, *, attempts: int = TRANSACTION_ATTEMPTS):
    """Run `await body()` in a database transaction; on a deadlock, serialization failure or unique race
    roll back and run it again (bounded, with jittered back-off). `body` must have no effect outside the
    transaction (publish after it returns)."""
    import asyncio
    import random

    from tortoise.transactions import in_transaction

    global retried_transactions
    for attempt in range(attempts):
        try:
            async with in_transaction():
                return await body()
        except Exception as exc:  # noqa: BLE001 - only races are retried
            if attempt == attempts - 1 or not is_retryable(exc):
                raise
            retried_transactions += 1
            await asyncio.sleep(random.uniform(0.005, 0.03) * (attempt + 1))


def is_retryable(exc: BaseException) -> bool:
    """Deadlocks, serialization failures and unique races: retry the whole transaction."""
    import asyncpg
    from tortoise.exceptions import (
        IntegrityError,
        OperationalError,
        TransactionManagementError,
    )

    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (asyncpg.exceptions.DeadlockDetectedError, asyncpg.exceptions.SerializationError,
                            asyncpg.exceptions.UniqueViolationError, IntegrityError)):
            return True
        if isinstance(exc, (OperationalError, TransactionManagementError)) and "deadlock" in str(exc).lower():
            return True
        exc = exc.__cause__ or exc.__context__
    return False


async def execute(query: str, params: list | tuple = ()) -> int:
    rows, _ = await conn().execute_query(sql(query), list(params))
    return rows


def _default_config() -> dict[str, Any]:
    import os

    from app.settings import SettingsError, get_settings

    try:
        return tortoise_config(get_settings().database_url)
    except SettingsError:
        # Importing must not fail on an unrelated bad setting: the command that reads the
        # settings reports it (one line per setting).
        return tortoise_config(os.environ.get("PULSE_DATABASE_URL", "sqlite://./pulse.db"))


# For the `tortoise` CLI (makemigrations): `[tool.tortoise] tortoise_orm` in pyproject.
TORTOISE_ORM = _default_config()


# ------------------------------------------------------------ database outages

_UNAVAILABLE_NAMES = {
    # asyncpg: connection lost / refused / server shutting down / database gone
    "ConnectionDoesNotExistError", "ConnectionFailureError", "CannotConnectNowError", "AdminShutdownError",
    "CrashShutdownError", "InvalidCatalogNameError", "InterfaceError", "TooManyConnectionsError",
    "PostgresConnectionError", "ClientCannotConnectError", "ConnectionRejectionError",
    # tortoise
    "DBConnectionError",
}
_SQLITE_UNAVAILABLE = ("unable to open database", "disk i/o error", "readonly database", "no such table",
                       "file is not a database")


def is_unavailable(exc: BaseException | None) -> bool:
    """The database cannot be reached (down, restarting, dropped, unreadable) — not a bug of ours:
    clients get 503 SERVICE_UNAVAILABLE and loops log it once per outage."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (ConnectionError, TimeoutError)) or type(exc).__name__ in _UNAVAILABLE_NAMES:
            return True
        if isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError):
            return True
        if type(exc).__name__ == "OperationalError" and any(m in str(exc).lower() for m in _SQLITE_UNAVAILABLE):
            return True
        inner = exc.args[0] if exc.args and isinstance(exc.args[0], BaseException) else None
        exc = exc.__cause__ or inner or exc.__context__
    return False


class _PoolFloorOnce(logging.Filter):
    """asyncpg's pool retries its connection floor every second or two while PostgreSQL is down and
    logs a warning with a traceback each time: let one through per outage (it says nothing new; the
    outage itself is logged once by each of our loops), then again after a quiet minute."""

    def __init__(self) -> None:
        super().__init__()
        self.last = float("-inf")

    def filter(self, record: logging.LogRecord) -> bool:
        if "pool connection floor" not in record.getMessage():
            return True
        quiet = record.created - self.last > 60
        self.last = record.created
        return quiet


class OutageLog:
    """Logs a loop's failure once per outage ("… failed"), then "… recovered" at the first success,
    instead of a traceback every tick while the database is down."""

    def __init__(self, logger: logging.Logger, what: str) -> None:
        self.log, self.what, self.down_since = logger, what, None

    def failed(self, exc: BaseException) -> None:
        if self.down_since is None:
            self.down_since = time.monotonic()
            if is_unavailable(exc):
                self.log.error("%s failed: the database is unavailable (%s: %s); logged once until it recovers",
                               self.what, type(exc).__name__, exc)
            else:
                self.log.error("%s failed; logged once until it recovers", self.what, exc_info=exc)

    def ok(self) -> None:
        if self.down_since is not None:
            self.log.warning("%s recovered after %.1f s", self.what, time.monotonic() - self.down_since)
            self.down_since = None


# ---------------------------------------------------------------- light rows

def light_row_type(model):
    """A plain row type for `model` (issue 15 item 2, third pass): `__slots__` named after the model's
    attributes (`campaign_id` for a foreign key), built positionally from the columns of
    `select_columns(model, alias)` and converted exactly as Tortoise's `_init_from_db` converts them
    (the same values, types and time zones), without a model instance: no `__new__` of a Model, no
    per-field `setattr` through the model's machinery, no `**row` mapping copy of each record. Read
    only: for answering reads (the send log), never for saving. `pk` is the primary key's value."""
    return _light_types(model)


@functools.lru_cache(maxsize=32)
def _light_types(model):
    meta = model._meta
    names = tuple(meta.fields_db_projection.keys())  # model attribute names, in select_columns order
    pk_name = meta.pk_attr
    ns = {"__slots__": names, "__module__": __name__,
          "pk": property(lambda self: getattr(self, pk_name)),
          "__repr__": lambda self: f"<{model.__name__} row {getattr(self, pk_name)}>",
          "_model": model, "_names": names}
    return type(f"{model.__name__}Row", (), ns)


def _converters(model, postgres: bool, use_tz: bool) -> dict:
    """Each column's conversion as `_init_from_db` does it (see there), by attribute name: native
    fields as they come (None), default fields through `field_type` unless null, the others through
    `to_python_value` — except datetimes on PostgreSQL with time zones on (asyncpg gives aware
    values, turned to the default time zone as `DatetimeField.to_python_value` does), done without
    its per-call settings lookup, and text enums (`enum_type(value)` unless null, as
    `CharEnumFieldInstance.to_python_value`)."""
    from tortoise import fields as tf, timezone as ttz

    meta = model._meta
    out = {name: None for _key, name, _f in meta.db_native_fields}
    out.update({name: ("type", f.field_type) for _key, name, f in meta.db_default_fields})
    for _key, name, f in meta.db_complex_fields:
        if postgres and use_tz and isinstance(f, tf.DatetimeField) \
                and type(f).to_python_value is tf.DatetimeField.to_python_value:
            out[name] = ("dt", ttz.get_default_timezone())
        elif type(f).to_python_value is tf.data.CharEnumFieldInstance.to_python_value:
            out[name] = ("enum", f.enum_type)
        else:
            out[name] = ("call", f.to_python_value)
    return out


def _column_expr(i: int, conv, env: dict) -> str:
    """The generated readers' expression converting column `r[i]` with `_converters`' conversion
    `conv` (its helpers put into `env`)."""
    v = f"r[{i}]"
    if conv is None:
        return v
    env[f"k{i}"] = conv[1]
    if conv[0] == "type":
        return f"(None if (x := {v}) is None else k{i}(x))"
    if conv[0] == "enum":  # what `enum_type(x)` finds first (its value map), else `enum_type(x)` itself
        env[f"m{i}"] = conv[1]._value2member_map_
        return f"(None if (x := {v}) is None else (m{i}.get(x) or k{i}(x)))"
    if conv[0] == "dt":
        return f"(None if (x := {v}) is None else (make_aware(x) if x.tzinfo is None else x.astimezone(k{i})))"
    return f"k{i}({v})"


@functools.lru_cache(maxsize=64)
def _reader(model, postgres: bool, use_tz: bool, as_model: bool):
    """A function building objects from rows of `select_columns(model, …)` (by position), generated
    once per model, dialect and setting as straight-line code (one expression per column):
    `light_row_type(model)` objects, or (`as_model`) model instances holding exactly what
    `_init_from_db` sets — its four flags, then the fields in its order — given as the instance's
    `__dict__` at once (what its `object.__setattr__` calls produce: no field is a descriptor,
    checked here, else Tortoise's own `_init_from_db` is used)."""
    from tortoise import timezone as ttz

    meta = model._meta
    names = list(meta.fields_db_projection)
    position = {name: i for i, name in enumerate(names)}
    conversions = _converters(model, postgres, use_tz)
    env = {"make_aware": ttz.make_aware, "setdict": object.__setattr__}
    if as_model:
        if any(hasattr(getattr(model, n, None), "__set__") for n in names) \
                or meta.db_pk_column not in meta.fields_db_projection.values():
            build = model._init_from_db
            columns = list(meta.fields_db_projection.values())
            return lambda rows: [build(**dict(zip(columns, r))) for r in rows]
        env.update(cls=model, new=model.__new__,
                   custom_pk=meta.db_pk_column not in meta.generated_db_fields)
        order = [name for _k, name, _f in (*meta.db_native_fields, *meta.db_default_fields, *meta.db_complex_fields)]
    else:
        env.update(cls=_light_types(model), new=object.__new__)
        order = names

    def expr(name: str) -> str:
        return _column_expr(position[name], conversions[name], env)

    lines = ["def read(rows):", "    out = []", "    add = out.append", "    for r in rows:", "        o = new(cls)"]
    if as_model:
        lines.append("        setdict(o, '__dict__', {'_partial': False, '_saved_in_db': True, "
                     "'_custom_generated_pk': custom_pk, '_await_when_save': {}, "
                     + ", ".join(f"{name!r}: {expr(name)}" for name in order) + "})")
    else:
        lines += [f"        o.{name} = {expr(name)}" for name in order]
    lines += ["        add(o)", "    return out"]
    exec("\n".join(lines), env)  # noqa: S102 — generated from the model's own field names only
    return env["read"]


async def _positional_rows(query: str, params) -> tuple[bool, list]:
    client = conn()
    postgres = client.capabilities.dialect == "postgres"
    if postgres and hasattr(client, "_translate_exceptions"):
        return postgres, await client._translate_exceptions(_records, sql(query), list(params))
    _count, rows = await client.execute_query(sql(query), list(params))  # sqlite3.Row: by position too
    return postgres, rows


async def fetch_positional(query: str, params: list | tuple = ()) -> list:
    """Like `fetch`, rows read by position (`row[0]`, `tuple(row)`): asyncpg's records (with Tortoise's
    translation of driver errors) or SQLite's rows as they come, no mapping built per row."""
    return (await _positional_rows(query, params))[1]


async def fetch_light(model, query: str, params: list | tuple = ()) -> list:
    """Like `fetch_models`, as `light_row_type(model)` objects (the statement selects
    `select_columns(model, alias)`, in that order)."""
    postgres, rows = await _positional_rows(query, params)
    from tortoise.timezone import get_use_tz

    return _reader(model, postgres, get_use_tz(), False)(rows)


async def fetch_objects_and_rows(model, query: str, params: list | tuple = (), *, light: bool = False,
                                 names: tuple[str, ...] | None = None) -> tuple[list, list]:
    """`fetch_models` (or, `light`, `fetch_light`; or, `names`, `fetch_partial`) of a statement whose
    first columns are `select_columns(model, alias)` (or `select_columns_of(model, alias, names)`) and
    whose further columns are something else (sums read with the rows, say): the objects built from
    the first columns, and the rows as they came (read the further columns by position, after
    `len(names or model._meta.fields_db_projection)`)."""
    postgres, rows = await _positional_rows(query, params)
    from tortoise.timezone import get_use_tz

    if names is not None:
        return _partial_reader(model, tuple(names), postgres, get_use_tz())(rows), rows
    return _reader(model, postgres, get_use_tz(), not light)(rows), rows


# ------------------------------------------------------------- partial light rows

def select_columns_of(model, alias: str, names) -> str:
    """The columns of these attributes of `model` (`campaign_id` for a foreign key), in that order, as
    `alias."col"`: the row `fetch_partial` builds its objects from."""
    projection = model._meta.fields_db_projection
    return ", ".join(f'{alias}."{projection[name]}"' for name in names)


def partial_row_type(model, names) -> type:
    """A `light_row_type` holding only the attributes `names` (read only; `pk` when the primary key is
    among them). Reading another attribute raises AttributeError: for a caller that knows what it
    reads (the campaigns list, from its GraphQL selection)."""
    return _partial_types(model, tuple(names))


@functools.lru_cache(maxsize=64)
def _partial_types(model, names: tuple[str, ...]):
    meta = model._meta
    pk_name = meta.pk_attr
    ns = {"__slots__": names, "__module__": __name__, "_model": model, "_names": names,
          "__repr__": lambda self: f"<{model.__name__} partial row {getattr(self, pk_name, '?')}>"}
    if pk_name in names:
        ns["pk"] = property(lambda self: getattr(self, pk_name))
    return type(f"{model.__name__}PartialRow", (), ns)


async def fetch_partial(model, names, query: str, params: list | tuple = ()) -> list:
    """`partial_row_type(model, names)` objects from a statement selecting `select_columns_of(model,
    alias, names)`, each value converted as `fetch_light` converts it (Tortoise's conversions)."""
    postgres, rows = await _positional_rows(query, params)
    from tortoise.timezone import get_use_tz

    return _partial_reader(model, tuple(names), postgres, get_use_tz())(rows)


@functools.lru_cache(maxsize=64)
def _partial_reader(model, names: tuple[str, ...], postgres: bool, use_tz: bool):
    """`_reader`'s light rows for the columns of `names` only (by position, in that order): the same
    generated straight-line code and the same conversions (`_converters`)."""
    from tortoise import timezone as ttz

    conversions = _converters(model, postgres, use_tz)
    env = {"make_aware": ttz.make_aware, "cls": _partial_types(model, names), "new": object.__new__}

    lines = ["def read(rows):", "    out = []", "    add = out.append", "    for r in rows:", "        o = new(cls)"]
    lines += [f"        o.{name} = {_column_expr(i, conversions[name], env)}" for i, name in enumerate(names)]
    lines += ["        add(o)", "    return out"]
    exec("\n".join(lines), env)  # noqa: S102 — generated from the model's own field names only
    return env["read"]
