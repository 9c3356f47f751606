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
