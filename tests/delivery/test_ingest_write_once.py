"""A send created by a batch is written once, in its replayed state; a send that
already exists is read, replayed and updated. Both must give the same result.

Two organizations (same time zone, centers, leads, campaign settings) receive
the same send histories through the public API: the first in one batch (every
send new: the write-once path, history replayed in memory), the second one
event per batch in a shuffled order (the first event creates the send, every
later one goes through the load → replay → update path, with SQLite reading
its timestamps back from text). Everything ingestion maintains must be equal:
the sends' states and counter keys, the counters (and a rebuild of them), the
campaign's spend, the recipients' funnel flags and outcome rollups, the day
stats, the last status of each send in the change log and the leads'
unsubscribe lists.
"""

from __future__ import annotations

import random

from app.db import fetch
from app.delivery import counters
from graph.core import from_global_id
from models.stats import COUNTER_FIELDS
from tests.helpers import at, create_campaign, ingest, mutate, upsert_leads
from tests.delivery.test_rebuild_counters import SCENARIOS

STATE = ("status", "was_sent", "cost_micros", "credits", "queued_at", "sent_at", "delivered_at", "failed_at",
         "failure_reason", "bounced_at", "bounce_type", "read_at", "clicked_at", "replied_at", "unsubscribed_at",
         "day", "reserved_micros")


# A QUEUED event reported after the send's first event, the next day: the send's queue
# time (its counter day) is the QUEUED event's, not its earliest event's.
LATE_QUEUED = [("SENT", 0, {}), ("QUEUED", 1500, {}), ("DELIVERED", 2, {})]


async def _setup(tenant):
    zone = await tenant.zone()
    centers = [await tenant.center(zone), await tenant.center(zone)]
    center_index = {from_global_id(c)[1]: i + 1 for i, c in enumerate(centers)}
    leads = await upsert_leads(tenant.gql, [
        {"externalId": f"wo-{i}", "name": f"Lead {i}", "email": f"wo-{i}@example.test", "phone": f"+3361000{i:04d}",
         **({"centerId": centers[i % 3]} if i % 3 < 2 else {})} for i in range(12)])
    campaign = await create_campaign(
        tenant.gql, budget="3", goal={"type": "SALE"},
        attribution={"viewWindowHours": 6, "goalWindowHours": 240, "goalAfterViewWindowHours": 24},
        channels=[{"channel": "EMAIL", "unitCost": "0.01", "creditsPerMessage": 1},
                  {"channel": "SMS", "unitCost": "0.05", "creditsPerMessage": 2}])
    d = await tenant.gql("mutation($c:ID!,$i:AudienceInput!){ audienceSet(campaignId:$c, input:$i){ userErrors{ code } } }",
                         {"c": campaign["id"], "i": {"leadIds": [lead["id"] for lead in leads]}})
    assert not d["audienceSet"]["userErrors"], d
    assert not (await mutate(tenant.gql, "campaignLaunch", campaign["id"]))["userErrors"]
    return from_global_id(campaign["id"])[1], campaign["id"], leads, center_index


def _histories(leads, campaign_gid: str) -> list[dict]:
    rng = random.Random(11)
    events = []
    for s in range(40):
        lead = leads[s % len(leads)]
        channel = "EMAIL" if s % 2 == 0 else "SMS"
        minute = rng.uniform(0, 2 * 1440)  # over midnights in the organization's time zone
        for n, (type_, gap, extra) in enumerate(LATE_QUEUED if s % 7 == 3 else rng.choice(SCENARIOS)):
            minute += gap
            events.append({"idempotencyKey": f"wo-{s}-{n}", "externalId": f"wo-{s}", "channel": channel,
                           "type": type_, "occurredAt": at(round(minute, 3)), "campaignId": campaign_gid,
                           "leadExternalId": lead["externalId"], **extra})
    return events


async def _state(campaign_id: int, center_index: dict) -> dict:
    sends = await fetch(f"SELECT external_id, channel, center_key, {', '.join(STATE)} FROM send WHERE campaign_id = ?",
                        [campaign_id])
    by_ext = {r["external_id"]: {k: str(v) for k, v in r.items()} | {"center": center_index.get(r["center_key"], 0)}
              for r in sends}
    for row in by_ext.values():
        del row["center_key"]
    cols = ", ".join(COUNTER_FIELDS)
    counter_rows = sorted(
        (r["channel"], center_index.get(r["center_key"], 0), str(r["day"])[:10], *(int(r[f]) for f in COUNTER_FIELDS))
        for r in await fetch(f"SELECT channel, center_key, day, {cols} FROM send_counter WHERE campaign_id = ?",
                             [campaign_id]))
    counter_rows = [r for r in counter_rows if any(r[3:])]
    spent = (await fetch("SELECT spent_micros, reserved_micros FROM campaign WHERE id = ?", [campaign_id]))[0]
    flags = sorted((r["external_id"], str(r["exposed_at"]), str(r["engaged_at"])) for r in await fetch(
        "SELECT l.external_id, r.exposed_at, r.engaged_at FROM recipient r JOIN lead l ON l.id = r.lead_id "
        "WHERE r.campaign_id = ?", [campaign_id]))
    outcomes = sorted(tuple(str(v) for v in r.values()) for r in await fetch(
        'SELECT "group", exposed, engaged, converters, conversions, revenue_micros FROM campaign_outcome '
        "WHERE campaign_id = ?", [campaign_id]))
    days = sorted((str(r["day"])[:10], r["sent"], r["viewed"], r["clicked"]) for r in await fetch(
        "SELECT day, sent, viewed, clicked FROM campaign_day_stat WHERE campaign_id = ?", [campaign_id])
        if r["sent"] or r["viewed"] or r["clicked"])
    last_change = {}
    for r in await fetch("SELECT s.external_id, c.status FROM send_change c JOIN send s ON s.id = c.send_id "
                         "WHERE c.campaign_id = ? ORDER BY c.id", [campaign_id]):
        last_change[r["external_id"]] = r["status"]
    unsubscribed = sorted((r["external_id"], str(r["unsubscribed"])) for r in await fetch(
        "SELECT l.external_id, l.unsubscribed FROM lead l JOIN recipient r ON r.lead_id = l.id WHERE r.campaign_id = ? "
        "AND l.unsubscribed IS NOT NULL", [campaign_id]) if r["unsubscribed"] not in ("[]", []))
    return {"sends": by_ext, "counters": counter_rows, "spent": int(spent["spent_micros"]),
            "reserved": int(spent["reserved_micros"]), "flags": flags, "outcomes": outcomes, "days": days,
            "last_change": last_change, "unsubscribed": unsubscribed}


async def test_sends_created_in_one_batch_equal_sends_built_event_by_event(tenant_factory):
    one = await tenant_factory(timezone="America/Los_Angeles")
    many = await tenant_factory(timezone="America/Los_Angeles")
    cid_one, gid_one, leads_one, centers_one = await _setup(one)
    cid_many, gid_many, leads_many, centers_many = await _setup(many)

    events_one = _histories(leads_one, gid_one)
    r = await ingest(one.gql, events_one)
    assert r["accepted"] == len(events_one) and not r["rejected"], r

    events_many = _histories(leads_many, gid_many)
    random.Random(5).shuffle(events_many)
    for event in events_many:
        r = await ingest(many.gql, [event])
        assert r["accepted"] == 1 and not r["rejected"], r

    state_one = await _state(cid_one, centers_one)
    state_many = await _state(cid_many, centers_many)
    assert len(state_one["sends"]) == 40
    assert state_one["spent"] > 0 and state_one["flags"] and state_one["days"] and state_one["unsubscribed"]
    # Every changed send is in the change log, with its final status last.
    assert state_one["last_change"] == {ext: s["status"] for ext, s in state_one["sends"].items()
                                        if ext in state_one["last_change"]}
    assert len(state_one["last_change"]) >= 35
    assert state_one == state_many

    # And the live counters equal a rebuild from the sends.
    await counters.rebuild([cid_one, cid_many])
    assert (await _state(cid_one, centers_one)) == state_one
    assert (await _state(cid_many, centers_many)) == state_many


def test_payload_hash_is_stable():
    """Stored payload hashes decide duplicate vs conflict: the hash of an event must never change
    between versions (this value was computed by the first implementation)."""
    from datetime import datetime, timezone

    from app.delivery.ingest import SendEventData, _payload_hash
    from models.enums import BounceType, Channel, SendEventType

    d = SendEventData(idempotency_key="k", external_id="m-1", channel=Channel.EMAIL, type=SendEventType.BOUNCED,
                      occurred_at=datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc), campaign_id=7,
                      lead_id=9, reason="mailbox full", bounce_type=BounceType.SOFT)
    assert _payload_hash(d, 12_500) == "a208af4ce78cd5a85fe29695920b1c68aae3ed604fd8d5f09b5b7852d0dbc84d"
