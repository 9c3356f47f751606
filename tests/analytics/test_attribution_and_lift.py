"""Analytics, goals, attribution and lift on hand-computed scenarios (SPEC §9)."""

from datetime import datetime, timedelta, timezone

import pytest

from tests.helpers import create_campaign, ingest, make_leads, mutate

STATS = """query($id:ID!, $period: StatsPeriod, $from: Date, $to: Date){ campaign(id:$id){
  stats(period:$period, from:$from, to:$to){ dateFrom dateTo totals{ sent viewed clicked goals revenue{ amount } }
    daily{ day sent viewed clicked goals revenue{ amount } }
    recipients(first: 100){ edges{ node{ group lead{ id externalId } sentAt viewedAt clickedAt goalAt } } } }
  funnel{ prospects exposures engagements conversions goalKind exposureRate engagementRate conversionRate }
  lift{ available unavailableReason tooSmall treatmentSize controlSize treatmentConversions controlConversions
        treatmentConversionRate controlConversionRate treatmentAov{ amount } controlAov{ amount }
        baselineRevenue{ amount } actualRevenue{ amount } incrementalRevenue{ amount } incrementalConversions
        rateDifference rateDifferenceCiLow rateDifferenceCiHigh }
  analytics{ otherGoals{ goalType count recipients value{ amount } } revenueOverTime{ day revenue{ amount } }
             conversionRateVsPeers{ day rate average } } } }"""

GOALS = """mutation($e:[GoalEventInput!]!){ goalEventsIngest(events:$e){ accepted duplicates
  rejected{ index code message } userErrors{ code } } }"""


def iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


async def setup(gql, n=4, control=50, **kw):
    leads = await make_leads(gql, n)
    c = await create_campaign(gql, controlGroupPercent=control, goal={"type": "SALE"},
                              channels=[{"channel": "EMAIL", "unitCost": "0"}], **kw)
    await gql("mutation($c:ID!,$i:AudienceInput!){ audienceSet(campaignId:$c, input:$i){ userErrors{ code } } }",
              {"c": c["id"], "i": {"leadIds": [lead["id"] for lead in leads]}})
    assert not (await mutate(gql, "campaignLaunch", c["id"]))["userErrors"]
    d = await gql(STATS, {"id": c["id"]})
    groups = {e["node"]["lead"]["id"]: e["node"]["group"] for e in d["campaign"]["stats"]["recipients"]["edges"]}
    treatment = [lead for lead in leads if groups[lead["id"]] == "TREATMENT"]
    control_leads = [lead for lead in leads if groups[lead["id"]] == "CONTROL"]
    # sends and goals happen after the recipients joined (a control recipient's window starts then)
    base = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(minutes=1)
    return c, treatment, control_leads, base


def ev(key, ext, type_, at, campaign=None, lead=None, **kw):
    e = {"idempotencyKey": key, "externalId": ext, "channel": "EMAIL", "type": type_, "occurredAt": iso(at)}
    if campaign:
        e.update(campaignId=campaign["id"], leadId=lead["id"])
    e.update(kw)
    return e


def goal(key, lead, at, value=None, goal_type="SALE", **kw):
    g = {"idempotencyKey": key, "leadId": lead["id"], "goalType": goal_type, "occurredAt": iso(at)}
    if value is not None:
        g["value"] = value
    g.update(kw)
    return g


async def test_windows_lift_funnel_and_stats(tenant):
    gql = tenant.gql
    c, (t1, t2), (c1, c2), base = await setup(gql)
    h = timedelta(hours=1)
    d_ = timedelta(days=1)
    r = await ingest(gql, [
        ev("t1-sent", "m-t1", "SENT", base, c, t1),
        ev("t1-open", "m-t1", "OPENED", base + 6 * d_ + 23 * h),     # 6 d 23 h after the send: counts
        ev("t1-click", "m-t1", "CLICKED", base + 6 * d_ + 23 * h + 10 * timedelta(minutes=1)),
        ev("t2-sent", "m-t2", "SENT", base, c, t2),
        ev("t2-open", "m-t2", "OPENED", base + 7 * d_ + 1 * h),      # 7 d 1 h after the send: does not count
    ])
    assert r["accepted"] == 5, r
    g = await gql(GOALS, {"e": [
        goal("g-t1-early", t1, base + 1 * h, "999"),                  # before any view: not counted
        goal("g-t1", t1, base + 7 * d_, "100"),                       # 1 h after the read: a conversion
        goal("g-t1-late", t1, base + 6 * d_ + 23 * h + 8 * d_, "5"),  # 8 days after the view: not counted
        goal("g-t2", t2, base + 7 * d_ + 2 * h, "70"),                # its read does not count → not counted
        goal("g-c1", c1, base + 1 * d_, "60"),                        # control: within 30 days of joining
        goal("g-c1-page", c1, base + 2 * d_, goal_type="PAGE_VIEWS"), # another goal type: not a conversion
        goal("g-t1-page", t1, base + 7 * d_ + 1 * h, goal_type="PAGE_VIEWS"),  # treatment's other goal
    ]})
    assert g["goalEventsIngest"]["accepted"] == 7, g
    d = (await gql(STATS, {"id": c["id"]}))["campaign"]
    totals = d["stats"]["totals"]
    assert totals == {"sent": 2, "viewed": 1, "clicked": 1, "goals": 1, "revenue": {"amount": "100.00"}}
    assert d["funnel"] == {"prospects": 2, "exposures": 2, "engagements": 1, "conversions": 1, "goalKind": "CONVERSION",
                           "exposureRate": 1.0, "engagementRate": 0.5, "conversionRate": 1.0}
    lift = d["lift"]
    # treatment 1/2 converted, AOV 100; control 1/2 converted, AOV 60
    # baseline = (2 + 2) × 0.5 × 60 = 120; actual = 100 + 60 = 160; incremental = 40
    # incremental conversions = (1 + 1) − 4 × 0.5 = 0
    assert lift["available"] and lift["tooSmall"]
    assert (lift["treatmentSize"], lift["controlSize"]) == (2, 2)
    assert (lift["treatmentConversionRate"], lift["controlConversionRate"]) == (0.5, 0.5)
    assert lift["treatmentAov"]["amount"] == "100.00" and lift["controlAov"]["amount"] == "60.00"
    assert lift["baselineRevenue"]["amount"] == "120.00"
    assert lift["actualRevenue"]["amount"] == "160.00"
    assert lift["incrementalRevenue"]["amount"] == "40.00"
    assert lift["incrementalConversions"] == 0
    assert lift["rateDifference"] == 0 and lift["rateDifferenceCiLow"] < 0 < lift["rateDifferenceCiHigh"]
    assert d["analytics"]["otherGoals"] == [{"goalType": "PAGE_VIEWS", "count": 1, "recipients": 1,
                                             "value": {"amount": "0.00"}}]
    per = {e["node"]["lead"]["id"]: e["node"] for e in d["stats"]["recipients"]["edges"]}
    assert per[t1["id"]]["goalAt"] == iso(base + 7 * d_).replace("Z", "+00:00")
    assert per[t2["id"]]["viewedAt"] is None and per[t2["id"]]["goalAt"] is None
    # the daily series puts each figure on its own day
    by_day = {x["day"]: x for x in d["stats"]["daily"]}
    assert by_day[str(base.date())]["sent"] == 2
    assert by_day[str((base + 6 * d_ + 23 * h).date())]["viewed"] == 1
    assert by_day[str((base + 7 * d_).date())]["goals"] == 1

    # widen the view window to 200 h: T2's read (169 h) now counts, and so does its goal
    u = await gql("mutation($id:ID!){ campaignUpdate(id:$id, input:{attribution:{viewWindowHours:200}}){ userErrors{ code } } }",
                  {"id": c["id"]})
    assert not u["campaignUpdate"]["userErrors"]
    d = (await gql(STATS, {"id": c["id"]}))["campaign"]
    assert d["stats"]["totals"]["viewed"] == 2 and d["stats"]["totals"]["goals"] == 2
    assert d["lift"]["treatmentConversionRate"] == 1.0
    assert d["stats"]["totals"]["revenue"]["amount"] == "170.00"

    # periods: everything happens in the future here, so "today" sees only today's sends
    today = (await gql(STATS, {"id": c["id"], "period": "TODAY"}))["campaign"]["stats"]
    assert today["dateFrom"] == today["dateTo"]
    custom = (await gql(STATS, {"id": c["id"], "from": str((base + 7 * d_).date()), "to": str((base + 7 * d_).date())}))
    assert custom["campaign"]["stats"]["totals"]["goals"] == 1 + (1 if (base + 7 * d_ + 2 * h).date() == (base + 7 * d_).date() else 0)


async def test_out_of_order_and_duplicate_goal_events(tenant):
    gql = tenant.gql
    c, (t1, _t2), _control, base = await setup(gql)
    h = timedelta(hours=1)
    g = [goal("o-g", t1, base + 3 * h, "50")]
    # the goal arrives before the send's events
    assert (await gql(GOALS, {"e": g}))["goalEventsIngest"]["accepted"] == 1
    d = (await gql(STATS, {"id": c["id"]}))["campaign"]
    assert d["stats"]["totals"]["goals"] == 0
    await ingest(gql, [ev("o-open", "m-o", "OPENED", base + 2 * h), ev("o-sent", "m-o", "SENT", base, c, t1)][::-1])
    d = (await gql(STATS, {"id": c["id"]}))["campaign"]
    assert d["stats"]["totals"]["goals"] == 1 and d["stats"]["totals"]["revenue"]["amount"] == "50.00"
    again = await gql(GOALS, {"e": g + g})
    assert again["goalEventsIngest"]["duplicates"] == 2 and again["goalEventsIngest"]["accepted"] == 0
    conflict = await gql(GOALS, {"e": [goal("o-g", t1, base + 3 * h, "51")]})
    assert conflict["goalEventsIngest"]["rejected"][0]["code"] == "IDEMPOTENCY_CONFLICT"
    d2 = (await gql(STATS, {"id": c["id"]}))["campaign"]
    assert d2["stats"] == d["stats"] and d2["lift"] == d["lift"]


async def test_lift_unavailable_without_control_group(tenant):
    gql = tenant.gql
    c, treatment, control, _ = await setup(gql, n=3, control=0)
    assert len(treatment) == 3 and not control
    lift = (await gql(STATS, {"id": c["id"]}))["campaign"]["lift"]
    assert lift["available"] is False and "control group" in lift["unavailableReason"]


async def test_day_boundaries_follow_the_organization_time_zone(tenant_factory):
    paris = await tenant_factory(timezone="Europe/Paris")
    c, (t1, _), _, base = await setup(paris.gql)
    # 23:30 UTC is 00:30 the next day in Paris (UTC+1 in winter)
    late = (base + timedelta(days=2)).replace(hour=23, minute=30, second=0)
    await ingest(paris.gql, [ev("tz-sent", "m-tz", "SENT", late, c, t1)])
    daily = (await paris.gql(STATS, {"id": c["id"]}))["campaign"]["stats"]["daily"]
    # every day of the campaign's life is listed (issue 12 item 10); the send sits on the Paris day
    assert [(x["day"], x["sent"]) for x in daily if x["sent"]] == [(str((late + timedelta(days=1)).date()), 1)]


async def test_goal_events_need_a_visible_lead(tenant, tenant_factory):
    other = await tenant_factory()
    (foreign,) = await make_leads(other.gql, 1)
    r = await tenant.gql(GOALS, {"e": [
        {"idempotencyKey": "x1", "leadId": foreign["id"], "goalType": "SALE", "occurredAt": "2026-11-20T10:00:00Z"},
        {"idempotencyKey": "x2", "goalType": "SALE", "occurredAt": "2026-11-20T10:00:00Z"},
        {"idempotencyKey": "x3", "leadId": "nope", "goalType": "SALE", "occurredAt": "2026-11-20T10:00:00Z"},
    ]})
    codes = [x["code"] for x in r["goalEventsIngest"]["rejected"]]
    assert codes == ["NOT_FOUND", "INVALID", "NOT_FOUND"] and r["goalEventsIngest"]["accepted"] == 0


@pytest.mark.parametrize("rebuild", [True])
async def test_rebuilt_analytics_equal_live(tenant, rebuild):
    from app.analytics.service import rebuild as rebuild_all
    from graph.core import from_global_id

    gql = tenant.gql
    c, (t1, t2), (c1, _c2), base = await setup(gql)
    h = timedelta(hours=1)
    await ingest(gql, [ev("rb1", "rb-1", "SENT", base, c, t1), ev("rb2", "rb-1", "CLICKED", base + h),
                       ev("rb3", "rb-2", "DELIVERED", base, c, t2)])
    await gql(GOALS, {"e": [goal("rbg1", t1, base + 2 * h, "10"), goal("rbg2", c1, base + 3 * h, "20"),
                             goal("rbg3", t2, base + 4 * h, "30", goal_type="LEAD")]})
    before = (await gql(STATS, {"id": c["id"]}))["campaign"]
    await rebuild_all([from_global_id(c["id"])[1]])
    after = (await gql(STATS, {"id": c["id"]}))["campaign"]
    assert after == before


async def test_campaign_kpis_show_views_clicks_and_conversions_live(tenant, live_server):
    from tests.wsclient import connect

    gql = tenant.gql
    c, (t1, _t2), _control, base = await setup(gql)
    ws = await connect(live_server, gql.token)
    try:
        await ws.subscribe("k", "subscription($id:ID!){ campaignKpis(campaignId:$id){ viewed clicked conversions "
                                "revenue{ amount } } }", {"id": c["id"]})
        first = (await ws.next("k"))["campaignKpis"]
        assert first == {"viewed": 0, "clicked": 0, "conversions": 0, "revenue": {"amount": "0.00"}}
        h = timedelta(hours=1)
        await ingest(gql, [ev("lk-sent", "m-lk", "SENT", base, c, t1), ev("lk-click", "m-lk", "CLICKED", base + h)])
        await ws.until("k", lambda d: d["campaignKpis"]["clicked"] == 1 and d["campaignKpis"]["viewed"] == 1)
        await gql(GOALS, {"e": [goal("lk-g", t1, base + 2 * h, "42.5")]})
        data = await ws.until("k", lambda d: d["campaignKpis"]["conversions"] == 1)
        assert data["campaignKpis"]["revenue"]["amount"] == "42.50"
    finally:
        await ws.close()
