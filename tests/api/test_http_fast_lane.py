"""The HTTP path's fast lane (app/main.py `PulseGraphQL._fast`, docs/architecture.md "Per-request cost,
fourth pass") answers byte for byte what Strawberry's general path answers: every request of a list
(the peer reads, a mutation, user/validation/parse/variable errors, invalid JSON, other content
types, bodies over the limit, slow and abandoned bodies, CORS preflights and simple requests from
allowed and other origins, `application/graphql-response+json`, GET, persisted queries, rate-limit
headers and a 429, 401, a database outage …) is sent twice through the ASGI app — once with the lane
on, once with it off (`PulseGraphQL.fast_lane`, and the router instead of `GraphQLRouteShortcut`) — and the two answers must have the same status, the
same headers in the same order and the same body (or raise the same exception). The lane must also
be taken where it should (Strawberry's `run` not called), so a lane that silently never answers fails
too. The rate limiter is reset and its clock frozen before each charge, so the rate-limit headers
are comparable; every request carries the same X-Request-ID."""

from __future__ import annotations

import asyncio
import hashlib
import types

import orjson
import pytest

from app.main import create_app
from graph.core import limits
from graph.core.cache import ResponseCache
from tests.helpers import create_campaign, launched_campaign

ALLOWED = "https://dashboard.example"
FOREIGN = "https://evil.example"
NOW = 1_800_000_030.0  # the rate limiter's frozen clock
REQUEST_ID = b"fast-lane-test"

READ_A = "query($id:ID!){ campaign(id:$id){ id name status type reach audienceSize createdAt } }"
READ_B = ("query($id:ID!){ campaign(id:$id){ sends(first:50){ edges{ node{ id channel status externalId queuedAt "
          "sentAt } } } } }")
READ_C = "{ campaigns(first:20){ edges{ node{ id name metrics{ totals{ sent delivered } } } } } }"
APQ_QUERY = "query Apq { viewer { organization { id } } }"
APQ_HASH = hashlib.sha256(APQ_QUERY.encode()).hexdigest()


def _scope(method: str, path: str, headers: list[tuple[bytes, bytes]], query_string: bytes = b"") -> dict:
    return {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
            "method": method, "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
            "query_string": query_string, "server": ("pulse.test", 80), "client": ("127.0.0.1", 50000),
            "headers": [(b"host", b"pulse.test"), (b"x-request-id", REQUEST_ID), *headers], "state": {}}


async def _call(app, scope: dict, chunks: list) -> tuple:
    """Drive the app: `chunks` are request messages (bytes: a body chunk, more to come unless last;
    "disconnect"; "stall": the next chunk never comes). The answer: (status, headers, body, raised)."""
    pending = list(chunks)
    sent: list[dict] = []

    async def receive():
        if not pending:
            await asyncio.sleep(3600)
        item = pending.pop(0)
        if item == "disconnect":
            return {"type": "http.disconnect"}
        if item == "stall":
            await asyncio.sleep(3600)
        return {"type": "http.request", "body": item, "more_body": bool(pending)}

    async def send(message):
        sent.append(message)

    raised = None
    try:
        await asyncio.wait_for(app(scope, receive, send), 20)
    except Exception as exc:  # noqa: BLE001 - compared between the two paths
        raised = type(exc).__name__
    starts = [m for m in sent if m["type"] == "http.response.start"]
    status = starts[0]["status"] if starts else None
    headers = list(starts[0].get("headers", [])) if starts else None
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, headers, body, raised


def _post(body, token: str | None = None, content_type: bytes | None = b"application/json", accept: bytes | None = None,
          origin: str | None = None, chunks: list | None = None, content_length: bool = True, method: str = "POST"):
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    headers = []
    if content_type is not None:
        headers.append((b"content-type", content_type))
    if accept is not None:
        headers.append((b"accept", accept))
    if token:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    if origin:
        headers.append((b"origin", origin.encode()))
    if content_length and chunks is None:
        headers.append((b"content-length", str(len(raw)).encode()))
    return _scope(method, "/graphql", headers), (chunks if chunks is not None else [raw])


def _get(params: dict, token: str | None = None, accept: bytes = b"application/json"):
    from urllib.parse import urlencode

    headers = [(b"accept", accept)]
    if token:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    return _scope("GET", "/graphql", headers, urlencode(params).encode()), [b""]


def _cases(token: str, campaign_id: str, launched_id: str) -> list[tuple[str, tuple, bool | None]]:
    """(name, (scope, chunks), lane): lane True — the fast lane answers (Strawberry's run is not called);
    False — Strawberry's path answers; None — the view is not reached or either may answer."""
    a = {"query": READ_A, "variables": {"id": campaign_id}}
    q = lambda query, **kw: {"query": query, **kw}  # noqa: E731
    mutation = ("mutation($id:ID!,$i:CampaignUpdateInput!){ campaignUpdate(id:$id, input:$i){ campaign{ id name } "
                "userErrors{ field code } } }")
    big = orjson.dumps({"query": READ_A, "variables": {"id": campaign_id}, "pad": "x" * 300_000})
    return [
        ("read a", _post(a, token), True),
        ("read b", _post({"query": READ_B, "variables": {"id": launched_id}}, token), True),
        ("read c", _post(q(READ_C), token), True),
        ("read a, charset", _post(a, token, content_type=b"application/json; charset=utf-8"), True),
        ("read a, operationName", _post({**a, "query": "query A" + READ_A[5:], "operationName": "A"}, token), True),
        ("read a, nulls", _post({**a, "extensions": None, "operationName": None}, token), True),
        ("read a, no variables", _post(q(READ_A), token), True),
        ("mutation", _post(q(mutation, variables={"id": campaign_id, "i": {"name": "Fast lane"}}), token), True),
        ("user error", _post(q('mutation { tokenRevoke(id: "VG9rZW46OTk5OTk5OQ==") { userErrors { code message } } }'),
                             token), True),
        ("validation error", _post(q("{ nope }"), token), True),
        ("parse error", _post(q("{ nope "), token), True),
        ("variable error", _post(q("query($n: Int!) { campaigns(first: $n) { totalCount } }", variables={"n": "x"}),
                                 token), True),
        ("unknown operation", _post(q(READ_A, operationName="Nope", variables={"id": campaign_id}), token), True),
        ("two anonymous operations", _post(q("{ a: viewer { role } } { b: viewer { role } }"), token), True),
        ("subscription", _post(q("subscription { dashboardKpis { activeCampaigns } }"), token), True),
        ("anonymous", _post(q("{ viewer { role } }")), True),
        ("anonymous introspection", _post(q("{ __schema { queryType { name } } }")), True),
        ("no query", _post({"variables": {}}, token), True),
        ("bad token", _post(a, "nope"), None),
        ("graphql-response+json", _post(a, token, accept=b"application/graphql-response+json"), True),
        ("graphql-response+json, request error", _post(q("{ nope }"), token,
                                                       accept=b"application/graphql-response+json"), True),
        ("graphql-response+json, parse error", _post(q("{ nope "), token,
                                                     accept=b"application/graphql-response+json, application/json"), True),
        ("accept */*", _post(a, token, accept=b"*/*"), True),
        ("apq unknown", _post({"extensions": {"persistedQuery": {"version": 1, "sha256Hash": APQ_HASH}}}, token), True),
        ("apq register", _post({"query": APQ_QUERY, "extensions": {"persistedQuery": {"version": 1,
                                                                                      "sha256Hash": APQ_HASH}}}, token), True),
        ("apq hit", _post({"extensions": {"persistedQuery": {"version": 1, "sha256Hash": APQ_HASH}}}, token), True),
        ("apq mismatch", _post({"query": READ_A, "extensions": {"persistedQuery": {"version": 1, "sha256Hash": APQ_HASH}}},
                               token), True),
        ("apq invalid", _post({"extensions": {"persistedQuery": "x"}}, token), True),
        ("rate limited", _post(q("{ campaigns(first: 100) { edges { node { id } } } }"), token), True),
        ("over the query cost", _post(q("{ campaigns(first: 100) { edges { node { sends(first: 100) { edges { node "
                                        "{ id } } } } } } }"), token), True),
        ("invalid JSON", _post(b"{not json", token), False),
        ("empty body", _post(b"", token), False),
        ("JSON string", _post(b'"{ __typename }"', token), False),
        ("JSON number", _post(b"12", token), False),
        ("batch", _post([a], token), False),
        ("query not a string", _post({"query": 1}, token), False),
        ("variables not an object", _post({"query": READ_A, "variables": [1]}, token), False),
        ("extensions not an object", _post({"query": READ_A, "extensions": "x"}, token), False),
        ("operationName not a string", _post({"query": READ_A, "operationName": 1}, token), False),
        ("integer over 64 bits", _post(b'{"query":"query($n:Int){ campaigns(first:$n){ totalCount } }",'
                                       b'"variables":{"n":123456789012345678901234567890}}', token), False),  # json.loads: exact
        ("NaN", _post(b'{"query":"{ viewer { role } }","variables":{"x":NaN}}', token), False),
        ("BOM", _post(b"\xef\xbb\xbf" + orjson.dumps(a), token), False),
        ("UTF-16", _post(orjson.dumps(a).decode().encode("utf-16"), token), False),
        ("nested too deeply", _post(b'{"query":"{ viewer { role } }","variables":{"x":' + b"[" * 100_000
                                    + b"]" * 100_000 + b"}}", token, content_length=False), False),
        ("text/plain", _post(b"{ __typename }", token, content_type=b"text/plain"), False),
        ("no content-type", _post(a, token, content_type=None), False),
        ("application/json;charset=utf-8", _post(a, token, content_type=b"application/json;charset=utf-8"), False),
        ("application/json; charset=UTF-8", _post(a, token, content_type=b"application/json; charset=UTF-8"), False),
        ("Application/JSON", _post(a, token, content_type=b"Application/JSON"), False),
        ("application/jsonx", _post(a, token, content_type=b"application/jsonx"), False),
        ("application/graphql-response+json body", _post(a, token, content_type=b"application/graphql-response+json"),
         False),
        ("PUT", _post(a, token, method="PUT"), False),
        ("declared body over the limit", _post(big, token), None),
        ("streamed body over the limit", _post(big, token, chunks=[big[:200_000], big[200_000:]]), True),
        ("slow body", _post(a, token, chunks=[b'{"query":', "stall"]), True),
        ("client gone", _post(a, token, chunks=[b'{"query":', "disconnect"]), True),
        ("chunked body", _post(a, token, chunks=[orjson.dumps(a)[:10], b"", orjson.dumps(a)[10:]]), True),
        ("CORS preflight, allowed", (_scope("OPTIONS", "/graphql", [
            (b"origin", ALLOWED.encode()), (b"access-control-request-method", b"POST"),
            (b"access-control-request-headers", b"authorization, content-type")]), [b""]), None),
        ("CORS preflight, other origin", (_scope("OPTIONS", "/graphql", [
            (b"origin", FOREIGN.encode()), (b"access-control-request-method", b"POST")]), [b""]), None),
        ("CORS simple, allowed", _post(a, token, origin=ALLOWED), True),
        ("CORS simple, other origin", _post(a, token, origin=FOREIGN), True),
        ("CORS simple, allowed, 401", _post(a, "nope", origin=ALLOWED), None),
        ("GET query", _get({"query": READ_A, "variables": orjson.dumps({"id": campaign_id}).decode()}, token), False),
        ("GET mutation", _get({"query": mutation}, token), False),
        ("GET without a query", _get({}, token, accept=b"text/html"), False),
        ("GET apq", _get({"extensions": orjson.dumps({"persistedQuery": {"version": 1, "sha256Hash": APQ_HASH}}).decode()},
                         token), False),
        ("database outage", _post(a, token), True),
    ]


@pytest.fixture(params=["production", "test, response cache"])
async def lane_app(request, app, settings):
    """An app of its own on the session database (no lifespan of its own, as in tests/clients/test_cors.py):
    CORS on, small body limit and read timeout, a rate limit a 100-campaign page exceeds."""
    update = {"allowed_origins": [ALLOWED], "max_body_bytes": 250_000, "body_read_timeout_s": 0.3,
              "rate_limit_points": 60, "broadcast_url": "memory://"}  # memory: the limiter's state is the test's
    if request.param == "production":
        update["env"] = "production"
    else:
        update.update(response_cache_entries=100)
    return create_app(settings.model_copy(update=update))


def _freeze_rate_limit(view, monkeypatch) -> None:
    """Every charge starts from an unused window, at a fixed time: comparable rate-limit headers."""
    limiter = view.limiter
    charge = limiter.charge

    async def fresh_charge(who, cost, now=None):
        limiter._local.clear()
        return await charge(who, cost, NOW)

    monkeypatch.setattr(limiter, "charge", fresh_charge)
    monkeypatch.setattr(limits, "time", types.SimpleNamespace(time=lambda: NOW))


async def test_the_fast_lane_answers_what_strawberrys_path_answers(lane_app, tenant, monkeypatch):
    campaign = await create_campaign(tenant.gql)
    launched, _ = await launched_campaign(tenant.gql, 3)
    view = lane_app.state.graphql
    _freeze_rate_limit(view, monkeypatch)
    runs = []
    run = view.run

    async def counted_run(request, *args, **kwargs):
        runs.append(request)
        return await run(request, *args, **kwargs)

    monkeypatch.setattr(view, "run", counted_run)
    import graph.campaigns.queries as queries

    visible_campaign = queries.visible_campaign
    compared = 0
    for name, (scope, chunks), lane in _cases(tenant.gql.token, campaign["id"], launched["id"]):
        if name == "database outage":
            async def outage(*_args, **_kw):
                raise ConnectionRefusedError("the database went away")
            monkeypatch.setattr(queries, "visible_campaign", outage)
        answers = []
        for on in (True, False):
            view.fast_lane = lane_app.route_shortcut = on  # off: Strawberry's run, reached through the router
            lane_app.middleware_stack = lane_app.build_middleware_stack()
            if view.cache is not None:  # each path answers a miss, then a hit, from its own empty cache
                view.cache = ResponseCache(view.cache.max_entries, view.cache.max_bytes, view.cache.ttl_s)
            runs.clear()
            first = await _call(lane_app, {**scope, "state": {}}, chunks)
            took_run = bool(runs)
            second = await _call(lane_app, {**scope, "state": {}}, chunks) if view.cache is not None else None
            answers.append((first, second))
            if on and lane is not None:
                assert took_run is not lane, (name, "lane expected" if lane else "Strawberry's path expected", first)
        view.fast_lane = lane_app.route_shortcut = True
        monkeypatch.setattr(queries, "visible_campaign", visible_campaign)
        assert answers[0] == answers[1], name
        compared += 1
    assert compared > 60


async def test_the_comparison_fails_when_the_lane_answers_otherwise(lane_app, tenant, monkeypatch):
    """The comparison above sees a lane that answers other bytes (here: one header more)."""
    campaign = await create_campaign(tenant.gql)
    view = lane_app.state.graphql
    _freeze_rate_limit(view, monkeypatch)
    fast = view._fast

    async def wrong(request, accept):
        response = await fast(request, accept)
        if response is not None:
            response.headers["x-extra"] = "1"
        return response

    scope, chunks = _post({"query": READ_A, "variables": {"id": campaign["id"]}}, tenant.gql.token)
    monkeypatch.setattr(view, "_fast", wrong)
    view.fast_lane = True
    on = await _call(lane_app, {**scope, "state": {}}, chunks)
    view.fast_lane = False
    try:
        off = await _call(lane_app, {**scope, "state": {}}, chunks)
    finally:
        view.fast_lane = True
    assert on[0] == off[0] == 200 and on[2] == off[2]
    assert on != off


async def test_the_route_shortcut_gives_the_view_the_scope_the_router_gives(lane_app, tenant):
    """`GraphQLRouteShortcut` (app/main.py) sets what Starlette's router sets, for every method; other
    paths still go through the router."""
    view = lane_app.state.graphql
    seen = []
    http = view._http

    async def spy(scope, receive, send):
        seen.append({k: scope.get(k) for k in ("router", "route", "endpoint", "path_params", "app")})
        return await http(scope, receive, send)

    view._http = spy
    try:
        for method in ("POST", "GET", "PUT"):
            scope, chunks = _post({"query": "{ viewer { role } }"}, tenant.gql.token, method=method)
            for shortcut in (True, False):
                lane_app.route_shortcut = shortcut
                lane_app.middleware_stack = lane_app.build_middleware_stack()
                await _call(lane_app, {**scope, "state": {}}, chunks)
            assert seen[0] == seen[1] and seen[0]["route"].path == "/graphql", method
            seen.clear()
        lane_app.route_shortcut = True
        lane_app.middleware_stack = lane_app.build_middleware_stack()
        status, _, body, _ = await _call(lane_app, _scope("GET", "/healthz", []), [b""])
        assert (status, body) == (200, b'{"status":"ok"}')
        status, *_ = await _call(lane_app, _scope("GET", "/graphql/", []), [b""])
        assert status == 307 and not seen  # the router redirects to /graphql
    finally:
        view._http = http


def test_generated_request_ids_are_uuid4_hex():
    """HttpMetrics' generated X-Request-ID (`_new_request_id`) is what uuid.uuid4().hex gives for the
    same random bytes."""
    import os
    import uuid

    from app.main import _new_request_id

    for random in (bytes(16), b"\xff" * 16, *(os.urandom(16) for _ in range(2000))):
        assert _new_request_id(random) == uuid.UUID(bytes=random, version=4).hex
    assert uuid.UUID(hex=_new_request_id()).version == 4
