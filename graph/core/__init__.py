"""Shared GraphQL building blocks: ids, Node, connections, money, user errors, context."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any, Awaitable, Callable, Generic, TypeVar

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from app.tenancy.access import Principal
from app.core.errors import DomainError, ErrorCode as DomainErrorCode
from app.core.money import from_micros

T = TypeVar("T")


def describe_enum(py_enum: type[Enum], description: str, values: dict[str, str], name: str | None = None):
    """Expose a domain enum with a description for the type and every value."""
    missing = {m.name for m in py_enum} - set(values)
    if missing:
        raise RuntimeError(f"{py_enum.__name__}: undescribed values {sorted(missing)}")
    gql = strawberry.enum(py_enum, name=name, description=description)
    for value in gql.__strawberry_definition__.values:
        value.description = values[value.name]
    return gql


ErrorCode = describe_enum(DomainErrorCode, "Why a mutation (or one item of a batch) was refused.", {
    "NOT_FOUND": "The object does not exist or is not visible to you (the two are indistinguishable).",
    "FORBIDDEN": "Your role may not perform this action.",
    "INVALID": "A value is malformed or missing.",
    "TOO_LONG": "A text value exceeds its maximum length.",
    "OUT_OF_RANGE": "A number or date is outside its allowed range.",
    "DUPLICATE": "A unique value is already taken or repeated.",
    "ILLEGAL_TRANSITION": "The campaign's status does not allow this action.",
    "CAMPAIGN_LOCKED": "The setting cannot change in the campaign's current status.",
    "NO_ENABLED_CHANNEL": "The campaign has no enabled channel.",
    "EMPTY_AUDIENCE": "The campaign's audience resolves to nobody.",
    "SCOPE_OUTSIDE": "The unit lies outside your scope.",
    "ALREADY_REVERSED": "The spend entry was already reversed.",
    "REVERSAL_MISMATCH": "A reversing entry must negate exactly one non-reversal entry.",
    "IDEMPOTENCY_CONFLICT": "The idempotency key was already used with a different payload.",
    "MISSING_SEND_CONTEXT": "The first event of an unknown send must name its campaign and lead.",
    "CHANNEL_NOT_ON_CAMPAIGN": "The channel is not configured on the campaign.",
    "CAMPAIGN_NOT_LAUNCHED": "The campaign is still a draft.",
    "SEND_MISMATCH": "The event contradicts the send it refers to.",
    "BATCH_TOO_LARGE": "Too many items in one call.",
    "TOKEN_REVOKED": "The token was revoked.",
    "CONTROL_RECIPIENT": "The lead is in the campaign's control group, which is never messaged.",
    "WEAK_PASSWORD": "The export password does not meet the password rules.",
    "ALREADY_DOWNLOADED": "A one-time (SCHEDULED) campaign's export was already downloaded once.",
    "MEMBER_EXISTS": "A member with this email exists with another role, scope or export permission "
                     "(change it with memberUpdate; a token never changes a member).",
    "LAST_OWNER": "The organization must keep at least one organization-wide owner.",
    "NOT_RECIPIENT": "The lead is not a recipient of the campaign.",
    "INVALID_RANGE": "A range ends before it starts (every range argument: stats from/to, creditConsumption "
                     "dateFrom/dateTo, campaign startAt/endAt). Queries report it as a top-level error with "
                     "extensions.code BAD_USER_INPUT and extensions.reason INVALID_RANGE.",
})


def range_error(exc: DomainError):
    """A DomainError raised by a query's argument check, as the top-level error every query uses."""
    from graphql import GraphQLError

    return GraphQLError(exc.message, extensions={"code": "BAD_USER_INPUT", "reason": exc.code.value,
                                                 "field": exc.field})


@strawberry.type(description="An expected failure of a mutation: show `message` to the user, branch on `code`.")
class UserError:
    field: list[str] | None = strawberry.field(description="Path of the input field at fault, when one is.")
    message: str = strawberry.field(description="Human-readable explanation.")
    code: ErrorCode = strawberry.field(description="Machine-readable reason.")

    @staticmethod
    def of(exc: DomainError) -> "UserError":
        return UserError(field=camel_path(exc.field), message=exc.message, code=exc.code)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def camel_path(field: list[str] | None) -> list[str] | None:
    """A user error's field path as the client wrote it: GraphQL (camelCase) names, one segment
    per step (`channels.0.unitCost` → ["channels", "0", "unitCost"])."""
    if field is None:
        return None
    return [_camel(part) for segment in field for part in str(segment).split(".")]


@strawberry.type(description="An amount of money in the organization's currency.")
class Money:
    amount: Decimal = strawberry.field(description="The amount, as a decimal string (never a float).")
    currency: str = strawberry.field(description="ISO 4217 currency code.")

    @staticmethod
    def of(micros: int | None, currency: str) -> "Money":
        return Money(amount=from_micros(micros), currency=currency)


# ---------------------------------------------------------------- global ids


_b2a = binascii.b2a_base64


def to_global_id(type_name: str, pk: int | str) -> strawberry.ID:
    # `base64.b64encode(text.encode()).decode()` (what `to_global_id_general` does) is
    # `b2a_base64(…, newline=False)` under a Python wrapper; `strawberry.ID` is a NewType, whose call
    # returns its argument: the same string, without two Python calls (100 per send-log page).
    return _b2a(f"{type_name}:{pk}".encode(), newline=False).decode()


def to_global_id_general(type_name: str, pk: int | str) -> strawberry.ID:
    """The reference `to_global_id` is tested against."""
    return strawberry.ID(base64.b64encode(f"{type_name}:{pk}".encode()).decode())


def from_global_id(gid: str | None) -> tuple[str, int] | None:
    """(type name, int id), or None when the id is not one of ours."""
    if not gid or len(gid) > 200:
        return None
    try:
        raw = base64.b64decode(gid.encode(), validate=True).decode()
        type_name, _, pk = raw.partition(":")
        value = int(pk)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if not type_name or value <= 0 or value > 2**62:
        return None
    return type_name, value


def decode_id(gid: str | None, *types: str) -> int | None:
    parsed = from_global_id(gid)
    if parsed is None or parsed[0] not in types:
        return None
    return parsed[1]


def require_id(gid: str | None, what: str, field: str | list[str], *types: str) -> int:
    """Decode an id argument; a malformed or wrong-type id is simply 'not found'."""
    value = decode_id(gid, *types)
    if value is None:
        raise DomainError(DomainErrorCode.NOT_FOUND, f"{what} not found", field)
    return value


@strawberry.interface(description="An object with a globally unique id (Relay).")
class Node:
    id: strawberry.ID = strawberry.field(description="Globally unique, opaque id.")


# ---------------------------------------------------------------- connections


@strawberry.type(description="Pagination state of a connection (Relay).")
class PageInfo:
    has_next_page: bool = strawberry.field(description="More items follow the last edge.")
    has_previous_page: bool = strawberry.field(description="Items precede the first edge.")
    start_cursor: str | None = strawberry.field(description="Cursor of the first edge.")
    end_cursor: str | None = strawberry.field(description="Cursor of the last edge; pass it as `after`.")


@strawberry.type(description="An item of a connection with its cursor.")
class Edge(Generic[T]):
    cursor: str = strawberry.field(description="Opaque cursor of this item.")
    node: T = strawberry.field(description="The item.")


@strawberry.type(description="A page of a list that can grow (Relay connection).")
class Connection(Generic[T]):
    edges: list[Edge[T]] = strawberry.field(description="The items of this page.")
    page_info: PageInfo = strawberry.field(description="Where this page lies in the whole list.")
    _count: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(description="Number of items in the whole list (all pages).")
    async def total_count(self) -> int:
        return await self._count()

    @property
    def nodes(self) -> list:
        return [e.node for e in self.edges]


def encode_cursor(pk: int) -> str:
    return _b2a(f"cursor:{pk}".encode(), newline=False).decode()  # as `to_global_id`


def encode_cursor_general(pk: int) -> str:
    """The reference `encode_cursor` is tested against."""
    return base64.b64encode(f"cursor:{pk}".encode()).decode()


def decode_cursor(cursor: str | None) -> int | None:
    if cursor is None or cursor == "":  # an empty cursor means "from the start"
        return None
    parsed = from_global_id(cursor)
    if parsed is None or parsed[0] != "cursor":
        raise GraphQLError("invalid cursor", extensions={"code": "BAD_USER_INPUT"})
    return parsed[1]


def check_first(first: int | None, *, max_first: int = 500, default_first: int = 50) -> int:
    first = default_first if first is None else first
    if first < 0 or first > max_first:
        raise GraphQLError(f"`first` must be between 0 and {max_first}", extensions={"code": "BAD_USER_INPUT"})
    return first


_new = object.__new__


class _LazyEdge(Edge):
    """An Edge whose cursor is encoded when it is first read (`cursor` then sits in the instance as
    any Edge's): a selection without `cursor` costs no encoding per item. The value is the one
    `Edge(cursor=encode_cursor(pk), …)` holds (`edge_general`; tests/graph_core/test_fast_ids.py)."""

    def __getattr__(self, name):  # only for attributes the instance does not hold
        if name == "cursor":
            cursor = self.cursor = encode_cursor(self.__dict__["pk_"])
            return cursor
        raise AttributeError(name)


class _LazyPageInfo(PageInfo):
    """A PageInfo whose start and end cursors are their edges' cursors, read when first read (the
    values `PageInfo(start_cursor=edges[0].cursor, …)` holds: page_of_general)."""

    def __getattr__(self, name):  # only for attributes the instance does not hold
        if name == "start_cursor" or name == "end_cursor":
            edges = self.__dict__["edges_"]
            cursor = (edges[0] if name == "start_cursor" else edges[-1]).cursor
            setattr(self, name, cursor)
            return cursor
        raise AttributeError(name)


def _edge(row, convert: Callable[[Any], Any]) -> "Edge":
    # What `Edge(cursor=…, node=…)` builds (`edge_general`; `test_edges_are_what_the_dataclass_builds`
    # compares), without the keyword call, and with the cursor encoded only if it is read (_LazyEdge).
    edge = _new(_LazyEdge)
    edge.pk_ = row.id  # Edge is not frozen: its __setattr__ is object's
    edge.node = convert(row)
    return edge


def edge_general(row, convert: Callable[[Any], Any]) -> "Edge":
    """The reference `_edge` is tested against."""
    return Edge(cursor=encode_cursor(row.id), node=convert(row))


def page_of(rows: list, first: int, after_id: int | None, convert: Callable[[Any], Any],
            count: Callable[[], Awaitable[int]]) -> Connection:
    """A connection from up to first + 1 rows, newest first (the extra row says a next page exists).
    Cursors (of the edges, and pageInfo's start and end) are encoded only when read: what a
    selection without them does not read costs nothing (`page_of_general` builds them all; the
    answers are the same, tests/graph_core/test_fast_ids.py and tests/campaigns/test_partial_sends.py)."""
    has_next = len(rows) > first
    edges = []
    add = edges.append
    for row in rows[:first]:  # `_edge`, inlined (a send log builds 50 a page)
        edge = _new(_LazyEdge)
        edge.pk_ = row.id
        edge.node = convert(row)
        add(edge)
    page_info = _new(_LazyPageInfo)  # the fields in PageInfo's order, as its __init__ assigns them
    page_info.has_next_page = has_next
    page_info.has_previous_page = after_id is not None
    if edges:
        page_info.edges_ = edges
    else:
        page_info.start_cursor = page_info.end_cursor = None
    return Connection(edges=edges, page_info=page_info, _count=count)


def page_of_general(rows: list, first: int, after_id: int | None, convert: Callable[[Any], Any],
                    count: Callable[[], Awaitable[int]]) -> Connection:
    """The reference `page_of` is tested against: every cursor encoded, the dataclasses' own __init__."""
    has_next = len(rows) > first
    edges = [edge_general(r, convert) for r in rows[:first]]
    return Connection(
        edges=edges,
        page_info=PageInfo(has_next_page=has_next, has_previous_page=after_id is not None,
                           start_cursor=edges[0].cursor if edges else None,
                           end_cursor=edges[-1].cursor if edges else None),
        _count=count,
    )


async def paginate(qs, first: int | None, after: str | None, convert: Callable[[Any], Any], *,
                   max_first: int = 500, default_first: int = 50) -> Connection:
    """Keyset pagination, newest (highest id) first."""
    first = check_first(first, max_first=max_first, default_first=default_first)
    after_id = decode_cursor(after)
    page_qs = qs.filter(id__lt=after_id) if after_id is not None else qs
    rows = await page_qs.order_by("-id").limit(first + 1) if first else []
    return page_of(rows, first, after_id, convert, qs.count)


# ---------------------------------------------------------------- context


@dataclass
class Context:
    request: Any
    principal_: Principal | None
    loaders: dict = field(default_factory=dict)
    response: Any = None
    settings: Any = None
    connection_params: dict | None = None
    ws_handler: Any = None  # the graphql-transport-ws handler of a websocket (graph/core/execution.py)
    limiter: Any = None  # the rate limiter (graph/core/limits.py)
    query_cost: int | None = None  # the running operation's cost, set before it executes
    rate_limit: Any = None  # what charging it left (limits.RateState)

    @property
    def principal(self) -> Principal:
        if self.principal_ is None:
            raise GraphQLError("authentication required: send `Authorization: Bearer <token>`",
                               extensions={"code": "UNAUTHENTICATED"})
        return self.principal_

    def loader(self, name: str, factory: Callable):
        """One DataLoader per request and name."""
        if name not in self.loaders:
            self.loaders[name] = factory()
        return self.loaders[name]


def ctx(info: Info) -> Context:
    return info.context


def plain_when(getter: Callable[[Any], Any]):
    """Mark a resolver method whose value `getter(source)` can give without `info` when it is at
    hand (raising LookupError when it is not): the executor's plans (graph/core/execution.py) then
    call the getter instead of the resolver — the resolver stays the field's answer otherwise."""
    def mark(method):
        method.pulse_plain = lambda source, _info: getter(source)
        return method
    return mark


def selects(info: Info, *path: str) -> bool:
    """Whether the operation selects the field path `path` (schema names, e.g. "edges", "node",
    "metrics") under the current field, through fragments too (@skip/@include are not evaluated:
    a skipped field counts as selected, which only costs a prefetch)."""
    from graphql import FieldNode, FragmentSpreadNode

    raw = info._raw_info  # graphql-core's resolve info (Strawberry's selected_fields fails on fragments)
    fragments = raw.fragments
    level = [n.selection_set for n in raw.field_nodes if n.selection_set is not None]
    for name in path:
        children, matched, stack = [], False, list(level)
        while stack:
            for selection in stack.pop().selections:
                if isinstance(selection, FieldNode):
                    if selection.name.value == name:
                        matched = True
                        if selection.selection_set is not None:
                            children.append(selection.selection_set)
                elif isinstance(selection, FragmentSpreadNode):
                    fragment = fragments.get(selection.name.value)
                    definition = getattr(fragment, "definition", fragment)  # graphql-core 3.3: FragmentDetails
                    if definition is not None:
                        stack.append(definition.selection_set)
                else:  # an inline fragment: its selections are at this level
                    stack.append(selection.selection_set)
        if not matched:
            return False
        level = children
    return True


# ---------------------------------------------------------------- described arguments

First = Annotated[int | None, strawberry.argument(description="Page size: 0 to 500 items (default 50).")]
After = Annotated[str | None, strawberry.argument(description="Return the items after this cursor (pageInfo.endCursor).")]
ObjectId = Annotated[strawberry.ID, strawberry.argument(description="Global id of the object.")]
ScopeArg = Annotated[strawberry.ID | None, strawberry.argument(
    description="An organization, zone or center id inside your scope; default: your scope unit.")]


# ---------------------------------------------------------------- upward references
# The Campaign object is the API's aggregate: it sits above the domain packages that serve its
# fields (graph.campaigns imports graph.billing, graph.analytics …). A lower package that returns a
# Campaign (a budget alert's campaign, a spend payload) names the type lazily and builds it through
# this registry, which the type fills when its module is imported (the schema imports them all).

_NODE_BUILDERS: dict[str, Callable[[Any], Any]] = {}

CampaignRef = Annotated["Campaign", strawberry.lazy("graph.campaigns.types")]


def node_type(type_name: str):
    """Class decorator: register `cls.of(model)` as the builder of `type_name`."""
    def register(cls):
        _NODE_BUILDERS[type_name] = cls.of
        return cls
    return register


def node_of(type_name: str, model: Any) -> Any:
    """The GraphQL object of `type_name` for a model (the type's own `of`)."""
    return _NODE_BUILDERS[type_name](model)


MAX_FILTER_TEXT = 500


def filter_text(value: str | None, field: list[str]) -> str | None:
    """A filter's free text, refused over MAX_FILTER_TEXT characters (TOO_LONG, with its path)."""
    if value is not None and len(value) > MAX_FILTER_TEXT:
        raise GraphQLError(f"{'.'.join(field)}: at most {MAX_FILTER_TEXT} characters",
                           extensions={"code": "TOO_LONG", "field": field})
    return value
