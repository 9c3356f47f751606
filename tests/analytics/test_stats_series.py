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
