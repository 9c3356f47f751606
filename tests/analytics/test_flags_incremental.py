"""Issue 15 item 4: ingestion moves a recipient's exposure/engagement from the stored time and the
batch's sends, and re-reads the recipient's other sends only when a send that held the earliest
time moves later. Through the API, compared with a rebuild from the sends."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from tests.analytics.test_attribution_and_lift import ev, setup
from tests.analytics.test_stats_series import SERIES_Q
from tests.helpers import ingest


def _by_day(series: dict, field: str) -> dict[str, int]:
    return {x["day"]: x[field] for x in series["stats"]["daily"] if x[field]}


async def test_earliest_send_moving_later_hands_exposure_to_another_send(tenant):
    from app.analytics.service import rebuild as rebuild_all
    from graph.core import from_global_id

    gql = tenant.gql
    c, (t1, _t2), _control, base = await setup(gql)
    noon = datetime.combine(base.date() + timedelta(days=1), datetime.min.time(), timezone.utc) + timedelta(hours=12)
    d = timedelta(days=1)
    # Send A: an open on D1 implies its delivery then; send B (same recipient) delivered on D3.
    r = await ingest(gql, [ev("a1", "m-a", "SENT", noon - timedelta(hours=1), c, t1), ev("a2", "m-a", "OPENED", noon),
                           ev("b1", "m-b", "SENT", noon + 2 * d - timedelta(hours=1), c, t1),
                           ev("b2", "m-b", "DELIVERED", noon + 2 * d)])
    assert r["accepted"] == 4, r
    s = (await gql(SERIES_Q, {"id": c["id"]}))["campaign"]
    assert _by_day(s, "exposures") == {str(noon.date()): 1}
    # A's own delivery event arrives, dated D5: A now counts as delivered on D5, so the recipient was
    # first exposed by B on D3 — a send this batch does not mention.
    assert (await ingest(gql, [ev("a3", "m-a", "DELIVERED", noon + 4 * d)]))["accepted"] == 1
    s = (await gql(SERIES_Q, {"id": c["id"]}))["campaign"]
    assert _by_day(s, "exposures") == {str((noon + 2 * d).date()): 1}
    assert s["funnel"]["exposures"] == 1
    # An earlier send of the same recipient only moves it earlier (no re-read needed): D2.
    r = await ingest(gql, [ev("c1", "m-c", "SENT", noon + d - timedelta(hours=1), c, t1),
                           ev("c2", "m-c", "DELIVERED", noon + d)])
    assert r["accepted"] == 2, r
    s = (await gql(SERIES_Q, {"id": c["id"]}))["campaign"]
    assert _by_day(s, "exposures") == {str((noon + d).date()): 1}
    # the same figures as a rebuild from the sends
    await rebuild_all([from_global_id(c["id"])[1]])
    assert (await gql(SERIES_Q, {"id": c["id"]}))["campaign"] == s
