"""Database lifecycle: Tortoise config, init/close, migrations, raw SQL helper."""

from __future__ import annotations

import re
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
    from app.settings import get_settings

    return tortoise_config(get_settings().database_url)


# For the `tortoise` CLI (makemigrations): `[tool.tortoise] tortoise_orm` in pyproject.
TORTOISE_ORM = _default_config()
