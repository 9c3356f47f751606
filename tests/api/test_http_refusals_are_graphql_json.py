"""GraphQL-over-HTTP conventions: a mutation over GET is 405, refusals are GraphQL JSON with a code
(never text/plain), a subscription over HTTP points to the websocket, request errors carry a code."""

import pytest

MUTATION = 'mutation { tokenRevoke(id: "VG9rZW46MQ==") { userErrors { code } } }'


def _refusal(response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0] in ("application/json", "application/graphql-response+json")
    errors = response.json()["errors"]
    assert errors[0]["extensions"]["code"] == code, errors
    return errors[0]["message"]


async def test_mutation_over_get_is_405(http):
    response = await http.get("/graphql", params={"query": MUTATION}, headers={"accept": "application/json"})
    _refusal(response, 405, "METHOD_NOT_ALLOWED")
    assert "POST" in response.headers["allow"]


async def test_batching_and_unsupported_content_type_are_json(http):
    _refusal(await http.post("/graphql", json=[{"query": "{ __typename }"}]), 400, "BATCHING_NOT_SUPPORTED")
    _refusal(await http.post("/graphql", content=b"{ __typename }", headers={"content-type": "text/plain"}),
             415, "UNSUPPORTED_MEDIA_TYPE")
    _refusal(await http.post("/graphql", content=b"{not json", headers={"content-type": "application/json"}),
             400, "INVALID_JSON")
    _refusal(await http.post("/graphql", json={"variables": {}}), 400, "QUERY_MISSING")
    _refusal(await http.put("/graphql", json={"query": "{ __typename }"}), 405, "METHOD_NOT_ALLOWED")


@pytest.mark.parametrize("accept", ["application/json", "application/graphql-response+json"])
async def test_subscription_over_http_says_to_use_the_websocket(http, accept):
    response = await http.post("/graphql", json={"query": "subscription { dashboardKpis { activeCampaigns } }"},
                               headers={"accept": accept})
    message = _refusal(response, 400, "SUBSCRIPTION_OVER_HTTP")
    assert "websocket" in message and "graphql-transport-ws" in message


async def test_request_errors_carry_a_code(anon):
    cases = {"{ nope }": "GRAPHQL_VALIDATION_FAILED", "{ nope ": "GRAPHQL_PARSE_FAILED",
             "query($n: Int!) { campaigns(first: $n) { totalCount } }": "BAD_USER_INPUT"}
    for query, code in cases.items():
        response = await anon.raw(query, {"n": "x"})
        body = response.json()
        assert [e["extensions"]["code"] for e in body["errors"]] == [code], (query, body)
