"""Limits a client can plan for: a query cost computed before execution, and a rate limit in cost points.

Cost (GitHub's "node count"), computed from the document and the variables once the operation is
validated, before anything runs (see docs/api.md, "Query cost and rate limit"):

    cost(operation) = max(1, Σ over every connection field c in the operation of nodes(c))
    nodes(c)        = first(c) × Π first(p) for every connection p enclosing c

A connection field is a field with a `first` (or `last`) argument; its size is the argument's value
(literal or variable), else the field's default, else 50. Fragments count where they are spread;
`@skip`/`@include` are ignored (a field is counted as if selected). Every other field costs 0.
An operation over `PULSE_MAX_QUERY_COST` is refused with QUERY_TOO_COSTLY and never executed.

Rate limit: each token (each client address for unauthenticated requests) may spend
`PULSE_RATE_LIMIT_POINTS` cost points per window of `PULSE_RATE_LIMIT_WINDOW_S` seconds (fixed
windows aligned on the epoch). Counted in Redis when `PULSE_BROADCAST_URL` is redis://… (shared by
every instance), in memory otherwise. A query or mutation is charged its cost before it executes;
a subscription is charged once when it starts (its events are free). Over the limit: RATE_LIMITED,
not executed, nothing charged.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    IntValueNode,
    VariableNode,
    get_named_type,
)
from starlette.datastructures import MutableHeaders

log = logging.getLogger("pulse.limits")

QUERY_TOO_COSTLY = "QUERY_TOO_COSTLY"
RATE_LIMITED = "RATE_LIMITED"
DEFAULT_PAGE = 50
SIZE_ARGUMENTS = ("first", "last")


def _size(field_def: Any, node: FieldNode, variables: dict) -> int | None:
    """The page size a connection field asks for, or None when the field is not a connection."""
    size = _symbolic_size(field_def, node)
    return _variable_size(variables.get(size)) if isinstance(size, str) else size


def _variable_size(value: Any) -> int:
    """A page size given by a variable: its value, else DEFAULT_PAGE (never the field's default)."""
    return max(0, int(value)) if isinstance(value, int) else DEFAULT_PAGE


def query_cost(schema: Any, fragments: dict, operation: Any, variables: dict | None) -> int:
    """The cost of an operation (the formula in the module docstring)."""
    variables = variables or {}
    root = schema.get_root_type(operation.operation)
    total = 0
    # Iterative walk: (selection set, parent type, multiplier, fragments being expanded).
    stack = [(operation.selection_set, root, 1, frozenset())]
    while stack:
        selection_set, parent, multiplier, seen = stack.pop()
        if selection_set is None or parent is None:
            continue
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                fields = getattr(parent, "fields", None) or {}
                field_def = fields.get(selection.name.value)
                if field_def is None:  # __typename, or introspection (__schema, __type): free
                    continue
                size = _size(field_def, selection, variables)
                inner = multiplier
                if size is not None:
                    inner = multiplier * size
                    total += inner
                stack.append((selection.selection_set, get_named_type(field_def.type), inner, seen))
            elif isinstance(selection, InlineFragmentNode):
                cond = selection.type_condition
                target = schema.get_type(cond.name.value) if cond else parent
                stack.append((selection.selection_set, target, multiplier, seen))
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = fragments.get(name)
                # graphql-core 3.3's executor keeps FragmentDetails (the definition inside).
                fragment = getattr(fragment, "definition", fragment)
                if fragment is None or name in seen:
                    continue
                # graphql-core 3.3 keeps FragmentDetails (the definition and its variables' signatures).
                fragment = getattr(fragment, "definition", fragment)
                stack.append((fragment.selection_set, schema.get_type(fragment.type_condition.name.value),
                              multiplier, seen | {name}))
    return max(1, total)


class CostFormula:
    """`query_cost` of one operation as a formula, computed once per operation (graph/core/prepared.py):
    the same walk, with each page size kept as a number or as the name of the variable it comes from
    (a variable is read as `_size` reads it: an integer is its size, floored at 0; null, absent or
    anything else is DEFAULT_PAGE — a variable never falls back to the field's default). The cost is
    then max(1, Σ count × Π sizes of the variables), the integers multiplied in beforehand: the same
    integer as `query_cost` for any variables (tests/graph_core/test_prepared_operations.py)."""

    __slots__ = ("constant", "terms")

    def __init__(self, schema: Any, fragments: dict, operation: Any) -> None:
        terms: dict[tuple[str, ...], int] = {}
        root = schema.get_root_type(operation.operation)
        # (selection set, parent type, integer multiplier, variable factors, fragments being expanded)
        stack = [(operation.selection_set, root, 1, (), frozenset())]
        while stack:
            selection_set, parent, multiplier, names, seen = stack.pop()
            if selection_set is None or parent is None:
                continue
            for selection in selection_set.selections:
                if isinstance(selection, FieldNode):
                    fields = getattr(parent, "fields", None) or {}
                    field_def = fields.get(selection.name.value)
                    if field_def is None:
                        continue
                    size = _symbolic_size(field_def, selection)
                    inner, inner_names = multiplier, names
                    if size is not None:
                        if isinstance(size, str):
                            inner_names = tuple(sorted((*names, size)))
                        else:
                            inner = multiplier * size
                        terms[inner_names] = terms.get(inner_names, 0) + inner
                    stack.append((selection.selection_set, get_named_type(field_def.type), inner, inner_names, seen))
                elif isinstance(selection, InlineFragmentNode):
                    cond = selection.type_condition
                    target = schema.get_type(cond.name.value) if cond else parent
                    stack.append((selection.selection_set, target, multiplier, names, seen))
                elif isinstance(selection, FragmentSpreadNode):
                    name = selection.name.value
                    fragment = fragments.get(name)
                    fragment = getattr(fragment, "definition", fragment)
                    if fragment is None or name in seen:
                        continue
                    stack.append((fragment.selection_set, schema.get_type(fragment.type_condition.name.value),
                                  multiplier, names, seen | {name}))
        self.constant = terms.pop((), 0)
        self.terms = tuple((names, count) for names, count in terms.items() if count)

    def cost(self, variables: dict | None) -> int:
        total = self.constant
        if self.terms:
            variables = variables or {}
            for names, count in self.terms:
                for name in names:
                    count *= _variable_size(variables.get(name))
                total += count
        return max(1, total)


def _symbolic_size(field_def: Any, node: FieldNode) -> int | str | None:
    """`_size` without the variables: an integer, the name of the variable the size comes from, or
    None when the field is not a connection."""
    for name in SIZE_ARGUMENTS:
        arg_def = field_def.args.get(name)
        if arg_def is None:
            continue
        value = None
        for arg in node.arguments or ():
            if arg.name.value == name:
                if isinstance(arg.value, IntValueNode):
                    value = int(arg.value.value)
                elif isinstance(arg.value, VariableNode):
                    return arg.value.name.value
                break
        else:
            default = arg_def.default_value
            value = default if isinstance(default, int) else None
        if value is None:
            value = DEFAULT_PAGE
        return max(0, int(value)) if isinstance(value, int) else DEFAULT_PAGE
    return None


def too_costly(cost: int, limit: int, node: Any = None) -> GraphQLError:
    return GraphQLError(
        f"query cost {cost} exceeds the limit of {limit} (cost = nodes requested through `first`/`last`, "
        f"multiplied down nested connections; ask for smaller pages)", node,
        extensions={"code": QUERY_TOO_COSTLY, "cost": cost, "maxCost": limit})


# ---------------------------------------------------------------- rate limit


@dataclass
class RateState:
    """What a charge left: GitHub's rateLimit fields (reset as epoch seconds)."""

    limit: int
    cost: int
    used: int
    reset: int
    allowed: bool = True

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    def retry_after(self) -> int:
        return max(1, math.ceil(self.reset - time.time()))

    def headers(self) -> dict[str, str]:
        h = {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": str(self.remaining),
             "X-RateLimit-Reset": str(self.reset), "X-RateLimit-Used": str(self.used),
             "X-RateLimit-Resource": "graphql"}
        if not self.allowed:
            h["Retry-After"] = str(self.retry_after())
        return h

    def error(self) -> GraphQLError:
        return GraphQLError(
            f"rate limit exceeded: this query costs {self.cost} points and {self.remaining} of {self.limit} remain "
            f"until the window resets; retry after {self.retry_after()} s",
            extensions={"code": RATE_LIMITED, "cost": self.cost, "limit": self.limit, "remaining": self.remaining,
                        "resetAt": self.reset, "retryAfter": self.retry_after()})


# KEYS[1] = the window's counter; ARGV = cost, limit, expiry (ms). Atomic: check, then charge.
_CHARGE = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local cost = tonumber(ARGV[1])
if used + cost > tonumber(ARGV[2]) then return {0, used} end
used = redis.call('INCRBY', KEYS[1], cost)
if used == cost then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return {1, used}
"""


# The same charge, and the organization's data version read in the same round trip (response cache hits):
# KEYS[1] = the window's counter, KEYS[2] = the data version; ARGV as _CHARGE. Returns {allowed, used, version}.
_CHARGE_AND_VERSION = """
local versions = redis.call('MGET', unpack(KEYS, 2))
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local cost = tonumber(ARGV[1])
local allowed = 0
if used + cost <= tonumber(ARGV[2]) then
  allowed = 1
  used = redis.call('INCRBY', KEYS[1], cost)
  if used == cost then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
end
local out = {allowed, used}
for i, v in ipairs(versions) do out[i + 2] = tonumber(v or '0') or 0 end
return out
"""


class RateLimiter:
    """Cost points per token and window: Redis (shared by instances) or in memory."""

    def __init__(self, points: int, window_s: int, redis_url: str | None = None, prefix: str = "") -> None:
        self.points, self.window_s = points, window_s
        self.redis_url, self.prefix = redis_url, prefix
        self._redis: Any = None
        self._script: Any = None
        self._both: Any = None
        self._local: dict[tuple[str, int], int] = {}

    @property
    def enabled(self) -> bool:
        return self.points > 0

    def _client(self):
        if self._redis is None and self.redis_url:
            import redis.asyncio as aioredis

            self._redis = aioredis.from_url(self.redis_url, socket_connect_timeout=2, socket_timeout=2)
            self._script = self._redis.register_script(_CHARGE)
        return self._redis

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = self._script = self._both = None

    async def charge_and_read(self, who: str, cost: int, version_keys: tuple[str, ...]) -> tuple[RateState, list[int]] | None:
        """`charge`, plus the integers at `version_keys` (data versions in the same Redis), in one round
        trip; None without Redis or when Redis fails (then the caller does both separately)."""
        if self._client() is None:
            return None
        now = time.time()
        window = int(now // self.window_s)
        reset = (window + 1) * self.window_s
        if self._both is None:
            self._both = self._redis.register_script(_CHARGE_AND_VERSION)
        try:
            allowed, used, *versions = await self._both(
                keys=[f"{self.prefix}pulse:ratelimit:{who}:{window}", *version_keys],
                args=[cost, self.points, (self.window_s + 5) * 1000])
        except Exception:  # noqa: BLE001 - the separate path logs and decides
            return None
        return RateState(self.points, cost, int(used), reset, bool(allowed)), [int(v) for v in versions]

    async def charge(self, who: str, cost: int, now: float | None = None) -> RateState:
        now = time.time() if now is None else now
        window = int(now // self.window_s)
        reset = (window + 1) * self.window_s
        if self._client() is not None:
            key = f"{self.prefix}pulse:ratelimit:{who}:{window}"
            try:
                allowed, used = await self._script(keys=[key], args=[cost, self.points, (self.window_s + 5) * 1000])
                return RateState(self.points, cost, int(used), reset, bool(allowed))
            except Exception:  # noqa: BLE001 - Redis down: serve (the cost limit still holds), say so
                log.warning("rate limit check failed; request let through", exc_info=True)
                return RateState(self.points, cost, 0, reset)
        first = next(iter(self._local), None)  # (the dict's first key: not a copy of every key)
        if len(self._local) > 100_000 or (first is not None and first[1] != window):
            self._local = {k: v for k, v in self._local.items() if k[1] == window}
        used = self._local.get((who, window), 0)
        if used + cost > self.points:
            return RateState(self.points, cost, used, reset, False)
        self._local[(who, window)] = used = used + cost
        return RateState(self.points, cost, used, reset)


def who(context: Any) -> str:
    """The rate-limited party: the token, else the user (session), else the client address."""
    principal = getattr(context, "principal_", None)
    if principal is not None:
        if principal.token_id:
            return f"token:{principal.token_id}"
        return f"user:{principal.user_id}"
    request = getattr(context, "request", None)
    client = getattr(request, "client", None)
    return f"ip:{client.host if client else 'unknown'}"


async def charge(context: Any) -> GraphQLError | None:
    """Charge the operation's cost (set by the executor) to its party; the refusal, if any.
    The state goes on the context (`rate_limit`, for the rateLimit field and the headers)."""
    limiter: RateLimiter | None = getattr(context, "limiter", None)
    cost = getattr(context, "query_cost", None)
    if limiter is None or not limiter.enabled or cost is None:
        return None
    request = getattr(context, "request", None)
    # Already charged with the data version read (a response-cache miss, app/main.py): not twice.
    state = getattr(request, "scope", {}).get("pulse.rate_state")
    if state is None or state.cost != cost or not state.allowed:
        state = await limiter.charge(who(context), cost)
    context.rate_limit = state
    response = getattr(context, "response", None)
    if getattr(request, "scope", {}).get("type") == "http" and response is not None:
        _set_headers(response.headers, state.headers())
        if not state.allowed:
            response.status_code = 429
    return None if state.allowed else state.error()


_RATE_HEADERS = frozenset(name.lower().encode("latin-1") for name in (
    "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-RateLimit-Used", "X-RateLimit-Resource",
    "Retry-After"))


def _set_headers(headers: Any, values: dict[str, str]) -> None:
    """`headers[name] = value` for each (Starlette's MutableHeaders: each assignment scans the list
    for the name, removes duplicates, appends); on a list that holds none of these names yet, the
    same entries appended at once, in the same order and encoding."""
    raw = headers.raw if type(headers) is MutableHeaders else None
    if raw is None or not _RATE_HEADERS.isdisjoint([key for key, _ in raw]):
        for name, value in values.items():
            headers[name] = value
        return
    raw.extend([(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in values.items()])


# ---------------------------------------------------------------- the rateLimit field

import datetime as _dt  # noqa: E402

import strawberry  # noqa: E402
from strawberry.types import Info  # noqa: E402

COST_FORMULA = ("Cost of an operation, computed before it runs: the number of nodes it can return, "
                "max(1, Σ over every connection field (a field with `first`/`last`) of its page size × the page "
                "sizes of every connection enclosing it); an absent `first` counts as the field's default (50). "
                "Other fields cost 0.")


@strawberry.type(description="Your rate limit, GitHub-style: cost points per token and window. " + COST_FORMULA +
                 " Also sent on every HTTP response as X-RateLimit-Limit, -Remaining, -Reset, -Used, -Resource.")
class RateLimit:
    limit: int = strawberry.field(description="Points you may spend per window (PULSE_RATE_LIMIT_POINTS).")
    cost: int = strawberry.field(description="Points this operation cost (asking for rateLimit adds nothing).")
    used: int = strawberry.field(description="Points spent in the current window, this operation included.")
    remaining: int = strawberry.field(description="Points left in the current window.")
    reset_at: _dt.datetime = strawberry.field(description="When the window ends and `remaining` is back to `limit`.")
    max_cost: int = strawberry.field(description="The most one operation may cost (PULSE_MAX_QUERY_COST); "
                                                 "costlier operations are refused with QUERY_TOO_COSTLY.")


def rate_limit_field(info: Info) -> RateLimit | None:
    context = info.context
    state: RateState | None = getattr(context, "rate_limit", None)
    limiter = getattr(context, "limiter", None)
    max_cost = getattr(getattr(context, "settings", None), "max_query_cost", 0)
    if state is None:
        if limiter is None or not limiter.enabled:
            return None
        now = time.time()
        state = RateState(limiter.points, getattr(context, "query_cost", None) or 1, 0,
                          int((now // limiter.window_s + 1) * limiter.window_s))
    return RateLimit(limit=state.limit, cost=state.cost, used=state.used, remaining=state.remaining,
                     reset_at=_dt.datetime.fromtimestamp(state.reset, _dt.timezone.utc), max_cost=max_cost)


rate_limit = strawberry.field(rate_limit_field, description="Your rate limit and this operation's cost (GitHub's "
                              "`rateLimit`); null when rate limiting is off. " + COST_FORMULA)
