"""Issue 11, item 3: the stock graphql-ws npm client (the documented recipe of docs/api.md,
tests/clients/node/recipe.mjs) keeps a sendStatusChanged stream through restarts of a real
`pulse serve` process (SIGTERM and SIGKILL, same port and database) while events are ingested
continuously: 0 events missed, 0 duplicated. Runs on SQLite, and on PostgreSQL + Redis when the
suite does."""

from __future__ import annotations

import asyncio
import json
import signal
import time

import pytest

from tests.clients.server import NODE_DIR, Api, PulseServer, drop_database, require_node, throwaway_database
from tests.helpers import at

SENDS = 90  # each send: a SENT then a DELIVERED event, one ingest request each


class NodeSubscriber:
    """tests/clients/node/resume-check.mjs: one JSON line per event or connection change."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[dict] = []
        self.reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, server: PulseServer, token: str, campaign_id: str) -> "NodeSubscriber":
        proc = await asyncio.create_subprocess_exec(
            "node", "resume-check.mjs", server.url.replace("http://", "ws://") + "/graphql", token, campaign_id,
            cwd=NODE_DIR, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        return cls(proc)

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for line in self.proc.stdout:
            self.lines.append(json.loads(line))

    def of(self, kind: str) -> list[dict]:
        return [line for line in self.lines if line["kind"] == kind]

    async def wait_for(self, predicate, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if self.proc.returncode is not None or time.monotonic() > deadline:
                raise AssertionError(f"node client: {what} not seen; last lines: {self.lines[-10:]}")
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        await asyncio.wait_for(self.proc.wait(), 20)
        await self.reader


def event(key: str, ext: str, type_: str, minute: float, campaign_id: str | None = None, lead_id: str | None = None):
    e = {"idempotencyKey": key, "externalId": ext, "channel": "EMAIL", "type": type_, "occurredAt": at(minute)}
    if campaign_id:
        e.update(campaignId=campaign_id, leadId=lead_id)
    return e


INGEST = ("mutation($e:[SendEventInput!]!){ sendEventsIngest(events:$e){ accepted duplicates "
          "rejected{ index code message } } }")


async def setup_campaign(api: Api, sends: int) -> tuple[str, list[str]]:
    d = await api("mutation($i:CampaignCreateInput!){ campaignCreate(input:$i){ campaign{ id } userErrors{ code } } }",
                  {"i": {"name": "Restart check", "channels": [{"channel": "EMAIL", "unitCost": "0.01"}]}})
    campaign_id = d["campaignCreate"]["campaign"]["id"]
    leads = [{"externalId": f"r-{i}", "name": f"Lead {i}", "email": f"r{i}@example.test"} for i in range(sends + 20)]
    lead_ids = [lead["id"] for lead in (await api(
        "mutation($l:[LeadInput!]!){ leadsUpsert(leads:$l){ leads{ id } userErrors{ code } } }",
        {"l": leads}))["leadsUpsert"]["leads"]]
    # Every lead is a recipient (a send's lead must be one); no sender runs here
    # (PULSE_WORKER_IN_PROCESS=false): every change of the stream comes from the events this test ingests.
    d = await api("mutation($c:ID!,$l:[ID!]){ audienceSet(campaignId:$c, input:{leadIds:$l}){ userErrors{ code } } }",
                  {"c": campaign_id, "l": lead_ids})
    assert not d["audienceSet"]["userErrors"], d
    d = await api("mutation($id:ID!){ campaignLaunch(id:$id){ campaign{ status } userErrors{ code message } } }",
                  {"id": campaign_id})
    assert not d["campaignLaunch"]["userErrors"], d
    return campaign_id, lead_ids


@pytest.fixture
async def server(tmp_path):
    require_node()
    url, name = await throwaway_database(tmp_path)
    srv = PulseServer(url, tmp_path)
    token = srv.cli("org", "create", "--name", "Restart Org", "--owner-email", "owner@restart.test")
    await srv.start()
    srv.token = token  # type: ignore[attr-defined]
    yield srv
    await srv.close()
    await drop_database(name)


async def test_stock_graphql_ws_client_resumes_through_restarts(server: PulseServer):
    api = Api(server.url, server.token)
    try:
        campaign_id, leads = await setup_campaign(api, SENDS)
        node = await NodeSubscriber.start(server, server.token, campaign_id)
        await node.wait_for(lambda: node.of("connected"), 30, "first connection")

        # The stream starts when the subscription is in place: ingest markers until one arrives.
        marker = 0
        while not node.of("event"):
            r = await api(INGEST, {"e": [event(f"m{marker}", f"marker-{marker}", "SENT", 0, campaign_id,
                                               leads[SENDS + marker])]})
            assert r["sendEventsIngest"]["accepted"] == 1, r
            marker += 1
            assert marker < 20, node.lines
            await asyncio.sleep(0.3)
        start = len(node.of("event"))
        await asyncio.sleep(0.5)  # any marker still in flight arrives before the checked part
        start = len(node.of("event"))

        expected: list[tuple[str, str]] = []

        async def ingest_continuously():
            for i in range(SENDS):
                for type_, status in (("SENT", "SENT"), ("DELIVERED", "DELIVERED")):
                    r = await api(INGEST, {"e": [event(f"{i}-{type_}", f"ext-{i}", type_, 1 + i, campaign_id, leads[i])]})
                    assert not r["sendEventsIngest"]["rejected"], r
                    if (f"ext-{i}", status) not in expected:
                        expected.append((f"ext-{i}", status))
                await asyncio.sleep(0.02)

        ingester = asyncio.create_task(ingest_continuously())
        # Mid-stream: a graceful restart (SIGTERM), then a crash (SIGKILL), same port and database.
        await node.wait_for(lambda: len(node.of("event")) >= start + SENDS * 2 // 3, 120, "a third of the stream")
        term = await server.restart(signal.SIGTERM)
        await node.wait_for(lambda: len(node.of("event")) >= start + SENDS * 4 // 3, 120, "two thirds of the stream")
        kill = await server.restart(signal.SIGKILL)
        await asyncio.wait_for(ingester, 180)
        await node.wait_for(lambda: len(node.of("event")) - start >= len(expected), 60, "the whole stream")
        await asyncio.sleep(1.0)  # a duplicate would arrive now
        await node.stop()
    finally:
        await api.close()

    events = node.of("event")[start:]
    cursors = [e["cursor"] for e in node.of("event")]
    assert len(cursors) == len(set(cursors)), "duplicated events"
    got = [(e["externalId"], e["status"]) for e in events]
    missed = [pair for pair in expected if pair not in got]
    assert not missed, f"missed {len(missed)} events: {missed[:10]}"
    assert len(got) == len(expected) == SENDS * 2, (len(got), len(expected))
    assert not node.of("error"), node.of("error")
    # Two restarts: the client reconnected twice; the SIGTERM one was announced with 1012.
    assert len(node.of("connected")) >= 3, node.lines
    closes = [line["code"] for line in node.of("closed")]
    assert 1012 in closes, closes
    assert term["stop_s"] < 5, term  # graceful shutdown is prompt with open websockets
    print(f"\nrestart timings: {server.timings}; close codes seen by the client: {closes}")
