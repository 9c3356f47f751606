"""Client mistakes are never masked (production), every error carries `extensions.code`, client
errors are logged as one info line (tracebacks only for server faults), and user-error field paths
are camelCase, all of them reported at once."""

import logging

import httpx
import pytest

from tests.helpers import launched_campaign

from app.main import create_app
from app.settings import Settings

CREATE = "mutation($i:CampaignCreateInput!){ campaignCreate(input:$i){ campaign{ id } userErrors{ field code message } } }"


@pytest.fixture
async def prod(settings):
    app = create_app(Settings(**{**settings.model_dump(), "env": "production"}))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://prod") as client:
        yield client


async def _post(client, token, query, variables=None):
    r = await client.post("/graphql", json={"query": query, "variables": variables or {}},
                          headers={"Authorization": f"Bearer {token}"})
    assert r.status_code < 500, r.text
    return r.json()


BAD_VARIABLES = [
    ("query($f:Int){ campaigns(first:$f){ totalCount } }", {"f": "abc"}),
    ("query($f:Int){ campaigns(first:$f){ totalCount } }", {"f": 1.5}),
    ("query($t:CampaignType){ campaigns(filter:{type:$t}){ totalCount } }", {"t": "NOPE"}),
    ("query($f:Int!){ campaigns(first:$f){ totalCount } }", {}),
    (CREATE, {"i": {"name": "x", "channels": [{"channel": "EMAIL"}], "budget": "abc"}}),
    (CREATE, {"i": {"name": "x", "channels": [{"channel": "EMAIL"}], "startAt": "0000-01-01T00:00:00Z"}}),
    (CREATE, {"i": {"name": "x", "channels": [{"channel": "EMAIL"}], "startAt": "2024-02-30T00:00:00Z"}}),
    ("query($d:Date){ campaigns{ edges{ node{ stats(from:$d){ __typename } } } } }", {"d": "2024-02-30"}),
    ("query($d:Date){ campaigns{ edges{ node{ stats(from:$d){ __typename } } } } }", {"d": "0000-01-01"}),
]


@pytest.mark.parametrize("query,variables", BAD_VARIABLES)
async def test_bad_variables_are_readable_in_production(tenant, prod, query, variables):
    body = await _post(prod, tenant.gql.token, query, variables)
    [error] = body["errors"]
    assert error["message"] != "Unexpected error."
    assert "$" in error["message"]  # names the variable
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


async def test_every_error_carries_a_code(tenant, prod):
    cases = {
        "{ nope }": "GRAPHQL_VALIDATION_FAILED",
        "{ campaigns(filter:{type:NOPE}){ totalCount } }": "GRAPHQL_VALIDATION_FAILED",
        "{ campaigns(": "GRAPHQL_PARSE_FAILED",
        "{ campaigns(first: -1){ totalCount } }": "BAD_USER_INPUT",
        '{ campaigns(after: "garbage"){ totalCount } }': "BAD_USER_INPUT",
    }
    for query, code in cases.items():
        body = await _post(prod, tenant.gql.token, query)
        assert body["errors"], query
        for error in body["errors"]:
            assert error["extensions"]["code"] == code, (query, error)
            assert error["message"] != "Unexpected error."


async def test_server_faults_are_masked_with_a_code():
    from graphql import GraphQLError

    from graph.core.errors import code_of, should_mask

    bug = GraphQLError("boom", path=["x"], original_error=ZeroDivisionError("secret"))
    assert should_mask(bug) and code_of(bug) == "INTERNAL_SERVER_ERROR"
    coercion = GraphQLError("Variable '$f' has invalid value", original_error=GraphQLError("Int cannot represent"))
    assert not should_mask(coercion) and code_of(coercion) == "BAD_USER_INPUT"


async def test_client_errors_are_one_info_line(tenant, prod, caplog):
    caplog.set_level(logging.DEBUG)
    await _post(prod, tenant.gql.token, "{ campaigns(first: -1){ totalCount } }")
    await _post(prod, tenant.gql.token, "query($f:Int){ campaigns(first:$f){ totalCount } }", {"f": "abc"})
    await _post(prod, tenant.gql.token, '{ campaigns(after: "garbage"){ totalCount } }')
    records = [r for r in caplog.records if r.name.startswith(("pulse", "strawberry"))]
    # one line per request: its access line (its JSON form carries the error code: test_json_logs); no traceback
    assert [r.name for r in records] == ["pulse.access"] * 3, [r.getMessage() for r in records]
    for record in records:
        assert record.levelno == logging.INFO
        assert record.exc_info is None and "\n" not in record.getMessage()


async def test_user_errors_are_camel_case_and_all_reported(tenant):
    d = await tenant.gql(CREATE, {"i": {"name": "", "channels": [{"channel": "EMAIL"}], "budget": "-1",
                                        "controlGroupPercent": 90}})
    errors = d["campaignCreate"]["userErrors"]
    assert {tuple(e["field"]) for e in errors} >= {("name",), ("budget",), ("controlGroupPercent",)}, errors
    campaign, _leads = await launched_campaign(tenant.gql)
    cid = campaign["id"]
    d = await tenant.gql("mutation($c:ID!,$i:CampaignUpdateInput!){ campaignUpdate(id:$c, input:$i){ userErrors{ field code } } }",
                         {"c": cid, "i": {"controlGroupPercent": 10, "type": "ALWAYS_ON"}})
    errors = d["campaignUpdate"]["userErrors"]
    assert errors and all(e["code"] == "CAMPAIGN_LOCKED" for e in errors)
    for e in errors:
        assert all("_" not in part for part in e["field"]), errors


async def test_masking_without_strawberrys_runner_answers_the_same(tenant, prod, monkeypatch):
    """Production queries and mutations run the masking's hook directly (graph/schema.py
    `_MaskOnlyRunner`): a server fault (masked, with its code), a database outage (503 code), client
    mistakes (parse, validation, variables, user input) and a clean answer are the same bytes as
    with Strawberry's own extension runner."""
    import strawberry

    from graph import schema as schema_module
    from graph.campaigns import queries

    campaign, _ = await launched_campaign(tenant.gql, n_leads=2)
    faults = {"bug": RuntimeError("a bug"), "down": ConnectionRefusedError("down")}

    async def failing(principal, campaign_id):
        raise faults[failing.kind]

    documents = [("{ campaigns(first: 2) { edges { node { id name } } } }", None, None),
                 ("query($id: ID!) { campaign(id: $id) { id name } }", {"id": campaign["id"]}, "bug"),
                 ("query($id: ID!) { campaign(id: $id) { id name } }", {"id": campaign["id"]}, "down"),
                 ("{ nope }", None, None), ("{ campaigns(", None, None),
                 ("query($f:Int){ campaigns(first:$f){ totalCount } }", {"f": "abc"}, None),
                 (CREATE, {"i": {"name": "", "channels": [{"channel": "EMAIL"}]}}, None)]

    async def answers():
        out = []
        for query, variables, fault in documents:
            failing.kind = fault
            with monkeypatch.context() as m:
                if fault:
                    m.setattr(queries, "visible_campaign", failing)
                r = await prod.post("/graphql", json={"query": query, "variables": variables or {}},
                                    headers={"Authorization": f"Bearer {tenant.gql.token}"})
            out.append((r.status_code, r.content))
        return out

    direct = await answers()
    monkeypatch.setattr(schema_module.PulseSchema, "create_extensions_runner", strawberry.Schema.create_extensions_runner)
    through_strawberry = await answers()
    assert direct == through_strawberry
    assert b"Unexpected error." in direct[1][1] and b"SERVICE_UNAVAILABLE" in direct[2][1]
