"""Issue 12 item 10 (per-channel conversion trend) on the paths that move figures after the fact:
a later read changes which channel's send a goal is attributed through, and a delivery reported after
an open moves the day the recipient was first reached on that channel. Live figures equal rebuilt ones."""

from __future__ import annotations

import base64
from datetime import datetime, time, timedelta, timezone

from tests.analytics.test_attribution_and_lift import GOALS, goal, iso
from tests.helpers import create_campaign, ingest, make_leads, mutate

Q = """query($id:ID!){ campaign(id:$id){ stats{ daily{ day goals }
  byChannel{ channel daily{ day exposures reached conversions } } } } }"""


def pk(gid: str) -> int:
    return int(base64.b64decode(gid).decode().split(":")[1])


def ev(key, ext, channel, type_, at, campaign=None, lead=None):
    e = {"idempotencyKey": key, "externalId": ext, "channel": channel, "type": type_, "occurredAt": iso(at)}
    if campaign:
        e.update(campaignId=campaign["id"], leadId=lead["id"])
    return e


def points(stats: dict, channel: str) -> dict:
    series = next(c for c in stats["byChannel"] if c["channel"] == channel)["daily"]
    return {p["day"]: (p["exposures"], p["reached"], p["conversions"]) for p in series
            if p["exposures"] or p["conversions"]}


async def test_last_touch_and_late_delivery_move_the_channel_figures(tenant):
    from app.analytics.service import rebuild

    gql = tenant.gql
    (lead,) = await make_leads(gql, 1)
    c = await create_campaign(gql, goal={"type": "SALE"}, channels=[
        {"channel": "EMAIL", "unitCost": "0", "provider": "integrator"},
        {"channel": "SMS", "unitCost": "0", "provider": "integrator"}])
    await gql("mutation($c:ID!,$i:AudienceInput!){ audienceSet(campaignId:$c, input:$i){ userErrors{ code } } }",
              {"c": c["id"], "i": {"leadIds": [lead["id"]]}})
    assert not (await mutate(gql, "campaignLaunch", c["id"]))["userErrors"]
    # organization in UTC; day 1 and day 2 after today, at noon
    day1 = datetime.combine(datetime.now(timezone.utc).date() + timedelta(days=1), time(12), timezone.utc)
    day2 = day1 + timedelta(days=1)
    h = timedelta(hours=1)
    r = await ingest(gql, [
        ev("e1", "m-e", "EMAIL", "SENT", day1, c, lead),
        ev("e2", "m-e", "EMAIL", "OPENED", day2),           # no delivery reported yet: delivered (implied) on day 2
        ev("s1", "m-s", "SMS", "SENT", day1, c, lead), ev("s2", "m-s", "SMS", "DELIVERED", day1 + h),
        ev("s3", "m-s", "SMS", "OPENED", day1 + 2 * h),
    ])
    assert r["accepted"] == 5, r
    # the goal, one hour after the EMAIL read (day 2) and a day after the SMS read: the last read is EMAIL's
    g = await gql(GOALS, {"e": [goal("g", lead, day2 + h, "10")]})
    assert g["goalEventsIngest"]["accepted"] == 1, g
    s = (await gql(Q, {"id": c["id"]}))["campaign"]["stats"]
    d1, d2 = str(day1.date()), str(day2.date())
    assert points(s, "EMAIL") == {d2: (1, 1, 1)}         # reached on day 2 (implied delivery), the goal through it
    assert points(s, "SMS") == {d1: (1, 1, 0)}
    # the provider reports the EMAIL delivery late, with its own (earlier) time: reached on day 1
    assert (await ingest(gql, [ev("e3", "m-e", "EMAIL", "DELIVERED", day1 + h)]))["accepted"] == 1
    s = (await gql(Q, {"id": c["id"]}))["campaign"]["stats"]
    assert points(s, "EMAIL") == {d1: (1, 1, 0), d2: (0, 1, 1)}
    # a second goal, an hour before the EMAIL read: the only read before it is the SMS one (day 1)
    g = await gql(GOALS, {"e": [goal("g2", lead, day2 - h, "5")]})
    assert g["goalEventsIngest"]["accepted"] == 1, g
    s = (await gql(Q, {"id": c["id"]}))["campaign"]["stats"]
    assert points(s, "EMAIL") == {d1: (1, 1, 0), d2: (0, 1, 1)}
    assert points(s, "SMS") == {d1: (1, 1, 0), d2: (0, 1, 1)}
    assert {x["day"]: x["goals"] for x in s["daily"] if x["goals"]} == {d2: 2}   # Σ over channels
    await rebuild([pk(c["id"])])
    assert (await gql(Q, {"id": c["id"]}))["campaign"]["stats"] == s


async def test_a_later_read_moves_the_goal_to_that_channel(tenant):
    from app.analytics.service import rebuild

    gql = tenant.gql
    (lead,) = await make_leads(gql, 1)
    c = await create_campaign(gql, goal={"type": "SALE"}, channels=[
        {"channel": "EMAIL", "unitCost": "0", "provider": "integrator"},
        {"channel": "SMS", "unitCost": "0", "provider": "integrator"}])
    await gql("mutation($c:ID!,$i:AudienceInput!){ audienceSet(campaignId:$c, input:$i){ userErrors{ code } } }",
              {"c": c["id"], "i": {"leadIds": [lead["id"]]}})
    assert not (await mutate(gql, "campaignLaunch", c["id"]))["userErrors"]
    day1 = datetime.combine(datetime.now(timezone.utc).date() + timedelta(days=1), time(12), timezone.utc)
    h = timedelta(hours=1)
    r = await ingest(gql, [
        ev("e1", "m-e", "EMAIL", "DELIVERED", day1, c, lead),
        ev("s1", "m-s", "SMS", "DELIVERED", day1, c, lead), ev("s2", "m-s", "SMS", "OPENED", day1 + h),
    ])
    assert r["accepted"] == 3, r
    assert (await gql(GOALS, {"e": [goal("g", lead, day1 + 3 * h, "10")]}))["goalEventsIngest"]["accepted"] == 1
    d1 = str(day1.date())
    s = (await gql(Q, {"id": c["id"]}))["campaign"]["stats"]
    assert points(s, "SMS") == {d1: (1, 1, 1)} and points(s, "EMAIL") == {d1: (1, 1, 0)}
    # the EMAIL open (after the SMS read, before the goal) arrives later: the last touch is now EMAIL
    assert (await ingest(gql, [ev("e2", "m-e", "EMAIL", "OPENED", day1 + 2 * h)]))["accepted"] == 1
    s = (await gql(Q, {"id": c["id"]}))["campaign"]["stats"]
    assert points(s, "SMS") == {d1: (1, 1, 0)} and points(s, "EMAIL") == {d1: (1, 1, 1)}
    await rebuild([pk(c["id"])])
    assert (await gql(Q, {"id": c["id"]}))["campaign"]["stats"] == s
