"""Issue 12 items 10–13 through the API, hand-computed: the per-recipient message state, period presets in the
organization's time zone, the daily series with every day (exposures, engagements, control beside treatment)
and goals/revenue after a click next to the after-read figures."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from tests.analytics.test_attribution_and_lift import GOALS, ev, goal, iso, setup
from tests.helpers import ingest

RECIPIENTS = """query($id:ID!){ campaign(id:$id){ stats{ recipients(first: 100){ edges{ node{
  group status lead{ id } } } } } } }"""


async def test_recipient_status_is_its_latest_send(tenant):
    gql = tenant.gql
    c, (t1, t2), (c1, _c2), base = await setup(gql)
    m = timedelta(minutes=1)
    r = await ingest(gql, [
        ev("s-t1-a", "m-t1-a", "SENT", base, c, t1), ev("s-t1-a-d", "m-t1-a", "DELIVERED", base + m),
        # t1's later message bounced: its state is the latest send's
        ev("s-t1-b", "m-t1-b", "SENT", base + 5 * m, c, t1), ev("s-t1-b-x", "m-t1-b", "BOUNCED", base + 6 * m),
        ev("s-t2", "m-t2", "FAILED", base, c, t2),
    ])
    assert r["accepted"] == 5, r
    d = await gql(RECIPIENTS, {"id": c["id"]})
    state = {e["node"]["lead"]["id"]: e["node"]["status"] for e in d["campaign"]["stats"]["recipients"]["edges"]}
    assert state[t1["id"]] == "BOUNCED"
    assert state[t2["id"]] == "FAILED"
    assert state[c1["id"]] is None  # control: never messaged


PERIOD_Q = """query($id:ID!, $p: StatsPeriod){ campaign(id:$id){ stats(period:$p){ dateFrom dateTo totals{ sent } } } }"""


async def test_calendar_presets_in_the_organization_time_zone(tenant_factory):
    from zoneinfo import ZoneInfo

    from tests.helpers import create_campaign, make_leads, mutate

    tz = ZoneInfo("Pacific/Kiritimati")  # UTC+14: its date is often not the UTC date
    t = await tenant_factory(timezone="Pacific/Kiritimati")
    gql = t.gql
    leads = await make_leads(gql, 2)
    c = await create_campaign(gql, channels=[{"channel": "EMAIL", "unitCost": "0"}])
    await gql("mutation($c:ID!,$i:AudienceInput!){ audienceSet(campaignId:$c, input:$i){ userErrors{ code } } }",
              {"c": c["id"], "i": {"leadIds": [x["id"] for x in leads]}})
    assert not (await mutate(gql, "campaignLaunch", c["id"]))["userErrors"]
    today = datetime.now(tz).date()
    y, mth = today.year, today.month
    iso_monday = datetime.fromisocalendar(*today.isocalendar()[:2], 1).date()
    quarter_first_month = {1: 1, 2: 1, 3: 1, 4: 4, 5: 4, 6: 4, 7: 7, 8: 7, 9: 7, 10: 10, 11: 10, 12: 10}[mth]
    last_month_first = datetime(y - 1, 12, 1).date() if mth == 1 else datetime(y, mth - 1, 1).date()
    this_q = datetime(y, quarter_first_month, 1).date()
    last_q = datetime(y - 1, 10, 1).date() if quarter_first_month == 1 else datetime(y, quarter_first_month - 3, 1).date()
    expected = {
        "TODAY": (today, today),
        "THIS_WEEK": (iso_monday, today),
        "LAST_WEEK": (iso_monday - timedelta(days=7), iso_monday - timedelta(days=1)),
        "THIS_MONTH": (today.replace(day=1), today),
        "LAST_MONTH": (last_month_first, today.replace(day=1) - timedelta(days=1)),
        "THIS_QUARTER": (this_q, today),
        "LAST_QUARTER": (last_q, this_q - timedelta(days=1)),
        "THIS_YEAR": (datetime(y, 1, 1).date(), today),
        "LAST_YEAR": (datetime(y - 1, 1, 1).date(), datetime(y - 1, 12, 31).date()),
    }
    # one send late on last week's Sunday (organization time), one early on this week's Monday
    sunday_late = datetime.combine(iso_monday - timedelta(days=1), datetime.min.time(), tz) + timedelta(hours=23, minutes=30)
    monday_early = datetime.combine(iso_monday, datetime.min.time(), tz) + timedelta(minutes=30)
    events = [ev("w-1", "w-1", "SENT", sunday_late, c, leads[0])]
    if monday_early <= datetime.now(timezone.utc):
        events.append(ev("w-2", "w-2", "SENT", monday_early, c, leads[1]))
    assert (await ingest(gql, events))["accepted"] == len(events)
    for preset, (start, end) in expected.items():
        s = (await gql(PERIOD_Q, {"id": c["id"], "p": preset}))["campaign"]["stats"]
        assert (s["dateFrom"], s["dateTo"]) == (str(start), str(end)), preset
    last_week = (await gql(PERIOD_Q, {"id": c["id"], "p": "LAST_WEEK"}))["campaign"]["stats"]["totals"]["sent"]
    this_week = (await gql(PERIOD_Q, {"id": c["id"], "p": "THIS_WEEK"}))["campaign"]["stats"]["totals"]["sent"]
    assert (last_week, this_week) == (1, len(events) - 1)


SERIES_Q = """query($id:ID!, $from: Date, $to: Date){ campaign(id:$id){
  funnel{ exposures engagements }
  stats(from:$from, to:$to){ dateFrom dateTo
    totals{ sent viewed clicked exposures engagements goals revenue{ amount } goalsAfterClick
            revenueAfterClick{ amount } controlGoals }
    daily{ day sent viewed clicked exposures engagements goals revenue{ amount } goalsAfterClick
           revenueAfterClick{ amount } controlGoals conversionRate controlConversionRate } } } }"""

ZERO_DAY = {"sent": 0, "viewed": 0, "clicked": 0, "exposures": 0, "engagements": 0, "goals": 0,
            "revenue": {"amount": "0.00"}, "goalsAfterClick": 0, "revenueAfterClick": {"amount": "0.00"},
            "controlGoals": 0, "conversionRate": 0.0, "controlConversionRate": 0.0}


async def test_daily_series_every_day_exposures_control_and_goals_after_click(tenant):
    from app.analytics.service import rebuild as rebuild_all
    from graph.core import from_global_id

    gql = tenant.gql
    c, (t1, t2), (c1, _c2), base = await setup(gql)  # 2 treatment, 2 control; organization in UTC
    launch_day = datetime.now(timezone.utc).date()
    noon = datetime.combine(base.date() + timedelta(days=1), datetime.min.time(), timezone.utc) + timedelta(hours=12)
    h, d = timedelta(hours=1), timedelta(days=1)
    d1, d2, d3 = noon.date(), (noon + d).date(), (noon + 2 * d).date()
    r = await ingest(gql, [
        ev("a1", "m-t1", "SENT", noon, c, t1), ev("a2", "m-t1", "DELIVERED", noon + h), ev("a3", "m-t1", "OPENED", noon + 2 * h),
        ev("b1", "m-t2", "SENT", noon, c, t2), ev("b2", "m-t2", "DELIVERED", noon + h),
        ev("b3", "m-t2", "OPENED", noon + 2 * d),
    ])
    assert r["accepted"] == 6, r
    g = await gql(GOALS, {"e": [
        goal("g1", t1, noon + 3 * h, "10"),       # D1, after t1's read, before its click: after a read only
        goal("g2", t1, noon + d + h, "40"),       # D2, one hour after t1's click (the click arrives later)
        goal("g3", t2, noon + 2 * d + h, "25"),   # D3, after t2's read; t2 never clicks
        goal("g4", c1, noon + h, "5"),            # D1, control
    ]})
    assert g["goalEventsIngest"]["accepted"] == 4, g
    # the click arrives after the goals: g2 becomes a goal after a click
    assert (await ingest(gql, [ev("a4", "m-t1", "CLICKED", noon + d)]))["accepted"] == 1
    s = (await gql(SERIES_Q, {"id": c["id"]}))["campaign"]
    days = s["stats"]["daily"]
    # every day from the launch day to the last day with figures, zeros included
    expected_days = [str(launch_day + timedelta(days=i)) for i in range((d3 - launch_day).days + 1)]
    assert [x["day"] for x in days] == expected_days
    by_day = {x["day"]: {k: v for k, v in x.items() if k != "day"} for x in days}
    assert by_day[str(d1)] == {**ZERO_DAY, "sent": 2, "viewed": 1, "exposures": 2, "goals": 1,
                               "revenue": {"amount": "10.00"}, "controlGoals": 1,
                               "conversionRate": 0.5, "controlConversionRate": 0.5}   # 1/2 treatment, 1/2 control
    assert by_day[str(d2)] == {**ZERO_DAY, "clicked": 1, "engagements": 1, "goals": 1, "revenue": {"amount": "40.00"},
                               "goalsAfterClick": 1, "revenueAfterClick": {"amount": "40.00"}, "conversionRate": 0.5}
    assert by_day[str(d3)] == {**ZERO_DAY, "viewed": 1, "goals": 1, "revenue": {"amount": "25.00"},
                               "conversionRate": 0.5}
    for day in set(expected_days) - {str(d1), str(d2), str(d3)}:
        assert by_day[day] == ZERO_DAY
    assert s["stats"]["totals"] == {"sent": 2, "viewed": 2, "clicked": 1, "exposures": 2, "engagements": 1, "goals": 3,
                                    "revenue": {"amount": "75.00"}, "goalsAfterClick": 1,
                                    "revenueAfterClick": {"amount": "40.00"}, "controlGoals": 1}
    assert s["funnel"] == {"exposures": 2, "engagements": 1}
    # a custom range lists each of its days, before the launch included
    early = (await gql(SERIES_Q, {"id": c["id"], "from": str(launch_day - 2 * d), "to": str(d1)}))["campaign"]["stats"]
    assert [x["day"] for x in early["daily"]] == [str(launch_day - 2 * d + i * d) for i in range((d1 - launch_day).days + 3)]
    assert early["totals"]["goalsAfterClick"] == 0 and early["totals"]["goals"] == 1
    # rebuilt from sends and goal events, every figure is the same
    await rebuild_all([from_global_id(c["id"])[1]])
    assert (await gql(SERIES_Q, {"id": c["id"]}))["campaign"] == s
    # a series longer than ten years is refused, not built
    r = (await gql.raw(SERIES_Q, {"id": c["id"], "from": "2000-01-01", "to": "2026-01-01"})).json()
    assert r["errors"][0]["extensions"]["reason"] == "INVALID_RANGE"
