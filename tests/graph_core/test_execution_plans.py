"""Issue 15 item 2: direct leaf fields and plans (graph/core/execution.py) answer byte for byte what
graphql-core's own completion answers — data and errors — for lists, nested objects, enums, times,
money, `__typename`, aliases, fragments and a field error inside a planned list."""

from __future__ import annotations

import pytest

from tests.campaigns.test_fast_reads import CAMPAIGN, SEND, _busy_campaign

DOCUMENTS = [
    f"query($id: ID!) {{ campaign(id: $id) {{ {CAMPAIGN} }} }}",
    f"query($id: ID!) {{ campaign(id: $id) {{ sends(first: 50) {{ totalCount pageInfo {{ hasNextPage endCursor }} "
    f"edges {{ cursor node {{ __typename {SEND} }} }} }} }} }}",
    "query($id: ID!) { campaign(id: $id) { a: sends(first: 3) { edges { n: node { s: status, c: channel, "
    "...on Send { externalId queuedAt } } } } b: sends(first: 2) { edges { node { id } } } } }",
    f"fragment C on Campaign {{ {CAMPAIGN} }} {{ campaigns(first: 20) {{ edges {{ node {{ ...C }} }} }} }}",
    "{ campaigns(first: 20) { edges { node { id name metrics { totals { sent delivered } } } } } }",
    "{ viewer { organization { id name } } }",
    "query($id: ID!) { campaign(id: $id) { sends(first: 2, after: \"bad\") { edges { node { id } } } } }",
]


async def test_plans_answer_what_graphql_core_answers(tenant, general_path):
    gql = tenant.gql
    busy, _ = await _busy_campaign(gql)
    await _busy_campaign(gql, n_leads=3)
    # Three times: the first request sees each selection, the second builds the shared plans, the
    # third runs them (plans are shared across requests for documents without directives).
    fast = [[(await gql.raw(d, {"id": busy["id"]} if "$id" in d else None)).content for d in DOCUMENTS]
            for _ in range(3)]
    general_path()
    slow = [(await gql.raw(d, {"id": busy["id"]} if "$id" in d else None)).content for d in DOCUMENTS]
    assert fast == [slow] * 3
    assert b'"errors"' in slow[-1] and b'"sends":{"edges":[{"' not in slow[-1]


@pytest.mark.parametrize("partial", [True, False])
async def test_a_null_in_a_non_null_field_falls_back_with_the_same_error(tenant, general_path, monkeypatch, partial):
    """A planned list whose item breaks a non-null field: the object takes graphql-core's path and
    the error (message, path) is the one graphql-core gives — the send log's objects built by
    `Send.of` from full rows, or (`partial`) by `send_builder` from partial rows (sends_shape)."""
    from graph.campaigns import types as campaign_types
    from graph.delivery.types import Send

    gql = tenant.gql
    busy, _ = await _busy_campaign(gql)
    original, builder = Send.of, campaign_types.send_builder
    built = []

    def breaking(make):
        def build(m, **private):
            send = make(m, **private)
            built.append(type(m).__name__)
            if m.status.value == "FAILED":
                send.queued_at = None  # non-null field
            return send
        return build

    monkeypatch.setattr(Send, "of", staticmethod(breaking(original)))
    monkeypatch.setattr(campaign_types, "send_builder", lambda attributes: breaking(builder(attributes)))
    if not partial:
        monkeypatch.setattr(campaign_types, "sends_shape", lambda info: None)
    document = "query($id: ID!) { campaign(id: $id) { sends(first: 50) { edges { node { id status queuedAt } } } } }"
    fast = (await gql.raw(document, {"id": busy["id"]})).json()
    general_path()
    slow = (await gql.raw(document, {"id": busy["id"]})).json()
    assert fast == slow
    assert fast["errors"][0]["path"][:3] == ["campaign", "sends", "edges"] and fast["errors"][0]["path"][-1] == "queuedAt"
    assert set(built) == {"SendPartialRow" if partial else "SendRow"}


def test_enum_coercion_by_member_answers_what_strawberry_answers():
    """`coercer` (the leaf and plan paths' enum coercion: a dict from member to name) gives, for every
    member of every enum of the schema, Strawberry's own answer; anything else (a plain string, a
    member of another enum) goes to Strawberry's coercion, with its answer or its error."""
    import enum

    from graphql import GraphQLEnumType

    from graph.core.execution import coercer
    from graph.schema import schema

    enums = [t for t in schema._schema.type_map.values()
             if isinstance(t, GraphQLEnumType) and getattr(t, "wrapped_cls", None) is not None]
    assert len(enums) > 10
    other = enum.Enum("Other", {"X": "x"})
    for of in enums:
        fast = coercer(of)
        assert fast is not of.coerce_output_value  # the dict path is in use
        for member in of.wrapped_cls:
            assert fast(member) == of.coerce_output_value(member)
        for value in [next(iter(of.values)), "no such value", other.X]:
            try:
                want = ("ok", of.coerce_output_value(value))
            except Exception as e:  # noqa: BLE001
                want = ("error", type(e), str(e))
            try:
                got = ("ok", fast(value))
            except Exception as e:  # noqa: BLE001
                got = ("error", type(e), str(e))
            assert got == want, (of.name, value)


CHECKED = [
    "{ viewer { organization { id name } } }",
    "query($id: ID!) { campaign(id: $id) { id name } }",
    "{ nosuchField }",
    "query($id: ID!) { campaign(id: $id) { id name ",
    "{ " + " ".join(f"a{i}: __typename" for i in range(40)) + " }",
    "{ viewer { organization { " + "id " * 6000 + "} } }",
    "query($id: ID!) { node(id: $id) { ... on Campaign { " + "sends(first: 1) { edges { node { campaign { " * 4
    + "id" + " } } } }" * 4 + " } } }",
    "query A { viewer { id } } query B { viewer { id } }",
]


async def test_cached_parsing_and_validation_answer_what_strawberry_answers(tenant, monkeypatch):
    """PulseSchema parses and validates through process-wide caches: each document — valid, invalid,
    unparsable, over the alias, token and depth limits, ambiguous — answers the same the first time,
    from the caches, and through Strawberry's own uncached parsing and validation."""
    import strawberry

    from graph.schema import PulseSchema

    gql = tenant.gql
    busy, _ = await _busy_campaign(gql, n_leads=2)

    async def answers():
        return [(r.status_code, r.content) for r in
                [await gql.raw(d, {"id": busy["id"]} if "$id" in d else None) for d in CHECKED]]

    first, cached = await answers(), await answers()
    monkeypatch.setattr(PulseSchema, "_prepare_operation_async", strawberry.Schema._prepare_operation_async)
    uncached = await answers()
    assert first == cached == uncached
    assert sum(b'"errors"' in body for _s, body in first) >= 5


DIRECTIVES = ("query($id: ID!, $v: Boolean!) { campaign(id: $id) { sends(first: 5) { edges { node { id "
              "status @include(if: $v) channel @skip(if: $v) ... on Send @include(if: $v) { externalId } } } } } }")


async def test_plans_follow_include_and_skip_from_request_to_request(tenant, general_path):
    """A document whose selection depends on variables (@include/@skip) is never served a plan built
    for another request's variables: alternating values answer what graphql-core answers."""
    from graph.core import execution

    gql = tenant.gql
    busy, _ = await _busy_campaign(gql)
    order = [True, False, True, True, False, False, True]
    fast = [(await gql.raw(DIRECTIVES, {"id": busy["id"], "v": v})).content for v in order]
    assert len(execution._SHARED_PLANS) > 0  # the other documents of this process share theirs
    general_path()
    slow = {v: (await gql.raw(DIRECTIVES, {"id": busy["id"], "v": v})).content for v in (True, False)}
    assert fast == [slow[v] for v in order]
    assert slow[True] != slow[False]
