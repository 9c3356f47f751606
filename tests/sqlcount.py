"""Count the SQL statements a request issues (SQLite and PostgreSQL clients of Tortoise).

Recording is per asyncio context (a ContextVar set around the request; DataLoader batches run in
tasks that copy it), so background work of the app is never counted."""

from __future__ import annotations

import contextlib
import contextvars
import functools

_sink: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("pulse_test_sql", default=None)
_METHODS = ("execute_query", "execute_query_dict", "execute_many", "execute_insert", "execute_script")
_installed = False


def _install() -> None:
    global _installed
    if _installed:
        return
    from tortoise.backends.asyncpg import client as pgc
    from tortoise.backends.base_postgres import client as basepg
    from tortoise.backends.sqlite import client as sqlite

    for cls in (basepg.BasePostgresClient, pgc.AsyncpgDBClient, pgc.TransactionWrapper, sqlite.SqliteClient,
                sqlite.SqliteTransactionWrapper):
        for name in _METHODS:
            original = cls.__dict__.get(name)
            if original is None:
                continue

            def make(original):
                @functools.wraps(original)
                async def wrapped(self, query, *args, **kwargs):
                    sink = _sink.get()
                    if sink is not None:
                        sink.append(query)
                        _sink.set(None)  # a wrapper calling another counts once
                        try:
                            return await original(self, query, *args, **kwargs)
                        finally:
                            _sink.set(sink)
                    return await original(self, query, *args, **kwargs)
                return wrapped

            setattr(cls, name, make(original))
    _installed = True


@contextlib.contextmanager
def statements():
    """with statements() as sql: … → the list of statements issued inside."""
    _install()
    sink: list[str] = []
    token = _sink.set(sink)
    try:
        yield sink
    finally:
        _sink.reset(token)
