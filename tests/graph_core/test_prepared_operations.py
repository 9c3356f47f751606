"""Issue 15 item 2, fourth pass: the per-request execution shortcuts answer what the general path
answers, byte for byte — data, errors, status and headers.

* `graph/core/prepared.py`: the operation and fragments found once per document, the variables'
  short coercion, the cost formula (`limits.CostFormula`), used by `PulseExecutionContext.build`;
* `graph/schema.py`: Strawberry's execute path as one function (`_execute_directly`), the
  parse/validate/operation-type step without extension hooks (`_prepare_operation_async`), fields' arguments converted without Strawberry's per-call machinery
  (`converted_resolvers`), the masking's result test (`PulseMaskErrors._process_result`);
* `graph/core/limits.py` (`_set_headers`) and `graph/core/nul.py` (`has_nul`).

The end-to-end tests run the same requests through an app with every shortcut and through an app
built and run without them (graphql-core's `Executor.build`, Strawberry's argument conversion and
preparation step), in development and in production (masking)."""

from __future__ import annotations

import itertools
import re

import httpx
import pytest
from graphql import parse
from graphql.execution.values import get_variable_values

from app.main import create_app
from app.settings import Settings
from graph.core import limits, prepared as prepared_module
from tests.campaigns.test_fast_reads import CAMPAIGN, _busy_campaign

READ_A = "query($id:ID!){ campaign(id:$id){ id name status type reach audienceSize createdAt } }"
READ_B = ("query($id:ID!){ campaign(id:$id){ sends(first:50){ edges{ node{ id channel status externalId queuedAt "
          "sentAt } } } } }")
PAGE = "query($id:ID!, $n:Int){ campaign(id:$id){ sends(first:$n){ totalCount edges{ cursor node{ id status } } } } }"
FILTERED = ("query($id:ID!, $f:SendFilter){ campaign(id:$id){ sends(first:3, filter:$f){ totalCount "
            "edges{ node{ id status channel } } } } }")
STATS = "query($p:StatsPeriod, $d:Date){ campaigns(first:2){ edges{ node{ stats(period:$p, from:$d){ __typename } } } } }"
TWO = "query Q1 { viewer { organization { id } } } query Q2 { campaigns(first:1){ totalCount } }"
FRAGMENT = f"fragment F on Campaign {{ {CAMPAIGN} }} query($id:ID!){{ campaign(id:$id){{ ...F }} }}"
CREATE = "mutation($i:CampaignCreateInput!){ campaignCreate(input:$i){ campaign{ id } userErrors{ field code message } } }"


def _requests(campaign_id: str) -> list[tuple[str, dict]]:
    """(method, request) pairs: reads, every kind of request error, user errors, refusals."""
    post = [
        {"query": READ_A, "variables": {"id": campaign_id}},
        {"query": READ_B, "variables": {"id": campaign_id}},
        {"query": READ_A, "variables": {"id": campaign_id, "unused": [1, 2]}},
        {"query": READ_A, "variables": {}},                        # missing non-null variable
        {"query": READ_A, "variables": {"id": None}},              # null for a non-null one
        {"query": READ_A, "variables": {"id": 5}},                 # an Int for an ID: coerced to "5"
        {"query": READ_A, "variables": {"id": 1.5}},               # refused by ID
        {"query": READ_A, "variables": {"id": {"a": 1}}},          # refused by ID
        {"query": READ_A, "variables": {"id": "nope"}},            # not an id: null
        {"query": READ_A, "variables": {"id": "a\x00b"}},          # NUL text
        {"query": READ_A},                                         # no variables at all
        {"query": PAGE, "variables": {"id": campaign_id}},
        {"query": PAGE, "variables": {"id": campaign_id, "n": 2}},
        {"query": PAGE, "variables": {"id": campaign_id, "n": None}},
        {"query": PAGE, "variables": {"id": campaign_id, "n": 0}},
        {"query": PAGE, "variables": {"id": campaign_id, "n": -1}},
        {"query": PAGE, "variables": {"id": campaign_id, "n": "x"}},
        {"query": PAGE, "variables": {"id": campaign_id, "n": 10 ** 9}},   # over the cost limit
        {"query": PAGE, "variables": {"id": campaign_id, "n": 2 ** 40}},   # over Int's range
        {"query": PAGE, "variables": {"id": campaign_id, "n": True}},
        {"query": FILTERED, "variables": {"id": campaign_id, "f": {"status": "SENT"}}},
        {"query": FILTERED, "variables": {"id": campaign_id, "f": {"status": "NOPE"}}},
        {"query": FILTERED, "variables": {"id": campaign_id, "f": None}},
        {"query": STATS, "variables": {"p": "LAST_7_DAYS"}},
        {"query": STATS, "variables": {"p": "NOPE"}},
        {"query": STATS, "variables": {"d": "2024-02-30"}},
        {"query": STATS, "variables": {"d": "2024-02-03"}},
        {"query": TWO, "operationName": "Q2"},
        {"query": TWO, "operationName": "Q1"},
        {"query": TWO},                                            # several operations, no name
        {"query": TWO, "operationName": "Nope"},
        {"query": FRAGMENT, "variables": {"id": campaign_id}},
        {"query": "{ campaigns(first: 30000) { totalCount } }"},
        {"query": "{ rateLimit { cost limit } campaigns(first: 3) { edges { node { sends(first: 4) { totalCount } } } } }"},
        {"query": "{ nope }"},
        {"query": "{ campaigns("},
        {"query": ""},
        {"query": "subscription { dashboardKpis { activeCampaigns } }"},
        {"query": CREATE, "variables": {"i": {"name": "", "channels": [{"channel": "EMAIL"}]}}},
        {"query": CREATE, "variables": {"i": {"name": "x\x00", "channels": [{"channel": "EMAIL"}]}}},
        {"query": CREATE, "variables": {"i": {"name": "x", "channels": [{"channel": "EMAIL"}], "budget": "abc"}}},
        {"query": "mutation($c: ID!) { campaignPause(id: $c) { userErrors { code field } } }",
         "variables": {"c": "Q2FtcGFpZ246OTk5OTk5"}},
        {"query": "mutation { zoneCreate(name: \"\") { userErrors { code field } } }"},
        # an argument named `source` (the resolvers' first parameter's name)
        {"query": "mutation { creditsTopUp(source: EMAIL, amount: -5) { userErrors { code field } } }"},
        {"query": "mutation($s: CreditSource!) { creditsTopUp(source: $s, amount: 0) { userErrors { code } } }",
         "variables": {"s": "SMS"}},
    ]
    get = [{"query": READ_A, "variables": '{"id": "%s"}' % campaign_id},
           {"query": "mutation { zoneCreate(name: \"\") { userErrors { code } } }"}]
    return [("POST", r) for r in post] + [("GET", r) for r in get]


# A refusal's wait and window end depend on the clock (the two apps run seconds apart).
_CLOCK = re.compile(rb'(retry after |"retryAfter":|"resetAt":)\d+')
_VOLATILE = {"date", "x-request-id", "x-ratelimit-reset", "retry-after", "x-ratelimit-remaining", "x-ratelimit-used"}


async def _answers(app, token: str, requests: list[tuple[str, dict]]) -> list[tuple]:
    out = []
    auth = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        for method, request in requests:
            if method == "POST":
                r = await http.post("/graphql", json=request, headers=auth)
            else:
                r = await http.get("/graphql", params=request, headers=auth)
            headers = sorted((k, v if k not in _VOLATILE else "*") for k, v in r.headers.items())
            out.append((method, request.get("query"), r.status_code, headers, _CLOCK.sub(rb"\1*", r.content)))
    return out


def _general(monkeypatch):
    """Switch the shortcuts off: apps created from now on keep Strawberry's argument conversion and
    its `Schema.execute`; every app builds executors with graphql-core's own `Executor.build` and the query-cost walk,
    and prepares operations through Strawberry's step."""
    from graph import schema as schema_module
    from graph.core import execution

    monkeypatch.setattr(schema_module, "converted_resolvers", lambda schema: 0)
    monkeypatch.setattr(schema_module, "direct_execution", lambda schema: False)
    monkeypatch.setattr(execution, "_prepared", lambda *args: None)
    monkeypatch.setattr(schema_module, "_NO_HOOKS", ())


@pytest.mark.parametrize("env", ["development", "production"])
async def test_every_shortcut_answers_what_the_general_path_answers(tenant, settings, monkeypatch, env):
    from graph import schema as schema_module

    busy, _ = await _busy_campaign(tenant.gql)
    requests = _requests(busy["id"])
    config = Settings(**{**settings.model_dump(), "env": env})
    switched = []
    real = schema_module.converted_resolvers
    monkeypatch.setattr(schema_module, "converted_resolvers", lambda schema: switched.append(real(schema)) or switched[-1])
    fast_app = create_app(config)
    fast = [await _answers(fast_app, tenant.gql.token, requests) for _ in range(2)]  # first, then cached
    _general(monkeypatch)
    slow = await _answers(create_app(config), tenant.gql.token, requests)
    assert switched and switched[0] > 50  # the fast app's fields were switched
    assert fast == [slow, slow]
    assert {200, 400, 405} <= {a[2] for a in slow}
    bodies = b"".join(a[4] for a in slow)
    for code in (b"BAD_USER_INPUT", b"QUERY_TOO_COSTLY", b"GRAPHQL_VALIDATION_FAILED", b"GRAPHQL_PARSE_FAILED",
                 b"INVALID", b"NOT_FOUND", b'"sends":{"edges":[{"node"'):
        assert code in bodies, code


@pytest.mark.parametrize("env", ["development", "production"])
async def test_faults_and_outages_answer_and_log_the_same(tenant, settings, monkeypatch, caplog, env):
    """A server fault in a converted resolver (masked in production, coded and logged with its
    traceback in both) and a database outage (503, one warning)."""
    import logging

    from graph.campaigns import queries

    busy, _ = await _busy_campaign(tenant.gql)
    requests = [("POST", {"query": READ_A, "variables": {"id": busy["id"]}})]
    config = Settings(**{**settings.model_dump(), "env": env})

    async def answers(app):
        out = []
        for fault in (RuntimeError("a bug"), ConnectionRefusedError("down")):
            async def failing(principal, campaign_id, fault=fault):
                raise fault
            caplog.clear()
            with monkeypatch.context() as m, caplog.at_level(logging.INFO, logger="pulse.graphql"):
                m.setattr(queries, "visible_campaign", failing)
                out.append(await _answers(app, tenant.gql.token, requests))
            out.append([(r.levelname, r.getMessage(), r.exc_info is not None) for r in caplog.records
                        if r.name == "pulse.graphql"])
        return out

    fast = await answers(create_app(config))
    _general(monkeypatch)
    slow = await answers(create_app(config))
    assert fast == slow
    assert fast[1] == [("ERROR", "server error: a bug (path campaign)", True)]
    assert fast[2][0][2] == 503 and fast[3][0][0] == "WARNING"
    if env == "production":
        assert b"Unexpected error." in fast[0][0][4]


async def test_rate_limit_refusals_answer_the_same(tenant, settings, monkeypatch):
    """Charged, then refused (429, Retry-After), then a cheaper query that fits: same statuses,
    bodies and headers (the values that depend on the clock aside)."""
    import uuid

    busy, _ = await _busy_campaign(tenant.gql)
    requests = [("POST", {"query": PAGE, "variables": {"id": busy["id"], "n": 30}})] * 3 + \
        [("POST", {"query": READ_A, "variables": {"id": busy["id"]}})] * 2

    def limited():
        return create_app(Settings(**{**settings.model_dump(), "rate_limit_points": 65,
                                      "channel_prefix": f"t{uuid.uuid4().hex[:8]}:"}))

    fast = await _answers(limited(), tenant.gql.token, requests)
    _general(monkeypatch)
    slow = await _answers(limited(), tenant.gql.token, requests)
    assert fast == slow
    assert [a[2] for a in fast] == [200, 200, 429, 200, 200]


# ---------------------------------------------------------------- the pieces, against graphql-core


def _schema():
    import app.main  # noqa: F401 - the schema's types are registered with the app's modules
    from graph.schema import schema

    return schema._schema


COST_DOCUMENTS = [
    "{ campaigns { totalCount } }",
    "{ campaigns(first: 7) { edges { node { sends(first: 3) { edges { node { id } } } } } } }",
    "query($a: Int, $b: Int) { campaigns(first: $a) { edges { node { sends(first: $b) { totalCount } "
    "stats { recipients(first: $a) { totalCount } } } } } }",
    "query($a: Int) { x: campaigns(first: $a) { totalCount } y: campaigns(first: $a) { totalCount } "
    "z: campaigns(first: 0) { edges { node { sends(first: $a) { totalCount } } } } }",
    "fragment S on Campaign { sends(first: $n) { totalCount } budget { spendEntries(first: 2) { totalCount } } } "
    "query($n: Int, $m: Int) { campaigns(first: $m) { edges { node { ...S ... on Campaign { ...S } } } } "
    "node(id: \"x\") { ... on Campaign { ...S } } }",
    "query($n: Int!) { leads(first: $n) { totalCount } tokens { totalCount } users(first: null) { totalCount } "
    "__typename rateLimit { cost } }",
    "query($a: Int) { campaigns(first: $a) { edges { node { sends(first: $a) { edges { node { id } } } } } } }",
]
COST_VARIABLES = [{}, {"a": None, "b": None, "n": None, "m": None}, {"a": 0, "b": 5, "n": 3, "m": 2},
                  {"a": -4, "b": 10 ** 6, "n": 0, "m": -1}, {"a": 3, "b": 3, "n": 7, "m": 11},
                  {"a": True, "b": "12", "n": 2.5, "m": 4}, {"a": 2 ** 70, "b": 1, "n": 1, "m": 1}]


def test_the_cost_formula_is_the_cost_walk():
    """`CostFormula.cost` equals `query_cost` for every document and set of variables (literal,
    variable, absent, null, zero, negative, huge sizes; aliases, fragments, inline fragments, nested
    connections that repeat a variable)."""
    schema = _schema()
    for text in COST_DOCUMENTS:
        document = parse(text)
        entry = prepared_module._prepare(schema, document, None)
        assert entry is not None, text
        for variables in COST_VARIABLES:
            expected = limits.query_cost(schema, entry.fragments, entry.operation, variables)
            assert entry.cost_formula.cost(variables) == expected, (text, variables)
    # A formula that ignored a variable's value would be caught:
    entry = prepared_module._prepare(schema, parse(COST_DOCUMENTS[2]), None)
    assert entry.cost_formula.cost({"a": 3, "b": 3}) != entry.cost_formula.cost({"a": 4, "b": 3})


VARIABLE_DOCUMENTS = [
    "query($id: ID!) { campaign(id: $id) { id } }",
    "query($id: ID, $n: Int, $s: String, $b: Boolean, $f: Float) { campaign(id: $id) { id } }",
    "query($p: StatsPeriod, $d: Date, $t: DateTime) { __typename }",
    "query($p: StatsPeriod!, $d: Date!) { __typename }",
    "query($f: SendFilter) { __typename }",                  # an input object: graphql-core coerces
    "query($l: [ID!]) { __typename }",                        # a list: graphql-core coerces
    "query($n: Int = 3) { __typename }",                      # a default: graphql-core coerces
]
VARIABLE_INPUTS = [
    {}, {"id": "abc"}, {"id": 12}, {"id": None}, {"id": 1.5}, {"id": True}, {"id": ["a"]}, {"id": {"a": 1}},
    {"n": 3, "s": "x", "b": False, "f": 1}, {"n": 2 ** 40}, {"n": "3"}, {"n": 1.0}, {"n": 1.5}, {"s": 5},
    {"b": "true"}, {"f": "1.5"}, {"f": float("nan")}, {"p": "LAST_7_DAYS"}, {"p": "nope"}, {"p": 3},
    {"d": "2024-02-03"}, {"d": "2024-02-30"}, {"d": 5}, {"t": "2024-02-03T10:00:00Z"}, {"t": "garbage"},
    {"p": "TODAY", "d": "2024-01-01"}, {"f": {"status": "SENT"}}, {"l": "a"}, {"l": ["a", None]},
    {"extra": 1, "id": "x"},
]


def test_the_variables_shortcut_is_graphql_cores_coercion():
    """Whenever the shortcut answers, it answers exactly `get_variable_values` (sources and coerced
    values, in order); whenever graphql-core reports an error, the shortcut leaves it to graphql-core.
    The common cases (an ID, scalars, enums) are taken by the shortcut."""
    schema = _schema()
    taken = 0
    for text, inputs in itertools.product(VARIABLE_DOCUMENTS, VARIABLE_INPUTS):
        entry = prepared_module._prepare(schema, parse(text), None)
        general = get_variable_values(schema, entry.operation.variable_definitions or (), inputs, max_errors=50)
        short = entry.coerce_variables(inputs)
        if isinstance(general, list):
            assert short is None, (text, inputs)
        elif short is not None:
            taken += 1
            # (the signatures' wrapping types are new objects in every call: compared by what they hold)
            assert repr(list(short.sources.items())) == repr(list(general.sources.items())), (text, inputs)
            assert list(short.coerced.items()) == list(general.coerced.items()), (text, inputs)
            assert [type(v) for v in short.coerced.values()] == [type(v) for v in general.coerced.values()]
    assert taken >= 25
    assert prepared_module._prepare(schema, parse(VARIABLE_DOCUMENTS[0]), None).coerce_variables(None) is None


def test_documents_graphql_core_refuses_are_not_prepared():
    schema = _schema()
    assert prepared_module._prepare(schema, parse(TWO), None) is None             # several, no name
    assert prepared_module._prepare(schema, parse(TWO), "Nope") is None           # unknown name
    assert prepared_module._prepare(schema, parse("fragment F on Campaign { id }"), None) is None
    assert prepared_module._prepare(schema, parse(TWO), "Q2").operation.name.value == "Q2"


def test_preparations_are_kept_per_document_object_and_name():
    schema = _schema()
    document = parse(READ_A)
    first = prepared_module.prepared(schema, document, None)
    assert prepared_module.prepared(schema, document, None) is first
    assert prepared_module.prepared(schema, parse(READ_A), None) is not first      # another object


def test_masking_tests_errors_as_strawberry_does():
    from strawberry.extensions import MaskErrors
    from graphql import ExecutionResult, GraphQLError

    from graph.schema import PulseMaskErrors

    class NoErrors:
        pass

    class Blank:
        errors = []

    for make in (lambda: ExecutionResult(data={"a": 1}), lambda: ExecutionResult(None, [GraphQLError("x")]),
                 NoErrors, Blank, lambda: None):
        ours, theirs = make(), make()
        mask = PulseMaskErrors()
        mask._process_result(ours)
        MaskErrors._process_result(mask, theirs)
        assert repr(getattr(ours, "errors", "-")) == repr(getattr(theirs, "errors", "-"))


def test_rate_headers_are_what_starlettes_assignments_give():
    from starlette.responses import Response

    state = limits.RateState(100, 5, 7, 1796315820)
    refused = limits.RateState(100, 5, 98, 1796315820, allowed=False)
    for present in ([], [("x-other", "1")], [("X-RateLimit-Used", "3")], [("retry-after", "9"), ("a", "b")]):
        for s in (state, refused):
            ours, theirs = Response(), Response()
            for r in (ours, theirs):
                for k, v in present:
                    r.raw_headers.append((k.encode(), v.encode()))
            limits._set_headers(ours.headers, s.headers())
            for name, value in s.headers().items():
                theirs.headers[name] = value
            assert ours.raw_headers == theirs.raw_headers


def test_nul_check_finds_what_the_path_walk_finds():
    from graph.core.nul import has_nul, nul_paths

    values = ["", "a", "a\x00", 5, None, [], ["a", "b\x00"], {"a": "x"}, {"a": {"b": ["c", "\x00"]}},
              {"a": [1, 2, {"b": None}]}, {"id": "abc", "first": 3}, ("\x00",), b"\x00", 1.5]
    for value in values:
        assert has_nul(value) == bool(nul_paths(value, [], [])), value
