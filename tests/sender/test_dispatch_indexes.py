"""Issue 15 item 4: migration 0013 creates the sender's partial indexes on both backends, and on
PostgreSQL the claim and receipt-expiry statements — as the sender issues them — can use them
even as the generic plan of a prepared statement (asyncpg keeps statements prepared; after five
executions PostgreSQL may switch to the generic plan, which cannot use a partial index whose
predicate the statement only names through a parameter)."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest

INDEXES = {"send_dispatch_due", "send_system_pending"}


async def test_migration_creates_the_sender_indexes(app):
    from app.db import fetch, is_postgres

    if is_postgres():
        rows = await fetch("SELECT indexname AS name, indexdef AS sql FROM pg_indexes WHERE tablename = 'send'")
    else:
        rows = await fetch("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'send'")
    found = {r["name"]: r["sql"] for r in rows}
    assert INDEXES <= set(found), sorted(found)
    assert "PENDING" in found["send_dispatch_due"] and "WHERE" in found["send_system_pending"]


def _literal(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, datetime):
        return f"'{v.isoformat()}'::timestamptz"
    return "'" + str(v).replace("'", "''") + "'"


async def _generic_plan(query: str, params: list) -> str:
    """EXPLAIN of the statement's generic plan, sequential scans priced out (so any usable index
    shows; a statement that cannot use the partial index falls back to another plan)."""
    from tortoise.transactions import in_transaction

    from app.db import sql

    name = f"pulse_t_{uuid.uuid4().hex[:8]}"
    async with in_transaction() as conn:
        await conn.execute_script("SET LOCAL enable_seqscan = off; SET LOCAL plan_cache_mode = force_generic_plan")
        await conn.execute_script(f"PREPARE {name} AS {sql(query)}")
        try:
            rows = await conn.execute_query_dict(
                f"EXPLAIN EXECUTE {name}({', '.join(_literal(p) for p in params)})")
        finally:
            await conn.execute_script(f"DEALLOCATE {name}")
    return "\n".join(r["QUERY PLAN"] for r in rows)


async def test_claim_and_expiry_use_the_partial_indexes_as_generic_plans(app, monkeypatch):
    from app.db import is_postgres
    from app.sender import service

    if not is_postgres():
        pytest.skip("plans are PostgreSQL's (SQLite runs the same statements: every other sender test)")
    seen: list[tuple[str, list]] = []

    async def spy(query, params=()):
        seen.append((query, list(params)))
        return []  # nothing claimed, nothing stale: the statements only

    monkeypatch.setattr(service, "fetch", spy)
    now = datetime.now(timezone.utc)
    await service.dispatch_batch({}, 100, now=now)  # the worker's claim: every campaign
    await service.dispatch_batch({}, 100, now=now, campaign_ids=[1, 2])  # a sharded claim
    await service.expire_receipts(600, now=now)
    claims = [s for s in seen if "dispatch_after <=" in s[0]]
    expiry = [s for s in seen if "dispatch_after IS NULL" in s[0]]
    assert len(claims) == 2 and len(expiry) == 1, seen
    for query, params in claims:
        plan = await _generic_plan(query, params)
        assert "send_dispatch_due" in plan, plan
    # Both partial indexes hold only PENDING sends; the planner may take either for the expiry
    # (`send_dispatch_due` with `dispatch_after IS NULL` as its index condition).
    plan = await _generic_plan(*expiry[0])
    assert "send_system_pending" in plan or "send_dispatch_due" in plan, plan
