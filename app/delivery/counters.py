"""Send counters per campaign × channel × center × day.

A send contributes one row of numbers to one counter key. Every change to a
send applies (new contribution − old contribution) in the same transaction.
`rebuild` recomputes every counter and campaign spend from the sends.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Iterable

from tortoise.transactions import in_transaction

from app.db import Rows, conn, execute, fetch, insert_together, param_date, sql
from models.enums import SendStatus
from models.stats import COUNTER_FIELDS

CounterKey = tuple[int, int, str, int, date]  # org, campaign, channel, center_key, day
SENT_LIKE = {SendStatus.SENT, SendStatus.DELIVERED, SendStatus.BOUNCED}


def contribution(state: dict) -> dict[str, int]:
    status = SendStatus(state["status"])
    if status == SendStatus.SKIPPED:  # never queued: counted apart, not in `generated` (issue 12 item 8)
        return {"skipped": 1}
    sent = state["was_sent"]
    return {
        "generated": 1,
        "pending": int(status == SendStatus.PENDING),
        "sent": int(status in SENT_LIKE),
        "delivered": int(status == SendStatus.DELIVERED),
        "failed": int(status == SendStatus.FAILED),
        "bounced": int(status == SendStatus.BOUNCED),
        "read": int(state["read_at"] is not None),
        "clicked": int(state["clicked_at"] is not None),
        "replied": int(state["replied_at"] is not None),
        "unsubscribed": int(state["unsubscribed_at"] is not None),
        "cost_micros": int(state["cost_micros"]) if sent else 0,
        "credits": int(state["credits"]) if sent else 0,
        "skipped": 0,
    }


def key_of(state: dict) -> CounterKey:
    return (state["organization_id"], state["campaign_id"], str(state["channel"].value if hasattr(state["channel"], "value") else state["channel"]),
            state["center_key"], state["day"])


class CounterDelta:
    """Accumulates counter changes of one transaction."""

    def __init__(self) -> None:
        self.rows: dict[CounterKey, dict[str, int]] = defaultdict(lambda: dict.fromkeys(COUNTER_FIELDS, 0))

    def add(self, key: CounterKey, values: dict[str, int], sign: int = 1) -> None:
        row = self.rows[key]
        for f, v in values.items():
            row[f] += sign * v

    def change(self, old: dict | None, new: dict) -> None:
        if old is not None:
            self.add(key_of(old), contribution(old), -1)
        self.add(key_of(new), contribution(new), +1)

    def spend_by_campaign(self) -> dict[int, int]:
        out: dict[int, int] = defaultdict(int)
        for key, row in self.rows.items():
            out[key[1]] += row["cost_micros"]
        return out

    def write(self) -> Rows:
        """The counter upserts as rows for `insert_together` (`INSERT … ON CONFLICT (campaign, channel,
        center_key, day) DO UPDATE SET x = x + excluded.x`), **in sorted key order** (one lock order
        for every transaction), rows of zeros left out."""
        rows = []
        for key in sorted(self.rows):
            row = self.rows[key]
            if not any(row.values()):
                continue
            org, campaign, channel, center_key, day = key
            rows.append((org, campaign, channel, center_key, param_date(day), *(row[f] for f in COUNTER_FIELDS)))
        return Rows("send_counter", _COUNTER_COLUMNS, rows, _COUNTER_UPSERT)

    async def apply(self) -> None:
        await insert_together(self.write())


_COUNTER_COLUMNS = {"organization_id": "int8", "campaign_id": "int8", "channel": "text", "center_key": "int8",
                    "day": "date", **{f: "int8" for f in COUNTER_FIELDS}}
_COUNTER_UPSERT = ("ON CONFLICT (campaign_id, channel, center_key, day) DO UPDATE SET "
                   + ", ".join(f"{f} = send_counter.{f} + excluded.{f}" for f in COUNTER_FIELDS))


async def add_skips(skips: dict[tuple[int, int, str, str, date], int]) -> None:
    """Skipped sends per (org, campaign, channel, reason, day), in the sender's transaction."""
    if not skips:
        return
    query = sql("INSERT INTO skip_counter (organization_id, campaign_id, channel, reason, day, skipped) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (campaign_id, channel, reason, day) "
                "DO UPDATE SET skipped = skip_counter.skipped + excluded.skipped")
    await conn().execute_many(query, [[*key[:4], param_date(key[4]), n] for key, n in sorted(skips.items())])


async def rebuild(campaign_ids: Iterable[int] | None = None) -> int:
    """Recompute counters (send and skip counters) and campaign spend from sends and spend entries."""
    where, params = "", []
    ids = list(campaign_ids) if campaign_ids is not None else None
    if ids is not None:
        if not ids:
            return 0
        where = f" WHERE campaign_id IN ({','.join('?' for _ in ids)})"
        params = ids
    cols = ", ".join(COUNTER_FIELDS)
    sent_like = "'SENT','DELIVERED','BOUNCED'"
    select = (
        "SELECT organization_id, campaign_id, channel, center_key, day, "
        "SUM(CASE WHEN status<>'SKIPPED' THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN status='PENDING' THEN 1 ELSE 0 END), "
        f"SUM(CASE WHEN status IN ({sent_like}) THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN status='DELIVERED' THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN status='FAILED' THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN status='BOUNCED' THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN read_at IS NOT NULL THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN clicked_at IS NOT NULL THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN replied_at IS NOT NULL THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN unsubscribed_at IS NOT NULL THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN was_sent THEN cost_micros ELSE 0 END), "
        "SUM(CASE WHEN was_sent THEN credits ELSE 0 END), "
        "SUM(CASE WHEN status='SKIPPED' THEN 1 ELSE 0 END) "
        f"FROM send{where} GROUP BY organization_id, campaign_id, channel, center_key, day"
    )
    async with in_transaction():
        await execute(f"DELETE FROM send_counter{where}", params)
        await execute(
            f"INSERT INTO send_counter (organization_id, campaign_id, channel, center_key, day, {cols}) {select}", params)
        await execute(f"DELETE FROM skip_counter{where}", params)
        skip_where = f"{where} AND status = 'SKIPPED'" if where else " WHERE status = 'SKIPPED'"
        await execute(
            "INSERT INTO skip_counter (organization_id, campaign_id, channel, reason, day, skipped) "
            f"SELECT organization_id, campaign_id, channel, skip_reason, day, COUNT(*) FROM send{skip_where} "
            "GROUP BY organization_id, campaign_id, channel, skip_reason, day", params)
        campaign_where = where.replace("campaign_id", "id")
        await execute(
            "UPDATE campaign SET spent_micros = "
            "COALESCE((SELECT SUM(cost_micros) FROM send_counter c WHERE c.campaign_id = campaign.id), 0) + "
            "COALESCE((SELECT SUM(amount_micros) FROM spend_entry s WHERE s.campaign_id = campaign.id), 0)"
            + campaign_where, params)
        rows = await fetch(f"SELECT COUNT(*) AS n FROM send_counter{where}", params)
    return int(rows[0]["n"])
