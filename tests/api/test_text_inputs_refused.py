"""Text a database cannot hold, or that is absurdly long, is refused with a code — not an
internal error — on both backends; in a batch ingest only the event concerned is rejected."""

from tests.helpers import at, create_campaign, ingest, launched_campaign

NUL = "a\x00b"


async def _error(gql, query: str, variables: dict | None = None) -> dict:
    r = await gql.raw(query, variables)
    assert r.status_code == 200, r.text
    [error] = r.json()["errors"]
    return error


async def test_nul_in_a_query_argument_is_a_graphql_error_invalid_with_the_field_path(tenant):
    """Search and filter text, inline or as a variable, on a root or a nested field."""
    campaign = await create_campaign(tenant.gql)
    cases = [
        ("query($t:String){ campaigns(filter:{text:$t}){ totalCount } }", {"t": NUL}, ["filter", "text"]),
        ("query($f:CampaignFilter){ campaigns(filter:$f){ totalCount } }", {"f": {"text": NUL}}, ["filter", "text"]),
        ('{ campaigns(filter:{text:"a\\u0000b"}){ totalCount } }', {}, ["filter", "text"]),
        ("query($s:String){ leads(filter:{search:$s}){ totalCount } }", {"s": NUL}, ["filter", "search"]),
        ("query($s:String!){ leads(filter:{tags:[\"ok\", $s]}){ totalCount } }", {"s": NUL}, ["filter", "tags", "1"]),
        ("query($c:ID!,$a:String){ campaign(id:$c){ sends(after:$a){ totalCount } } }",
         {"c": campaign["id"], "a": NUL}, ["after"]),
        ("query($i:ID!){ node(id:$i){ id } }", {"i": NUL}, ["id"]),
    ]
    for query, variables, field in cases:
        error = await _error(tenant.gql, query, variables)
        assert error["extensions"]["code"] == "INVALID", (query, error)
        assert error["extensions"]["field"] == field, (query, error)
        assert "NUL" in error["message"]


async def test_nul_in_mutation_text_is_a_user_error_invalid_and_nothing_is_written(tenant):
    before = (await tenant.gql("{ campaigns{ totalCount } }"))["campaigns"]["totalCount"]
    d = await tenant.gql("mutation($i:CampaignCreateInput!){ campaignCreate(input:$i){ campaign{ id } "
                         "userErrors{ field code message } } }",
                         {"i": {"name": NUL, "description": "ok\x00", "channels": [{"channel": "EMAIL", "unitCost": "0.01"}]}})
    out = d["campaignCreate"]
    assert out["campaign"] is None
    assert sorted((tuple(e["field"]), e["code"]) for e in out["userErrors"]) == [
        (("description",), "INVALID"), (("name",), "INVALID")], out
    assert (await tenant.gql("{ campaigns{ totalCount } }"))["campaigns"]["totalCount"] == before
    # An argument that is not `input` keeps its own name in the path.
    d = await tenant.gql("mutation($n:String!){ zoneCreate(name:$n){ zone{ id } userErrors{ field code } } }", {"n": NUL})
    assert d["zoneCreate"] == {"zone": None, "userErrors": [{"field": ["name"], "code": "INVALID"}]}
    campaign = await create_campaign(tenant.gql)
    d = await tenant.gql('mutation($c:ID!){ campaignClone(id:$c, name:"a\\u0000"){ campaign{ id } userErrors{ field code } } }',
                         {"c": campaign["id"]})
    assert d["campaignClone"] == {"campaign": None, "userErrors": [{"field": ["name"], "code": "INVALID"}]}


async def test_nul_in_leads_upsert_names_the_item_and_writes_nothing(tenant):
    """leadsUpsert is all or nothing: the NUL item is reported with its index, no lead is written."""
    leads = [{"externalId": "nul-0", "name": "A"}, {"externalId": "nul-1", "name": NUL, "tags": ["x", NUL]},
             {"externalId": "nul-2", "email": "c@example.test"}]
    d = await tenant.gql("mutation($l:[LeadInput!]!){ leadsUpsert(leads:$l){ leads{ id } userErrors{ field code } } }",
                         {"l": leads})
    out = d["leadsUpsert"]
    assert out["leads"] == []
    assert [(e["field"], e["code"]) for e in out["userErrors"]] == [
        (["leads", "1", "name"], "INVALID"), (["leads", "1", "tags", "1"], "INVALID")], out
    d = await tenant.gql('{ leads(filter:{search:"nul-"}){ totalCount } }')
    assert d["leads"]["totalCount"] == 0


async def test_nul_in_one_ingest_event_rejects_only_that_event(tenant):
    """A NUL idempotency key (or any other text) in one event of a batch: that event is rejected
    INVALID with its index, the others are applied."""
    campaign, leads = await launched_campaign(tenant.gql, n_leads=4)
    events = [{"idempotencyKey": f"k-{i}", "externalId": f"m-{i}", "channel": "EMAIL", "type": "SENT",
               "occurredAt": at(-1), "campaignId": campaign["id"], "leadId": lead["id"]}
              for i, lead in enumerate(leads)]
    events[1]["idempotencyKey"] = "k-\x001"
    events[2]["reason"] = NUL
    out = await ingest(tenant.gql, events)
    assert out["accepted"] == 2 and out["userErrors"] == [], out
    assert [(r["index"], r["code"]) for r in out["rejected"]] == [(1, "INVALID"), (2, "INVALID")]
    assert "idempotencyKey" in out["rejected"][0]["message"] and "reason" in out["rejected"][1]["message"]
    for field in ("externalId", "leadExternalId", "url"):
        event = {**events[3], "idempotencyKey": f"k-{field}", field: NUL}
        out = await ingest(tenant.gql, [event])
        assert [(r["index"], r["code"]) for r in out["rejected"]] == [(0, "INVALID")], (field, out)
    d = await tenant.gql("mutation($e:[GoalEventInput!]!){ goalEventsIngest(events:$e){ accepted rejected{ index code } } }",
                         {"e": [{"idempotencyKey": "g-ok", "goalType": "LEAD", "occurredAt": at(-1), "leadId": leads[0]["id"]},
                                {"idempotencyKey": "g\x00", "goalType": "LEAD", "occurredAt": at(-1),
                                 "leadExternalId": "x\x00y"},
                                {"idempotencyKey": "g-key", "goalType": "LEAD", "occurredAt": at(-1), "key": NUL,
                                 "leadId": leads[0]["id"]}]})
    assert d["goalEventsIngest"] == {"accepted": 1, "rejected": [{"index": 1, "code": "INVALID"},
                                                                 {"index": 2, "code": "INVALID"}]}
    d = await tenant.gql("mutation($e:[OutreachEventInput!]!){ outreachEventsIngest(events:$e){ accepted "
                         "rejected{ index code message } userErrors{ code } } }",
                         {"e": [{"idempotencyKey": "o-ok", "type": "REPLIED", "campaignId": campaign["id"],
                                 "leadId": leads[0]["id"], "occurredAt": at(-1)},
                                {"idempotencyKey": "o\x00", "type": "REPLIED", "campaignId": campaign["id"],
                                 "leadExternalId": NUL, "occurredAt": at(-1)}]})
    out = d["outreachEventsIngest"]
    assert out["userErrors"] == [] and {"index": 1, "code": "INVALID", "message": out["rejected"][-1]["message"]} in out["rejected"]
    assert "NUL" in out["rejected"][-1]["message"] and all(r["code"] != "INVALID" for r in out["rejected"] if r["index"] == 0)


async def test_over_long_filter_text_and_time_zone_are_refused_with_a_code(tenant):
    r = await tenant.gql.raw("query($t:String){ campaigns(filter:{text:$t}){ totalCount } }", {"t": "x" * 100_000})
    body = r.json()
    assert r.status_code == 200 and body["errors"][0]["extensions"]["code"] in ("TOO_LONG", "BAD_USER_INPUT"), body
    assert body["errors"][0]["message"] != "Unexpected error."
    r = await tenant.gql.raw("query($t:String){ leads(filter:{search:$t}){ totalCount } }", {"t": "x" * 100_000})
    body = r.json()
    assert body["errors"][0]["extensions"]["code"] in ("TOO_LONG", "BAD_USER_INPUT"), body


async def test_nul_in_a_subscription_argument_is_an_error_invalid(tenant, live_server):
    """Over a real websocket: the subscription is refused with INVALID and the argument's path."""
    from tests.wsclient import connect

    campaign = await create_campaign(tenant.gql)
    client = await connect(live_server, tenant.gql.token)
    try:
        await client.subscribe("1", "subscription($c:ID!,$k:String){ sendStatusChanged(campaignId:$c, resumeKey:$k){ cursor } }",
                               {"c": campaign["id"], "k": NUL})
        message = await client.message("1")
        errors = message["payload"]["errors"] if message["type"] == "next" else message["payload"]
        assert [(e["extensions"]["code"], e["extensions"]["field"]) for e in errors] == [("INVALID", ["resumeKey"])], message
    finally:
        await client.close()


def _sample(gtype, path: list[str], nul_paths: list[list[str]]):
    """A value of `gtype` (required input fields only), every String/ID a NUL text (its path recorded)."""
    from graphql import (GraphQLEnumType, GraphQLInputObjectType, GraphQLList, GraphQLNonNull,
                         GraphQLScalarType)

    if isinstance(gtype, GraphQLNonNull):
        return _sample(gtype.of_type, path, nul_paths)
    if isinstance(gtype, GraphQLList):
        return [_sample(gtype.of_type, [*path, "0"], nul_paths)]
    if isinstance(gtype, GraphQLEnumType):
        return next(iter(gtype.values))
    if isinstance(gtype, GraphQLInputObjectType):
        return {name: _sample(f.type, [*path, name], nul_paths)
                for name, f in gtype.fields.items() if isinstance(f.type, GraphQLNonNull) or
                isinstance(f.type, GraphQLScalarType) and f.type.name == "String"}
    assert isinstance(gtype, GraphQLScalarType)
    if gtype.name in ("String", "ID"):
        nul_paths.append(path)
        return NUL
    return {"Int": 1, "Float": 1.0, "Boolean": True, "Decimal": "1", "Date": "2026-01-01",
            "DateTime": "2026-01-01T00:00:00Z"}[gtype.name]


def _operations(root, kind: str):
    """For every field of `root` with an argument that can hold text: (name, document, variables, NUL paths)."""
    from graphql import GraphQLObjectType, get_named_type

    from graph.core.nul import _can_hold_text

    for name, field in root.fields.items():
        args = {a: arg for a, arg in field.args.items() if _can_hold_text(arg.type, set())}
        if not args:
            continue
        paths: list[list[str]] = []
        variables = {a: _sample(arg.type, [a], paths) for a, arg in field.args.items()
                     if a in args or str(arg.type).endswith("!")}
        if not paths:
            continue  # its text fields are optional and not of type String (ids in lists): not sampled
        defs = ", ".join(f"${a}: {field.args[a].type}" for a in variables)
        call = ", ".join(f"{a}: ${a}" for a in variables)
        returns = get_named_type(field.type)
        selection = ""
        if isinstance(returns, GraphQLObjectType):
            selection = "{ __typename userErrors { field code } }" if "userErrors" in returns.fields else "{ __typename }"
            if "rejected" in returns.fields:
                selection = "{ rejected { index code } userErrors { field code } }"
        elif returns.name not in ("String", "Int", "Boolean", "ID", "Float", "Decimal", "DateTime", "Date"):
            selection = "{ __typename }"
        yield name, f"{kind}({defs}) {{ {name}({call}) {selection} }}", variables, paths


async def test_every_text_argument_of_every_mutation_and_query_refuses_nul(tenant):
    """Generated from the schema: each mutation answers only INVALID user errors naming the NUL
    texts (camelCase paths, `input` left out); each query field a GraphQL error INVALID with a path
    that is one of them."""
    from graph.schema import schema

    gschema = schema._schema
    checked = 0
    for name, document, variables, paths in _operations(gschema.mutation_type, "mutation"):
        r = await tenant.gql.raw(document, variables)
        assert r.status_code == 200, (name, r.text)
        body = r.json()
        assert not body.get("errors"), (name, body)
        errors = body["data"][name]["userErrors"]
        if "rejected" in body["data"][name]:  # a batch that rejects single events: that event is rejected
            assert errors == [] and [r["index"] for r in body["data"][name]["rejected"]] == [0], (name, body)
            assert body["data"][name]["rejected"][0]["code"] in ("INVALID", "NOT_FOUND"), (name, body)  # NUL in an ID
            checked += 1
            continue
        expected = sorted(p[1:] if p[0] == "input" else p for p in paths)
        assert sorted(e["field"] for e in errors) == expected and {e["code"] for e in errors} == {"INVALID"}, (name, errors)
        checked += 1
    for name, document, variables, paths in _operations(gschema.query_type, "query"):
        r = await tenant.gql.raw(document, variables)
        assert r.status_code == 200, (name, r.text)
        assert "errors" in r.json(), (name, document, r.json())
        [error] = r.json()["errors"]
        assert error["extensions"]["code"] == "INVALID" and error["extensions"]["field"] in paths, (name, error)
        checked += 1
    assert checked >= 30
