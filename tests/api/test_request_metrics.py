"""/metrics: GraphQL and HTTP request counts and latency by operation and outcome, errors by code,
websocket closes by every code, sender queue depth and age, ingested events by outcome."""

import asyncio

from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import at, ingest
from tests.wsclient import WsClient


async def scrape(http) -> dict:
    response = await http.get("/metrics")
    assert response.status_code == 200
    values = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_graphql_requests_errors_and_ingest_are_counted(tenant, http):
    before = await scrape(http)
    await tenant.gql("query MetricsViewer { viewer { id } }")
    await tenant.gql.raw("query MetricsBroken { nope }")
    await http.post("/graphql", json=[{"query": "{ __typename }"}])
    result = await ingest(tenant.gql, [
        {"idempotencyKey": "m-1", "externalId": "m-unknown", "channel": "EMAIL", "type": "SENT", "occurredAt": at(1)},
    ])
    assert result["rejected"][0]["code"] == "MISSING_SEND_CONTEXT"
    after = await scrape(http)
    assert value(after, "pulse_graphql_requests_total", operation="MetricsViewer", outcome="ok") == \
        value(before, "pulse_graphql_requests_total", operation="MetricsViewer", outcome="ok") + 1
    assert value(after, "pulse_graphql_request_duration_seconds_count", operation="MetricsViewer", outcome="ok") >= 1
    assert value(after, "pulse_graphql_requests_total", operation="MetricsBroken", outcome="error") >= 1
    for code in ("GRAPHQL_VALIDATION_FAILED", "BATCHING_NOT_SUPPORTED"):
        assert value(after, "pulse_graphql_errors_total", code=code) == value(before, "pulse_graphql_errors_total", code=code) + 1
    assert value(after, "pulse_http_requests_total", route="/graphql", method="POST", status="4xx") > \
        value(before, "pulse_http_requests_total", route="/graphql", method="POST", status="4xx")
    assert value(after, "pulse_http_request_duration_seconds_count", route="/graphql", method="POST") > \
        value(before, "pulse_http_request_duration_seconds_count", route="/graphql", method="POST")
    assert value(after, "pulse_ingest_events_total", outcome="rejected") == value(before, "pulse_ingest_events_total", outcome="rejected") + 1
    assert ("pulse_sender_queue_depth", ()) in after and ("pulse_sender_queue_oldest_age_seconds", ()) in after


async def test_websocket_closes_are_counted_by_every_code(tenant, http, live_server):
    before = await scrape(http)
    refused = await WsClient(live_server).connect()
    await refused.init("not-a-token", expect_ack=False)
    assert (await refused.wait_closed())[0] == 4403
    twice = await WsClient(live_server).connect()
    await twice.init(tenant.gql.token)
    await twice.send({"type": "connection_init", "payload": {}})
    assert (await twice.wait_closed())[0] == 4429
    polite = await WsClient(live_server).connect()
    await polite.init(tenant.gql.token)
    await polite.close()
    await asyncio.sleep(0.3)
    after = await scrape(http)
    for code in ("4403", "4429"):
        assert value(after, "pulse_ws_closed_total", code=code) == value(before, "pulse_ws_closed_total", code=code) + 1
    assert value(after, "pulse_ws_client_closed_total", code="1000") == value(before, "pulse_ws_client_closed_total", code="1000") + 1
