"""The scheduler's day boundaries: organization-local midnight across a DST change and in two
time zones, and weekly deltas from the daily snapshots across a week boundary (hand-computed)."""

from datetime import datetime, timezone

from tests.helpers import upsert_leads

KPIS = "{ leadsKpis { today all { value previousWeek changeWeek previousMonth } } }"


def utc(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=timezone.utc)


async def _day(gql) -> str:
    return (await gql(KPIS))["leadsKpis"]["today"]


async def test_local_midnight_across_dst_in_two_time_zones(tenant_factory):
    from app.outreach.service import tick

    paris = await tenant_factory(timezone="Europe/Paris")
    ny = await tenant_factory(timezone="America/New_York")
    # 2026-03-28 12:00Z: both on the 28th; the clock starts there.
    await tick(utc("2026-03-28T12:00:00"))
    assert (await _day(paris.gql), await _day(ny.gql)) == ("2026-03-28", "2026-03-28")
    # Paris changes to summer time (UTC+2) on 2026-03-29 at 01:00Z: local midnight of the 30th is 22:00Z.
    await tick(utc("2026-03-29T21:59:59"))
    assert await _day(paris.gql) == "2026-03-29"  # 23:59:59 CEST
    await tick(utc("2026-03-29T22:00:00"))
    assert await _day(paris.gql) == "2026-03-30"  # 00:00 CEST (under CET it would still be 23:00)
    assert await _day(ny.gql) == "2026-03-29"     # 18:00 EDT
    await tick(utc("2026-03-30T03:59:59"))
    assert await _day(ny.gql) == "2026-03-29"     # 23:59:59 EDT
    await tick(utc("2026-03-30T04:00:00"))
    assert await _day(ny.gql) == "2026-03-30"


async def test_weekly_delta_from_snapshots_across_a_week_boundary(tenant_factory):
    from app.outreach.service import tick

    t = await tenant_factory(timezone="Europe/Paris")
    gql = t.gql
    await tick(utc("2026-01-01T12:00:00"))          # Thursday 1 Jan: clock starts
    await upsert_leads(gql, [{"externalId": f"a{i}", "email": f"a{i}@x.test"} for i in range(2)])  # 2 leads on 1 Jan
    await tick(utc("2026-01-04T23:30:00"))          # Mon 5 Jan 00:30 local: snapshots 1..4 Jan = 2
    await upsert_leads(gql, [{"externalId": f"b{i}", "email": f"b{i}@x.test"} for i in range(3)])  # 5 on 5 Jan
    await tick(utc("2026-01-08T23:00:00"))          # Fri 9 Jan 00:00 local: snapshots 5..8 Jan = 5
    await upsert_leads(gql, [{"externalId": "c0", "email": "c0@x.test"}])                          # 6 on 9 Jan
    k = (await gql(KPIS))["leadsKpis"]
    # today 9 Jan; a week before = 2 Jan (snapshot: 2 leads)
    assert k["today"] == "2026-01-09"
    assert k["all"] == {"value": 6, "previousWeek": 2, "changeWeek": 4, "previousMonth": None}
    await tick(utc("2026-01-11T23:00:00"))          # Mon 12 Jan: a week before = 5 Jan (snapshot: 5)
    k = (await gql(KPIS))["leadsKpis"]
    assert k["today"] == "2026-01-12"
    assert k["all"] == {"value": 6, "previousWeek": 5, "changeWeek": 1, "previousMonth": None}
