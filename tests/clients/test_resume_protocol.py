"""The `resume` map of the connection_init payload (graph/core/resume.py), over the raw
graphql-transport-ws protocol: a resubscription with its original variables starts after the
cursor the payload names (or after `after`, whichever is later); bad entries are user errors."""

from __future__ import annotations

import asyncio
import json

from tests.clients.test_graphql_ws_resume import event
from tests.helpers import create_campaign, ingest, make_leads, mutate
from tests.wsclient import connect, WsClient

STREAM = ("subscription($c:ID!,$a:String,$k:String){ sendStatusChanged(campaignId:$c, after:$a, resumeKey:$k)"
          "{ cursor status send { externalId } } }")


async def _connect_with(live_server: str, payload: dict) -> WsClient:
    ws = WsClient(live_server)
    await ws.connect()
    await ws.send({"type": "connection_init", "payload": payload})
    assert json.loads(await asyncio.wait_for(ws.ws.recv(), 10))["type"] == "connection_ack"
    ws.reader = asyncio.create_task(ws._read())
    return ws


async def _drain(ws: WsClient, sid: str, quiet: float = 0.5) -> list[str]:
    got = []
    while True:
        try:
            data = await ws.next(sid, timeout=quiet)
        except asyncio.TimeoutError:
            return got
        got.append(data["sendStatusChanged"]["send"]["externalId"])


async def test_connection_init_resume_map(tenant, live_server):
    gql = tenant.gql
    leads = await make_leads(gql, 4)
    campaign = await create_campaign(gql, channels=[{"channel": "EMAIL"}])
    await gql("mutation($c:ID!,$l:[ID!]){ audienceSet(campaignId:$c, input:{leadIds:$l}){ userErrors{ code } } }",
              {"c": campaign["id"], "l": [lead["id"] for lead in leads]})
    await mutate(gql, "campaignLaunch", campaign["id"])
    cid = campaign["id"]

    first = await connect(live_server, gql.token)
    await first.subscribe("s", STREAM, {"c": cid})
    await asyncio.sleep(0.3)
    for i in range(3):
        r = await ingest(gql, [event(f"p{i}", f"p-{i}", "SENT", i, cid, leads[i]["id"])])
        assert r["accepted"] == 1, r
    cursors = [(await first.next("s"))["sendStatusChanged"]["cursor"] for _ in range(3)]
    await first.close()
    auth = f"Bearer {gql.token}"

    # Original variables (no `after`), resume cursor of the first event: the two others only.
    ws = await _connect_with(live_server, {"authorization": auth, "resume": {cid: cursors[0]}})
    await ws.subscribe("s", STREAM, {"c": cid})
    assert await _drain(ws, "s") == ["p-1", "p-2"]
    await ws.close()

    # A resume key of its own; the later of `after` and the resume cursor wins (both ways).
    ws = await _connect_with(live_server, {"authorization": auth, "resume": {"mine": cursors[1], cid: cursors[2]}})
    await ws.subscribe("a", STREAM, {"c": cid, "a": cursors[0], "k": "mine"})
    await ws.subscribe("b", STREAM, {"c": cid, "a": cursors[2], "k": "other"})
    assert await _drain(ws, "a") == ["p-2"]
    assert await _drain(ws, "b") == []
    await ws.close()

    # Bad entries are the client's mistake, with a code; the socket stays usable.
    ws = await _connect_with(live_server, {"authorization": auth, "resume": {cid: 42}})
    await ws.subscribe("s", STREAM, {"c": cid})
    message = await ws.message("s")
    assert message["payload"]["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", message
    await ws.close()
    ws = await _connect_with(live_server, {"authorization": auth, "resume": {cid: "not-a-cursor"}})
    await ws.subscribe("s", STREAM, {"c": cid})
    message = await ws.message("s")
    assert message["payload"]["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", message
    await ws.close()
