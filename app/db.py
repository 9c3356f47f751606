"""Database lifecycle: Tortoise config, init/close, migrations, raw SQL helper."""

from __future__ import annotations

import re
from datetime import date, datetime, timezone
from typing import Any

from tortoise import Tortoise, connections
from tortoise.migrations.api import migrate as migrate_api

from app.settings import Settings
from models import MODEL_MODULES


def tortoise_config(database_url: str) -> dict[str, Any]:
    return {
        "connections": {"default": database_url},
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
    config = tortoise_config(settings.database_url)
    if migrate if migrate is not None else settings.should_auto_migrate:
        await run_migrations(settings.database_url)
    # Requests run in other tasks than the lifespan: use the global context.
    await Tortoise.init(config=config, _enable_global_fallback=True)
    if settings.is_sqlite:
        conn = connections.get("default")
        await conn.execute_script("PRAGMA journal_mode=WAL; PRAGMA busy_timeout=10000; PRAGMA foreign_keys=ON;")


async def run_migrations(database_url: str) -> None:
    config = tortoise_config(database_url)
    await migrate_api(config=config)
    await Tortoise.close_connections()


async def close_db() -> None:
    await Tortoise.close_connections()


def conn():
    return connections.get("default")


def is_postgres() -> bool:
    return conn().capabilities.dialect == "postgres"


_QMARK = re.compile(r"\?")


def sql(query: str) -> str:
    """Write raw SQL with `?` placeholders; converted to `$n` for PostgreSQL."""
    if not is_postgres():
        return query
    counter = iter(range(1, 10_000))
    return _QMARK.sub(lambda _m: f"${next(counter)}", query)


async def fetch(query: str, params: list | tuple = ()) -> list[dict]:
    return await conn().execute_query_dict(sql(query), list(params))


async def lock_rows(table: str, ids) -> None:
    """`SELECT … FOR UPDATE` in id order (PostgreSQL; SQLite serializes writers anyway).

    Tortoise drops FOR UPDATE from `.select_for_update().values_list()`, so row
    locks are taken here, explicitly."""
    ids = sorted(set(ids))
    if not ids or not is_postgres():
        return
    await conn().execute_query(
        f"SELECT id FROM {table} WHERE id IN ({','.join(f'${i}' for i in range(1, len(ids) + 1))}) ORDER BY id FOR UPDATE",
        ids)


def in_list(column: str, values) -> tuple[str, list]:
    """`column IN (…)` for raw SQL: `column = ANY(?)` with one array parameter on PostgreSQL
    (one statement text, so one cached plan, whatever the number of values), `?` per value on SQLite."""
    values = list(values)
    if is_postgres():
        return f"{column} = ANY(?)", [values]
    return f"{column} IN ({','.join('?' for _ in values)})", values


def _returning(returning: str | None) -> str:
    return f" RETURNING {returning}" if returning else ""


async def insert_rows(table: str, columns: dict[str, str], rows: list, returning: str | None = None) -> list[dict]:
    """Insert many rows in one statement, in the given order (ids are assigned in that order).

    `columns` maps each column to its PostgreSQL type; values are plain Python values (enum
    members as their `.value`). PostgreSQL: `INSERT … SELECT * FROM unnest($1::type[], …)`, one
    statement and one round trip whatever the number of rows. SQLite: multi-row `VALUES` in
    chunks under its parameter limit. With `returning`, the rows of `RETURNING <returning>`
    (match them by a unique key, not by position)."""
    if not rows:
        return []
    names = ", ".join(columns)
    if is_postgres():
        arrays = [list(col) for col in zip(*rows)]
        arrays += [[] for _ in range(len(columns) - len(arrays))]
        marks = ", ".join(f"${i}::{t}[]" for i, t in enumerate(columns.values(), start=1))
        query = f"INSERT INTO {table} ({names}) SELECT * FROM unnest({marks}){_returning(returning)}"
        if returning:
            return await conn().execute_query_dict(query, arrays)
        await conn().execute_query(query, arrays)
        return []
    row_marks = "(" + ", ".join("?" for _ in columns) + ")"
    per = max(1, 30_000 // len(columns))
    out: list[dict] = []
    for start in range(0, len(rows), per):
        chunk = rows[start:start + per]
        query = f"INSERT INTO {table} ({names}) VALUES {', '.join(row_marks for _ in chunk)}{_returning(returning)}"
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


def is_retryable(exc: BaseException) -> bool:
    """Deadlocks, serialization failures and unique races: retry the whole transaction."""
    import asyncpg
    from tortoise.exceptions import IntegrityError, OperationalError, TransactionManagementError

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
