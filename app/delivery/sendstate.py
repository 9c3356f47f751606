"""The state of a send as a pure function of the set of its events (SPEC §4).

Events arrive at least once, duplicated and out of order. The send is the
result of replaying its distinct events in the order they *happened*
(occurredAt, then a fixed type rank, then idempotency key), through the status
machine. The same set of events therefore always gives the same send,
whatever the arrival order.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from models.enums import BounceType, SendEventType as E, SendStatus as St

TYPE_RANK = {E.QUEUED: 0, E.SENT: 1, E.DELIVERED: 2, E.OPENED: 3, E.CLICKED: 4, E.REPLIED: 5,
             E.UNSUBSCRIBED: 6, E.BOUNCED: 7, E.FAILED: 8}
FINAL = {St.FAILED, St.BOUNCED}
ENGAGEMENT = {E.OPENED, E.CLICKED, E.REPLIED, E.UNSUBSCRIBED}
STATE_FIELDS = ("status", "was_sent", "cost_micros", "credits", "queued_at", "sent_at", "delivered_at", "failed_at",
                "failure_reason", "bounced_at", "bounce_type", "read_at", "clicked_at", "replied_at", "unsubscribed_at")


class Ev(NamedTuple):
    """One event of a send's history (a NamedTuple: thousands are built per batch)."""

    type: E
    occurred_at: datetime
    key: str
    cost_micros: int | None = None
    credits: int | None = None
    reason: str | None = None
    bounce_type: BounceType | None = None
    machine: bool = False


def sort_key(ev: Ev):
    return (ev.occurred_at, TYPE_RANK[ev.type], ev.key)


def replay(events: list[Ev], *, unit_cost_micros: int, unit_credits: int, created_at: datetime) -> dict:
    s: dict = dict.fromkeys(STATE_FIELDS)
    s.update(status=St.PENDING, was_sent=False, cost_micros=unit_cost_micros, credits=unit_credits)
    delivered_by_event = False
    ordered = sorted(events, key=sort_key)
    queued = [e.occurred_at for e in ordered if e.type == E.QUEUED]
    s["queued_at"] = queued[0] if queued else (ordered[0].occurred_at if ordered else created_at)
    for ev in ordered:
        t, at, st = ev.type, ev.occurred_at, s["status"]
        if ev.cost_micros is not None:
            s["cost_micros"] = ev.cost_micros
        if ev.credits is not None:
            s["credits"] = ev.credits
        if t == E.QUEUED:
            continue
        if t == E.SENT:
            if st == St.FAILED and not s["was_sent"]:
                continue
            s["sent_at"] = s["sent_at"] or at
            s["was_sent"] = True
            if st == St.PENDING:
                s["status"] = St.SENT
        elif t == E.DELIVERED:
            if st in (St.PENDING, St.SENT):
                s.update(status=St.DELIVERED, was_sent=True, delivered_at=at)
                delivered_by_event = True
            elif st == St.DELIVERED and not delivered_by_event:
                s["delivered_at"] = at  # its own event's time beats an implied one
                delivered_by_event = True
        elif t == E.FAILED:
            if st in (St.PENDING, St.SENT):
                s.update(status=St.FAILED, failed_at=at, failure_reason=ev.reason)
        elif t == E.BOUNCED:
            if st in (St.PENDING, St.SENT, St.DELIVERED):
                s.update(status=St.BOUNCED, was_sent=True, bounced_at=at,
                         bounce_type=ev.bounce_type or BounceType.HARD)
        elif t in ENGAGEMENT:
            if st in FINAL or ev.machine:
                continue  # machine opens/clicks are kept in history only
            if st in (St.PENDING, St.SENT):
                s.update(status=St.DELIVERED, was_sent=True, delivered_at=at)
            if t == E.OPENED:
                s["read_at"] = s["read_at"] or at
            elif t == E.CLICKED:
                s["clicked_at"] = s["clicked_at"] or at
                s["read_at"] = s["read_at"] or at
            elif t == E.REPLIED:
                s["replied_at"] = s["replied_at"] or at
            elif t == E.UNSUBSCRIBED:
                s["unsubscribed_at"] = s["unsubscribed_at"] or at
    if not s["was_sent"]:
        s["cost_micros"], s["credits"] = 0, 0
    return s
