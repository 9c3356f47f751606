"""Compiled plans (graph/core/execution.py `_compile`, `_Compiler`): each plan's generated function
answers what `_run` (the interpreter of the same plan, the reference) answers — the same dict, key
order and value types, or both fall back — and the responses equal graphql-core's own completion
byte for byte: through the app over many selection shapes, and on a small schema over crafted
values (out-of-range ints, bools in Int fields, subclasses of str/int/float/datetime/Decimal,
members of another enum, cast objects, nulls in non-null fields, exceptions, non-list lists)."""

from __future__ import annotations

import datetime as dt
import enum
import math
from decimal import Decimal

import orjson
import pytest
import strawberry
from graphql import Undefined

from graph.core import execution
from graph.core.execution import PulseExecutionContext
from tests.campaigns.test_fast_reads import CAMPAIGN, _busy_campaign
from tests.helpers import ingest, make_leads


def _outcome(function, *args):
    try:
        return "ok", function(*args)
    except Exception:  # noqa: BLE001 - either falls back: the general path answers
        return "fallback", None


def _same(a, b) -> bool:
    """Equal, with the same types all the way down and the same key order (`True == 1` is not the
    same answer: the JSON differs)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return a == b


@pytest.fixture
def shadowed(monkeypatch):
    """Every compiled plan also runs `_run` on the same source and records any difference (an
    assertion inside the plan would only make it fall back); `compiled` counts runs per type."""
    monkeypatch.setattr(execution, "_SHARED_PLANS", {})  # fresh plans: compiled here, by the patched _compile
    found = {"differences": [], "runs": {}, "helpers": False}
    original = execution._compile

    def compile_(plan):
        if found["helpers"]:
            run = execution._Compiler(helpers=True).function(plan)
            plan.compiled = run
        else:
            run = original(plan)
        name = _plan_type(plan)

        def shadow(source):
            generated, interpreted = _outcome(run, source), _outcome(execution._run, plan, source)
            if generated[0] != interpreted[0] or not _same(generated[1], interpreted[1]):
                found["differences"].append((name, generated, interpreted, getattr(run, "pulse_source", None)))
            found["runs"][name] = found["runs"].get(name, 0) + 1
            return run(source)

        plan.compiled = shadow
        return shadow

    monkeypatch.setattr(execution, "_compile", compile_)
    return found


def _plan_type(plan) -> str:
    for key, (nodes, found) in execution._SHARED_PLANS.items():
        if found is plan:
            return key[0].name
    return "?"


DOCUMENTS = [
    # the bench's read (b), and the whole send with nullable leaves, enums, datetimes, ints
    "query($id: ID!) { campaign(id: $id) { sends(first: 50) { edges { node { id channel status externalId queuedAt "
    "sentAt } } } } }",
    "query($id: ID!) { campaign(id: $id) { sends(first: 50) { totalCount pageInfo { hasNextPage hasPreviousPage "
    "startCursor endCursor } edges { cursor node { __typename id channel status credits queuedAt sentAt deliveredAt "
    "failedAt failureReason skipReason bouncedAt bounceType readAt clickedAt repliedAt unsubscribedAt externalId "
    "campaignId } } } } }",
    # aliases, the same field twice, fragments (inline and named), __typename at every level
    "fragment S on Send { st: status, ...on Send { ch: channel } } query($id: ID!) { campaign(id: $id) { "
    "a: sends(first: 7) { __typename e: edges { __typename c: cursor n: node { __typename ...S i: id j: id "
    "q: queuedAt } } } b: sends(first: 3) { edges { node { ... on Node { id } } } } } }",
    # campaigns: ints, floats, money (Decimal), booleans, nested objects, lists of objects, nullable objects
    f"{{ campaigns(first: 20) {{ edges {{ cursor node {{ {CAMPAIGN} }} }} }} }}",
    "{ campaigns(first: 20) { edges { node { id channels { channel enabled unitCost { amount currency } "
    "creditsPerMessage provider } goal { type key } metrics { byChannel { channel deliveryRate bounceRate readRate "
    "clickRate failureRate cost { amount } } } } } } }",
    # leads: lists of strings and of enums, nullable strings, booleans
    "{ leads(first: 50) { edges { node { id externalId name email emailVerified phone whatsapp hasPushToken "
    "linkedinUrl twitterUrl tags unsubscribedChannels createdAt } } } }",
    # dates, floats and money in a list under a field with arguments
    "query($id: ID!) { campaign(id: $id) { stats(period: LIFETIME) { dateFrom dateTo totals { sent revenue { amount "
    "currency } } daily { day sent viewed conversionRate controlConversionRate revenue { amount currency } } } } }",
    "{ viewer { __typename id email name role canExport organization { id name currency timezone } } }",
    # a directive: plans of one request, interpreted (not generated)
    "query($id: ID!) { campaign(id: $id) { sends(first: 10) { edges { node { id status @include(if: true) "
    "channel @skip(if: false) sentAt } } } } }",
    # an error inside: the general path reports it
    "query($id: ID!) { campaign(id: $id) { sends(first: 2, after: \"bad\") { edges { node { id } } } } }",
]


@pytest.mark.parametrize("helpers", [False, True], ids=["inline", "helpers"])
async def test_compiled_plans_answer_what_run_and_graphql_core_answer(tenant, general_path, shadowed, helpers):
    gql = tenant.gql
    shadowed["helpers"] = helpers
    busy, busy_leads = await _busy_campaign(gql)
    await _busy_campaign(gql, n_leads=3)
    await make_leads(gql, 6, tags=["vip", "north"], phone="+33600000000")
    await make_leads(gql, 4, email=None, phone="+33600000001")
    r = await ingest(gql, [{"idempotencyKey": f"u-{busy['id']}", "externalId": f"{busy['id']}-x0",
                            "channel": "EMAIL", "type": "UNSUBSCRIBED", "occurredAt": "2026-01-05T11:00:00Z",
                            "campaignId": busy["id"], "leadId": busy_leads[0]["id"]}])
    variables = {"id": busy["id"]}
    # Three times: the first request sees each selection, the second builds the shared plans, the
    # third runs them.
    fast = [[(await gql.raw(d, variables if "$id" in d else None)).content for d in DOCUMENTS] for _ in range(3)]
    assert not shadowed["differences"], shadowed["differences"][:3]
    runs = shadowed["runs"]
    assert {"SendConnection", "SendEdge", "LeadEdge", "Organization"} <= set(runs), runs
    assert sum(runs.values()) > 300, runs
    general_path()
    slow = [(await gql.raw(d, variables if "$id" in d else None)).content for d in DOCUMENTS]
    for i, d in enumerate(DOCUMENTS):
        assert fast[0][i] == fast[1][i] == fast[2][i] == slow[i], d
    joined = b"".join(slow)
    for seen in (b'"tags":["', b'"tags":[]', b'"email":null', b'"sentAt":null', b'"day":"2026-', b'"amount":"0.05"',
                 b'"emailVerified":false', b'Rate":0.5', b'"unsubscribedChannels":["EMAIL"]', b'"skipReason":null',
                 b'"__typename":"SendEdge"', b'"n":{"__typename":"Send"', b'"errors"'):
        assert seen in joined, seen
    assert r["accepted"] == 1, r


# ---------------------------------------------------------------- crafted values on a small schema


@strawberry.enum
class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class OtherColor(enum.Enum):
    RED = "red"


@strawberry.enum
class Tone(str, enum.Enum):  # hashed and compared as its value: a plain "low" finds Tone.LOW in a dict
    LOW = "low"
    HIGH = "high"


class Text(str):
    pass


class Number(int):
    pass


class Real(float):
    pass


class Moment(dt.datetime):
    pass


class Amount(Decimal):
    pass


class LabelledError(Exception):  # an exception value that has an Inner's attributes
    label = "error"
    n = 1


class Weird:
    def __str__(self) -> str:
        return "weird"


@strawberry.interface
class Thing:
    id: strawberry.ID


@strawberry.type
class Inner:
    label: str
    n: int | None = None


@strawberry.type
class Item(Thing):  # an interface: Strawberry's is_type_of (isinstance, casts)
    name: str
    count: int
    flag: bool
    ratio: float
    at: dt.datetime
    day: dt.date
    amount: Decimal
    color: Color
    tone: Tone
    maybe: str | None
    maybe_count: int | None
    maybe_color: Color | None
    tags: list[str]
    maybe_tags: list[str | None] | None
    colors: list[Color]
    inner: Inner
    maybe_inner: Inner | None
    inners: list[Inner]

    @strawberry.field
    def shout(self) -> str:
        return f"{self.name}!"


@strawberry.type
class Other(Thing):
    label: str


@strawberry.type
class Deep:
    v: int
    child: list[Deep]


@strawberry.type
class Box:  # its plan holds Items: nested objects with Strawberry's is_type_of
    item: Item
    maybe_item: Item | None
    items: list[Item]


BOXES: list = []
DEEP: list = []


@strawberry.type
class Query:
    @strawberry.field
    def boxes(self) -> list[Box]:
        return BOXES

    @strawberry.field
    def deep(self) -> list[Deep]:
        return DEEP


def _item(i: int, **values) -> Item:
    item = Item(id=strawberry.ID(f"i{i}"), name=f"n{i}", count=i, flag=i % 2 == 0, ratio=i / 4,
                at=dt.datetime(2026, 1, 5, 10, i % 60, tzinfo=dt.timezone.utc), day=dt.date(2026, 1, 1 + i % 28),
                amount=Decimal(f"{i}.10"), color=(Color.RED, Color.BLUE)[i % 2], tone=Tone.HIGH, maybe=None if i % 3 else "m",
                maybe_count=None, maybe_color=None, tags=["a", f"t{i}"], maybe_tags=None, colors=[Color.BLUE],
                inner=Inner(label=f"l{i}", n=i), maybe_inner=None, inners=[Inner(label="x"), Inner(label="y", n=2)])
    for name, value in values.items():
        object.__setattr__(item, name, value)
    return item


ITEM_FIELDS = ("__typename id name count flag ratio at day amount color tone maybe maybeCount maybeColor tags maybeTags "
               "colors shout inner { __typename label n } maybeInner { label } inners { label n }")
ITEM_QUERY = "{ boxes { item { " + ITEM_FIELDS + " } maybeItem { id } items { " + ITEM_FIELDS + " } } }"
ALIASED_QUERY = ("fragment F on Item { a: count, ...on Thing { id } } { boxes { __typename i: item { z: name ...F "
                 "b: count inner { ... on Inner { label } } } m: maybeItem { ...F } items { ...F } } }")


def _crafted() -> list[tuple[str, object]]:
    """(field, value): each put in one item; the rest of the item is plain."""
    cast_other = strawberry.cast(Other, _item(90))
    cast_item = strawberry.cast(Item, Other(id=strawberry.ID("o"), label="o"))
    values = {
        "name": ["", "é", Text("sub"), 5, True, 1.5, float("inf"), Weird(), None, Undefined, ValueError("x"), b"x"],
        "count": [0, -1, 2**31 - 1, 2**31, -2**31, -2**31 - 1, 2**70, True, False, 3.0, 3.5, "7", "x", Number(4),
                  Number(2**31), Decimal(6), Decimal("6.5"), None, ValueError("x")],
        "flag": [True, False, 1, 0, 2.0, float("nan"), "x", Number(0), Decimal(1), None],
        "ratio": [0.0, -2.5, float("inf"), float("-inf"), float("nan"), 3, 2**60 + 1, 2**1100, True, Real(1.25),
                  Decimal("1.5"), "2.5", "x", None],
        "id": ["x", "", Text("t"), 5, 5.0, 5.5, True, Number(7), None],
        "at": [dt.datetime(2026, 1, 1), dt.datetime(2026, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=5))),
               Moment(2026, 1, 1, 1, 2, 3), dt.date(2026, 2, 3), dt.time(4, 5), "2026-01-01", None],
        "day": [dt.datetime(2026, 1, 1, 1, 2), Moment(2026, 1, 1), dt.date.min, "x", None],
        "amount": [Decimal("0"), Decimal("-1.000"), Decimal("NaN"), Decimal("Infinity"), Amount("2.5"), 5, "x", 1.5,
                   None, ValueError("x")],
        "color": [Color.BLUE, OtherColor.RED, "red", "RED", "BLUE", "x", 1, None],
        "tone": [Tone.LOW, "low", "LOW", "high", Text("low"), Color.RED, None],
        "maybe": [None, Undefined, "s", Text("t"), 3, ValueError("x")],
        "maybe_count": [None, 2**31, True, 1],
        "maybe_color": [None, Color.RED, OtherColor.RED],
        "tags": [[], ("a", "b"), ["a", None], ["a", 5, True], "ab", None, iter(["a"]), [Text("t")], {"a": 1}],
        "maybe_tags": [None, ["a", None], [None], (None, "b"), "x", [Undefined]],
        "colors": [[Color.RED, Color.BLUE], [OtherColor.RED], ["BLUE"], [None], (Color.RED,)],
        "inner": [Inner(label="z"), Inner(label=Text("z"), n=2**31), Inner(label="z", n=True),
                  strawberry.cast(Inner, Other(id=strawberry.ID("c"), label="c")), Other(id=strawberry.ID("o"), label="o"),
                  None, ValueError("x"), LabelledError(), {"label": "dict"}],
        "maybe_inner": [None, Undefined, Inner(label="q"), Inner(label=None), LabelledError()],
        "inners": [[], [None], [Inner(label="a"), Inner(label="b", n=-3)], (Inner(label="t"),), [LabelledError()],
                   None, Inner(label="not a list")],
    }
    crafted = [(field, value) for field, vs in values.items() for value in vs]
    crafted += [("self", cast_other), ("self", cast_item), ("self", Other(id=strawberry.ID("o"), label="o")),
                ("self", ValueError("item")), ("self", None)]
    return crafted


def _schema():
    from graph.schema import PulseSchema

    return PulseSchema(query=Query, types=[Other], limits=((), 100000), execution_context_class=PulseExecutionContext)


def _box(i: int, item=None) -> Box:
    item = _item(i) if item is None else item
    return Box(item=item, maybe_item=item if i % 2 else None, items=[_item(i + 1), item])


def _boxes_for(field: str, value) -> list:
    plain = [_box(i) for i in range(3)]
    return [*plain, _box(5, value if field == "self" else _item(5, **{field: value})), _box(7)]


def _response(result) -> bytes:
    errors = [{"message": e.message, "path": e.path} for e in result.errors or ()]
    return orjson.dumps({"data": result.data, "errors": errors})


async def test_generated_code_answers_what_run_answers_on_crafted_values(monkeypatch, general_path):
    """Unit level: the Box plan's (its Items nested) generated function against `_run` for every crafted value (both
    give the same dict — types, key order — or both fall back); then each request with the crafted
    item through the plans against graphql-core's own completion, byte for byte."""
    monkeypatch.setattr(execution, "_SHARED_PLANS", {})
    schema = _schema()
    for query in (ITEM_QUERY, ALIASED_QUERY):
        BOXES[:] = [_box(i) for i in range(4)]
        for _ in range(2):  # the second item builds the plan (shared: no directives)
            result = await schema.execute(query)
            assert not result.errors, result.errors
    box_plans = [found for key, (_nodes, found) in execution._SHARED_PLANS.items()
                 if isinstance(found, execution._Plan) and key[0].name == "Box"]
    assert len(box_plans) == 2
    compiled = [(plan, execution._Compiler().function(plan), execution._Compiler(helpers=True).function(plan))
                for plan in box_plans]
    source = compiled[0][1].pulse_source
    for shortcut in ("is _str", "is _int and -2147483648 <=", "is _bool", "is _float and _isfinite",
                     ".isoformat()", "is _Decimal", "'__as_strawberry_type__'"):
        assert shortcut in source, (shortcut, source)

    checked = fell_back = 0
    for field, value in _crafted():
        boxes = _boxes_for(field, value)
        for plan, inline, helpers in compiled:
            for item in boxes:
                want = _outcome(execution._run, plan, item)
                for run in (inline, helpers):
                    got = _outcome(run, item)
                    assert got[0] == want[0] and _same(got[1], want[1]), (field, value, got, want)
                checked += 1
                fell_back += want[0] == "fallback"
    assert checked > 1000 and fell_back > 80, (checked, fell_back)

    # The same values through the schema: the plans (compiled) against graphql-core's completion.
    fast = {}
    for n, (field, value) in enumerate(_crafted()):
        for query in (ITEM_QUERY, ALIASED_QUERY):
            BOXES[:] = _boxes_for(field, value)
            fast[n, query] = _response(await schema.execute(query))
    assert all(plan.compiled is not None for plan in box_plans)
    general_path()
    errors = 0
    for n, (field, value) in enumerate(_crafted()):
        for query in (ITEM_QUERY, ALIASED_QUERY):
            BOXES[:] = _boxes_for(field, value)
            slow = _response(await schema.execute(query))
            assert fast[n, query] == slow, (field, value, query)
            errors += b'"message"' in slow
    assert errors > 50, errors


def _deep(level: int) -> Deep:
    return Deep(v=level, child=[_deep(level - 1)] if level else [])


async def test_a_plan_nested_past_the_compilers_limit_still_answers(monkeypatch, general_path):
    """A selection 30 lists deep: Python refuses 20 nested loops in one function, so that plan is
    generated with a function per nested object; the answers are graphql-core's."""
    monkeypatch.setattr(execution, "_SHARED_PLANS", {})
    schema = _schema()
    query = "{ deep { " + "v child { " * 30 + "v" + " }" * 30 + " } }"
    DEEP[:] = [_deep(32), _deep(31), _deep(30)]
    fast = [_response(await schema.execute(query)) for _ in range(3)]
    deep = [found for key, (_nodes, found) in execution._SHARED_PLANS.items()
            if isinstance(found, execution._Plan) and found.compiled is not None]
    assert deep and any("def o" in getattr(p.compiled, "pulse_source", "") for p in deep)
    with pytest.raises(SyntaxError):
        execution._Compiler().function(max(deep, key=lambda p: len(p.compiled.pulse_source)))
    general_path()
    slow = _response(await schema.execute(query))
    assert fast == [slow] * 3 and b'"errors":[]' in slow


def test_the_shortcuts_cover_the_schemas_leaves_and_checks():
    """Every leaf type of Pulse's schema gets its shortcut (a change in the libraries' objects
    — a serializer replaced, `isoformat` no longer the methodcaller — would silently turn them
    off), and every object type with Strawberry's interface `is_type_of` is recognised, its origin
    the type's own class."""
    import operator

    from graphql import GraphQLEnumType, GraphQLObjectType, GraphQLScalarType
    from strawberry.schema.types import base_scalars

    from graph.schema import schema

    assert isinstance(base_scalars.isoformat, operator.methodcaller)
    assert base_scalars.isoformat(dt.date(2026, 1, 2)) == "2026-01-02"
    type_map = schema._schema.type_map
    compiler = execution._Compiler()
    leaves = [t for t in type_map.values() if isinstance(t, (GraphQLScalarType, GraphQLEnumType))
              and not t.name.startswith("__")]
    assert {t.name for t in leaves} >= {"ID", "String", "Int", "Boolean", "Float", "DateTime", "Date", "Decimal"}
    for of in leaves:
        assert compiler.leaf_shortcut("v", of, execution.coercer(of)) is not None, of.name
    checked = [t for t in type_map.values() if isinstance(t, GraphQLObjectType) and t.is_type_of is not None]
    assert len(checked) >= 10
    for of in checked:
        origin = execution._uncast_origin(of)
        assert origin is not None and origin.__name__ == of.name, of.name
        assert of.is_type_of(object.__new__(origin), None) is True
