"""Derived state writes: recipient steps, per-lead figures and the leads-KPI counters.

Every cause (a send event, a mark-done, an undo, an outreach event, a campaign status change,
the midnight tick) calls `recompute` for the (campaign, lead) pairs it touched, inside its own
transaction: the pairs are re-derived from the facts (rules.derive) and the differences move
the per-lead figures and the counters. Lock order: recipient steps → lead_outreach rows (lead id
order) → counters (key order)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

from app.db import Added, db_date, db_datetime, execute, fetch, for_update, in_list
from app.outreach.rules import (EmailFacts, OutreachEventType, Step, StepAction, StepCondition, StepKind,
                                derive, email_due)
from models.outreach import KPI_COLUMNS

LEAD_COLUMNS = ("zone_id", "center_id", "verified", "social_only", "live", "touches", "steps", "overdue", "actions")


def contribution(row: dict) -> dict[str, int]:
    return {"total": 1, "active": int(row["live"] > 0), "verified": int(bool(row["verified"])),
            "social_only": int(bool(row["social_only"])), "engaged": int(row["touches"] > 0),
            "in_sequence": int(row["steps"] > 0), "off_track": int(row["overdue"] > 0),
            "action_required": int(row["actions"] > 0)}


async def org_today(org_id: int, now: datetime | None = None) -> date:
    """The organization's current day as the scheduler last moved it (local midnight), or the
    local date now if the scheduler never ran for it."""
    rows = await fetch("SELECT day FROM outreach_clock WHERE organization_id = ?", [org_id])
    if rows:
        return db_date(rows[0]["day"])
    tz = ZoneInfo((await fetch("SELECT timezone FROM organization WHERE id = ?", [org_id]))[0]["timezone"])
    return (now or datetime.now(timezone.utc)).astimezone(tz).date()


async def add_counters(org_id: int, deltas: dict[tuple[int, int], dict[str, int]]) -> None:
    cols = ", ".join(KPI_COLUMNS)
    marks = ", ".join("?" for _ in KPI_COLUMNS)
    sets = ", ".join(f"{c} = lead_kpi_counter.{c} + excluded.{c}" for c in KPI_COLUMNS)
    for (zone_id, center_id) in sorted(deltas):
        d = deltas[(zone_id, center_id)]
        if not any(d.values()):
            continue
        await execute(
            f"INSERT INTO lead_kpi_counter (organization_id, zone_id, center_id, {cols}) VALUES (?, ?, ?, {marks}) "
            f"ON CONFLICT (organization_id, zone_id, center_id) DO UPDATE SET {sets}",
            [org_id, zone_id, center_id, *(d.get(c, 0) for c in KPI_COLUMNS)])


async def ensure_leads(org_id: int, lead_ids) -> None:
    """lead_outreach rows for these leads (new rows count in `total`, `verified`, `socialOnly`)."""
    lead_ids = sorted(set(lead_ids))
    if not lead_ids:
        return
    for start in range(0, len(lead_ids), 1000):
        chunk = lead_ids[start:start + 1000]
        lid_in, params = in_list("l.id", chunk)
        rows = await fetch(
            "INSERT INTO lead_outreach (lead_id, organization_id, zone_id, center_id, verified, social_only, live, "
            "touches, steps, overdue, actions) "
            "SELECT l.id, l.organization_id, COALESCE(l.zone_id, 0), COALESCE(l.center_id, 0), "
            "(l.email_verified AND l.email IS NOT NULL), "
            "(l.email IS NULL AND (l.linkedin_url IS NOT NULL OR l.twitter_url IS NOT NULL)), 0, 0, 0, 0, 0 "
            f"FROM lead l WHERE l.organization_id = ? AND {lid_in} AND NOT EXISTS "
            "(SELECT 1 FROM lead_outreach lo WHERE lo.lead_id = l.id) "
            "ON CONFLICT (lead_id) DO NOTHING RETURNING lead_id, zone_id, center_id, verified, social_only, live, "
            "touches, steps, overdue, actions", [org_id, *params])
        deltas: dict = defaultdict(lambda: defaultdict(int))
        for r in rows:
            for k, v in contribution(r).items():
                deltas[(r["zone_id"], r["center_id"])][k] += v
        await add_counters(org_id, deltas)


async def _lock_leads(ids: list[int], steps_of=None) -> list[dict]:
    """The lead rows, locked in lead id order. `steps_of` (campaign ids): the same statement also
    returns which of them have outreach steps, as rows whose `step_campaign` is set (a `UNION ALL`
    after the locking `WITH` query; the lock itself is the same `SELECT … ORDER BY … FOR NO KEY UPDATE`)."""
    lid_in, params = in_list("lead_id", ids)
    cols = ", ".join(LEAD_COLUMNS)
    locked = f"SELECT lead_id, {cols} FROM lead_outreach WHERE {lid_in} ORDER BY lead_id" + for_update()
    if steps_of is None:
        return await fetch(locked, params)
    cin, cparams = in_list("campaign_id", sorted(set(steps_of)))
    nulls = ", ".join("NULL" for _ in LEAD_COLUMNS)
    return await fetch(f"WITH lo AS ({locked}) SELECT lead_id, {cols}, NULL AS step_campaign FROM lo UNION ALL "
                       f"SELECT NULL, {nulls}, x.campaign_id FROM (SELECT DISTINCT campaign_id FROM outreach_step WHERE {cin}) x",
                       [*params, *cparams])


async def change_leads(org_id: int, changes: dict[int, dict], writes: list | None = None,
                       steps_of=None) -> set[int] | None:
    """Apply per-lead changes: {lead_id: {column: ("+", n) | ("=", value)}}; moves the counters.

    `writes` (ingestion's deferred writes, `SendsChanged.writes`): when every change adds to the same
    columns, the rows' `UPDATE … SET c = c + n` goes there (one `db.Added`, written before the commit
    while these rows stay locked) instead of one statement per lead. `steps_of` (campaign ids): returns
    those that have outreach steps, read by the statement that locks the rows when it can (else None:
    the caller reads them)."""
    changes = {k: v for k, v in changes.items() if v}
    if not changes:
        return None
    with_steps = None
    deferred: list | None = None
    columns = {tuple(sorted(ch)) for ch in changes.values()}
    if writes is not None and len(columns) == 1 and all(op == "+" for ch in changes.values() for op, _v in ch.values()) \
            and not any(getattr(w, "table", None) == "lead_outreach" for w in writes):
        deferred = []
    ids = sorted(changes)
    locked = None
    if len(ids) <= 1000:
        # Usually every lead has its row already: lock them first, and create (then lock) rows only
        # when some are missing — one statement instead of two (a small ingest moves one lead).
        locked = await _lock_leads(ids, steps_of)
        if steps_of is not None:
            with_steps = {r["step_campaign"] for r in locked if r["step_campaign"] is not None}
            locked = [{k: v for k, v in r.items() if k != "step_campaign"} for r in locked
                      if r["step_campaign"] is None]
        if len(locked) < len(ids):
            await ensure_leads(org_id, set(ids) - {r["lead_id"] for r in locked})
            locked = None
    else:
        await ensure_leads(org_id, changes)
    deltas: dict = defaultdict(lambda: defaultdict(int))
    for start in range(0, len(ids), 1000):
        chunk = ids[start:start + 1000]
        rows = locked if locked is not None else await _lock_leads(chunk)
        for row in rows:
            before = contribution(row)
            new = dict(row)
            for col, (op, value) in changes[row["lead_id"]].items():
                new[col] = new[col] + value if op == "+" else value
            after = contribution(new)
            if new == row:
                continue
            old_key, new_key = (row["zone_id"], row["center_id"]), (new["zone_id"], new["center_id"])
            for k in KPI_COLUMNS:
                deltas[old_key][k] -= before[k]
                deltas[new_key][k] += after[k]
            if deferred is not None:
                ch = changes[row["lead_id"]]
                deferred.append((row["lead_id"], *(ch[c][1] for c in sorted(ch))))
                continue
            cols = [c for c in LEAD_COLUMNS if new[c] != row[c]]
            await execute(f"UPDATE lead_outreach SET {', '.join(c + ' = ?' for c in cols)} WHERE lead_id = ?",
                          [*(new[c] for c in cols), row["lead_id"]])
    if deferred:
        writes.append(Added("lead_outreach", ("lead_id", "int8"), {c: "int8" for c in next(iter(columns))}, deferred))
    await add_counters(org_id, deltas)
    return with_steps


async def load_steps(campaign_ids) -> dict[int, list[Step]]:
    out: dict[int, list[Step]] = defaultdict(list)
    if not campaign_ids:
        return out
    cin, params = in_list("campaign_id", sorted(set(campaign_ids)))
    for r in await fetch(f"SELECT id, campaign_id, position, kind, day_offset, condition, applies_from "
                         f"FROM outreach_step WHERE {cin} ORDER BY position", params):
        out[r["campaign_id"]].append(Step(r["id"], r["position"], StepKind(r["kind"]), r["day_offset"],
                                          StepCondition(r["condition"]), db_date(r["applies_from"])))
    return out


async def recompute(org_id: int, pairs, *, today: date | None = None, hidden_steps: set[int] = frozenset()) -> set[int]:
    """Re-derive these (campaign, lead) pairs and write the differences. Returns the campaigns
    whose outreach figures moved."""
    pairs = set(pairs)
    if not pairs:
        return set()
    today = today or await org_today(org_id)
    campaign_ids = sorted({c for c, _ in pairs})
    steps = await load_steps(campaign_ids)
    if hidden_steps:
        steps = {c: [s for s in ss if s.id not in hidden_steps] for c, ss in steps.items()}
    cin, cparams = in_list("id", campaign_ids)
    live = {r["id"]: r["status"] == "LIVE" for r in await fetch(f"SELECT id, status FROM campaign WHERE {cin}", cparams)}
    lead_ids = sorted({lead for _, lead in pairs})
    moved: set[int] = set()
    lead_changes: dict[int, dict] = defaultdict(dict)

    def bump(lead_id: int, col: str, n: int) -> None:
        if n:
            op, cur = lead_changes[lead_id].get(col, ("+", 0))
            lead_changes[lead_id][col] = ("+", cur + n)

    for start in range(0, len(lead_ids), 500):
        chunk = lead_ids[start:start + 500]
        lin, lparams = in_list("lead_id", chunk)
        rcin, rcparams = in_list("campaign_id", campaign_ids)
        starts = {(r["campaign_id"], r["lead_id"]): db_date(r["start_day"]) for r in await fetch(
            f"SELECT campaign_id, lead_id, start_day FROM outreach_recipient WHERE {rcin} AND {lin}",
            [*rcparams, *lparams]) if (r["campaign_id"], r["lead_id"]) in pairs}
        existing: dict[tuple, dict[int, dict]] = defaultdict(dict)
        for r in await fetch(
                "SELECT id, campaign_id, lead_id, step_id, due_day, state, action_required, overdue, touched "
                f"FROM outreach_recipient_step WHERE {rcin} AND {lin} ORDER BY id"
                + for_update(), [*rcparams, *lparams]):
            if (r["campaign_id"], r["lead_id"]) in pairs:
                existing[(r["campaign_id"], r["lead_id"])][r["step_id"]] = r
        emails = {}
        for r in await fetch(
                f"SELECT campaign_id, lead_id, was_sent, read_at, clicked_at, replied_at, unsubscribed_at FROM send "
                f"WHERE {rcin} AND {lin} AND channel = 'EMAIL' ORDER BY id", [*rcparams, *lparams]):
            emails[(r["campaign_id"], r["lead_id"])] = EmailFacts(
                bool(r["was_sent"]), db_datetime(r["read_at"]), db_datetime(r["clicked_at"]),
                db_datetime(r["replied_at"]), db_datetime(r["unsubscribed_at"]))
        actions: dict[tuple, dict[int, StepAction]] = defaultdict(dict)
        for r in await fetch(
                "SELECT rs.campaign_id, rs.lead_id, rs.step_id, a.action FROM outreach_action a JOIN "
                "outreach_recipient_step rs ON rs.id = a.recipient_step_id "
                f"WHERE a.undone_at IS NULL AND rs.{rcin} AND rs.{lin}", [*rcparams, *lparams]):
            actions[(r["campaign_id"], r["lead_id"])][r["step_id"]] = StepAction(r["action"])
        events: dict[tuple, set] = defaultdict(set)
        for r in await fetch(f"SELECT campaign_id, lead_id, type FROM outreach_event WHERE {rcin} AND {lin}",
                             [*rcparams, *lparams]):
            events[(r["campaign_id"], r["lead_id"])].add(OutreachEventType(r["type"]))
        idin, idparams = in_list("id", chunk)
        scope = {r["id"]: (r["zone_id"] or 0, r["center_id"] or 0) for r in await fetch(
            f"SELECT id, zone_id, center_id FROM lead WHERE {idin}", idparams)}
        jobs: list[tuple[int, int]] = []
        for pair in sorted(p for p in pairs if p[1] in set(chunk)):
            cid, lead_id = pair
            old = existing.get(pair, {})
            if pair not in starts:
                derived = []
            else:
                derived = derive(steps.get(cid, []), starts[pair], today, live.get(cid, False), emails.get(pair),
                                 actions.get(pair, {}), events.get(pair, set()))
                if email_due(steps.get(cid, []), derived, today, live.get(cid, False)):
                    jobs.append(pair)
            kinds = {s.id: s.kind for s in steps.get(cid, [])}
            new_ids = {d.step_id for d in derived}
            for step_id, row in old.items():
                if step_id not in new_ids:  # the step was removed
                    await execute("DELETE FROM outreach_recipient_step WHERE id = ?", [row["id"]])
                    bump(lead_id, "steps", -1)
                    bump(lead_id, "overdue", -int(bool(row["overdue"])))
                    bump(lead_id, "actions", -int(bool(row["action_required"])))
                    moved.add(cid)
            for d in derived:
                row = old.get(d.step_id)
                li_msg = kinds.get(d.step_id) == StepKind.LINKEDIN_MESSAGE
                if row is None:
                    zone_id, center_id = scope.get(lead_id, (0, 0))
                    await execute(
                        "INSERT INTO outreach_recipient_step (organization_id, campaign_id, lead_id, step_id, zone_id, "
                        "center_id, due_day, state, action_required, overdue, touched, updated_at) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [org_id, cid, lead_id, d.step_id, zone_id, center_id, d.due_day, d.state.value,
                         d.action_required, d.overdue, d.touched, datetime.now(timezone.utc)])
                    bump(lead_id, "steps", 1)
                    bump(lead_id, "overdue", int(d.overdue))
                    bump(lead_id, "actions", int(d.action_required))
                    bump(lead_id, "touches", int(li_msg and d.touched))
                    moved.add(cid)
                    continue
                same = (db_date(row["due_day"]) == d.due_day and row["state"] == d.state.value
                        and bool(row["action_required"]) == d.action_required and bool(row["overdue"]) == d.overdue
                        and bool(row["touched"]) == d.touched)
                if same:
                    continue
                await execute(
                    "UPDATE outreach_recipient_step SET due_day = ?, state = ?, action_required = ?, overdue = ?, "
                    "touched = ?, updated_at = ? WHERE id = ?",
                    [d.due_day, d.state.value, d.action_required, d.overdue, d.touched, datetime.now(timezone.utc),
                     row["id"]])
                bump(lead_id, "overdue", int(d.overdue) - int(bool(row["overdue"])))
                bump(lead_id, "actions", int(d.action_required) - int(bool(row["action_required"])))
                if li_msg:
                    bump(lead_id, "touches", int(d.touched) - int(bool(row["touched"])))
                moved.add(cid)
        if jobs:
            await release_emails(org_id, jobs)
    await change_leads(org_id, lead_changes)
    return moved


async def release_emails(org_id: int, pairs: list[tuple[int, int]]) -> None:
    """Hand due email steps to the built-in sender: one send job (idempotent per campaign, lead, channel)."""
    now = datetime.now(timezone.utc)
    cin, cparams = in_list("campaign_id", sorted({c for c, _ in pairs}))
    provider_ok = {r["campaign_id"] for r in await fetch(
        "SELECT campaign_id FROM campaign_channel WHERE channel = 'EMAIL' AND enabled = ? AND provider NOT IN "
        f"('external', 'integrator') AND {cin}", [True, *cparams])}
    rows = [(org_id, cid, lead_id, "EMAIL", "READY", now) for cid, lead_id in pairs if cid in provider_ok]
    for row in rows:
        await execute("INSERT INTO send_job (organization_id, campaign_id, lead_id, channel, state, created_at) "
                      "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (campaign_id, lead_id, channel) DO NOTHING", list(row))
