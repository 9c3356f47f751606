"""Fast ids, cursors and edges (graph/core) against the general code they replace (issue 15, send log)."""

import random

import pytest

import app.main  # noqa: F401 - builds the schema's types
from graph import core
from graph.core import (Edge, _edge, edge_general, encode_cursor, encode_cursor_general, from_global_id,
                        decode_cursor, to_global_id, to_global_id_general)

_rng = random.Random(15)
_INTS = [0, 1, 9, 10, 99, 100, 255, 256, 2**31 - 1, 2**31, 2**53, 2**62, 2**63 - 1, 10**30, -1, -2**40] \
    + [_rng.randrange(1, 2**63) for _ in range(3000)] + [_rng.randrange(1, 10**6) for _ in range(3000)]
_TYPES = ["Send", "Campaign", "Lead", "SendEvent", "Unit", "cursor", "X", "Ab", "Abc", "Été", "a:b", "", "日本"]
_PKS = _INTS + ["abc", "", "42", "é", "x" * 300, "a\nb", "\x00"] + [
    "".join(chr(_rng.randrange(1, 0x3000)) for _ in range(_rng.randrange(0, 40))) for _ in range(500)]


def test_to_global_id_is_the_general_one():
    for type_name in _TYPES:
        for pk in _PKS:
            fast, general = to_global_id(type_name, pk), to_global_id_general(type_name, pk)
            assert fast == general and type(fast) is type(general) is str, (type_name, pk)
    for pk in _INTS[:200]:
        if 0 < pk <= 2**62:
            assert from_global_id(to_global_id("Send", pk)) == ("Send", pk)


def test_encode_cursor_is_the_general_one():
    for pk in _PKS:
        fast, general = encode_cursor(pk), encode_cursor_general(pk)
        assert fast == general and type(fast) is type(general) is str, pk
    for pk in _INTS[:200]:
        if 0 < pk <= 2**62:
            assert decode_cursor(encode_cursor(pk)) == pk


class _Row:
    def __init__(self, id):
        self.id = id


def _fields(obj) -> list:
    """An Edge's or a PageInfo's GraphQL-visible attributes, in the dataclass's field order, read as
    the executor reads them (getattr)."""
    import dataclasses

    return [(f.name, getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.init]


@pytest.mark.parametrize("pk", [1, 7, 2**40, 123456789])
def test_edges_are_what_the_dataclass_builds(pk):
    """`_edge` builds an Edge whose cursor is encoded when first read: the same cursor and node as
    `edge_general`'s (and `Edge(…)`'s), nothing encoded until then, the value kept once read."""
    node = object()
    fast, general = _edge(_Row(pk), lambda r: node), edge_general(_Row(pk), lambda r: node)
    assert isinstance(fast, Edge) and type(general) is Edge and type(fast).__mro__[1] is Edge
    assert "cursor" not in vars(fast)  # not encoded yet
    assert _fields(fast) == _fields(general) and fast.node is node
    assert vars(fast)["cursor"] == general.cursor and fast.cursor is vars(fast)["cursor"]  # kept
    with pytest.raises(AttributeError):
        fast.no_such_attribute  # noqa: B018


@pytest.mark.parametrize("first,after", [(50, 99), (50, None), (60, None), (70, 3), (1, None), (0, None), (0, 5)])
def test_page_of_builds_the_general_edges(first, after):
    rows = [_Row(i) for i in range(60, 0, -1)]
    page = core.page_of(rows, first, after, lambda r: ("node", r.id), None)
    general = core.page_of_general(rows, first, after, lambda r: ("node", r.id), None)
    assert all("cursor" not in vars(e) for e in page.edges)  # nothing encoded until read
    assert not page.edges or not {"start_cursor", "end_cursor"} & set(vars(page.page_info))
    assert _fields(page.page_info) == _fields(general.page_info)  # start and end read first: not the edges'
    assert [_fields(e) for e in page.edges] == [_fields(e) for e in general.edges]
    assert [_fields(e) for e in page.edges] == [_fields(edge_general(r, lambda r: ("node", r.id))) for r in rows[:first]]
    assert page.page_info.has_next_page == (first < 60) and page.page_info.has_previous_page == (after is not None)
    assert len(page.edges) == min(first, 60)
    if page.edges:
        assert page.page_info.start_cursor is page.edges[0].cursor and page.page_info.end_cursor is page.edges[-1].cursor


class _Probe:
    """A source whose every attribute is its own name (methods see distinct values per attribute)."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return f"value of {name}"


def _outcome(call):
    try:
        return "value", call()
    except Exception as exc:  # noqa: BLE001 - compared
        return "raised", type(exc), str(exc)


def test_plan_getters_are_the_resolvers():
    """graph/core/execution.py `_getter` (a plan's one-argument getter) answers what the direct
    field's resolver answers, for every direct field of the schema; attribute fields become C getters."""
    import operator

    from graphql import GraphQLObjectType

    from graph.core.execution import _getter
    from graph.schema import schema

    kinds = {"attribute": 0, "method": 0, "other": 0}
    for gql_type in schema._schema.type_map.values():
        if not isinstance(gql_type, GraphQLObjectType) or gql_type.name.startswith("__"):
            continue
        for name, field in gql_type.fields.items():
            resolve = field.resolve
            if not getattr(resolve, "pulse_direct", False):
                continue
            getter = _getter(resolve)
            kind = "attribute" if isinstance(getter, operator.attrgetter) else \
                "method" if getter is not None and getattr(getter, "__name__", "") != "<lambda>" else "other"
            kinds[kind] += 1
            probe = _Probe()
            assert _outcome(lambda: getter(probe)) == _outcome(lambda: resolve(probe, None)), (gql_type.name, name)
    assert kinds["attribute"] > 100 and kinds["method"] > 10, kinds


def test_edge_assignment_is_plain():
    """`_edge` assigns with the instance's own `__setattr__`: Edge must stay a plain (not frozen,
    no custom `__setattr__`) dataclass for it to build what `__init__` builds."""
    assert Edge.__setattr__ is object.__setattr__
    assert not Edge.__dataclass_params__.frozen and not hasattr(Edge, "__post_init__")
