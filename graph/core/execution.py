"""Execution and delivery of subscription events to many subscribers.

Thousands of subscribers of one topic receive the same event object from their hub
(`subscriptions.hubs`). Two costs were per subscriber and event: graphql-core executing
the selection set (~50 % of the server's time per delivered message), then Strawberry's
per-result pipeline (nested async generators, result conversion, extension hooks,
message dict, JSON) before the websocket write.

1. Shared execution. An event that is a `SharedPayload` is executed once per group of
   subscribers that would get the same answer, and every member of the group gets that
   result:

       same event object × same operation (same parsed document: graph/schema.py `_parsed`)
           × same coerced variables × same access (organization, role, scope, export right)

   Every resolver reachable from a subscription payload depends only on the payload, the
   arguments and these access fields (never on the user's identity), so the shared result
   is exactly what each subscriber's own execution would have produced. Results (and their
   JSON) live on the event object and go away with it.

2. Direct delivery (`DirectDelivery`). An event whose shared result has no errors (the first
   value included) is written to the subscriber's websocket as a ready `next` frame, from the
   subscription's own task: the JSON of the payload is encoded once per group and only the
   operation id differs. Results with errors, and anything outside a graphql-transport-ws
   operation, take Strawberry's path (error formatting, masking, logging). Per-subscriber
   ordering and back-pressure are unchanged: the subscription's task writes its own frames in
   order and a stalled socket only blocks its own task. A KPI hub may write a value itself
   while the subscriber's task is idle, when the socket takes it at once (`send_now`).

Also a work-around for graphql-core 3.3.2: `Executor.build_per_event_executor` makes a
shallow copy of the subscription's executor, so every event shares the memo
`_relevant_sub_fields`, keyed by `id()` of field lists that are new on every event: the
memo never hits and grows by one entry per field list per message for the life of the
subscription. Each per-event executor gets its own memo.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import decimal
import enum
import functools
import keyword
import math
import operator
import weakref
from typing import Any

import orjson
from graphql import (ExecutionResult, FieldNode, GraphQLEnumType, GraphQLList, GraphQLNonNull, GraphQLObjectType,
                     GraphQLScalarType, Undefined, assert_valid_schema, default_field_resolver, default_type_resolver)
from graphql.execution import MiddlewareManager
from graphql.type import scalars as _scalars
from graphql.pyutils import RefMap
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import _OperationStreamClosed

from app import metrics
from app.db import is_unavailable
from graph.core import limits
from graph.core.cache import cache_safe, tracked
from graph.core.prepared import prepared as _prepared
from subscriptions.bus import get_bus
from graph.core.errors import UNAVAILABLE

_EXECUTED = metrics.SHARED_EXECUTIONS.labels("executed")
_REUSED = metrics.SHARED_EXECUTIONS.labels("reused")
_DIRECT = metrics.DIRECT_FRAMES

# The executor most recently built by each task: for a graphql-transport-ws operation (one task
# per operation), the subscription's own executor when its resolver starts. Weakly keyed by the
# task, not a contextvar: tasks started from the resolver (a hub's, a feed's) copy the context
# and would keep the first subscriber's executor, context and socket alive after it left.
_executors: "weakref.WeakKeyDictionary[asyncio.Task, PulseExecutionContext]" = weakref.WeakKeyDictionary()


class SharedPayload:
    """Mixin of subscription event types whose instances are given to many subscribers."""

    def shared_entries(self) -> list["_Entry"]:
        try:
            return self.__dict__["_pulse_shared"]
        except KeyError:
            entries = self.__dict__["_pulse_shared"] = []
            return entries


def access_key(context: Any) -> tuple | None:
    """What a subscriber's answer may depend on besides the event, the document and the variables."""
    p = getattr(context, "principal_", None)
    if p is None:
        return None
    return (p.org_id, p.role.value, p.scope.kind.value, p.scope.id, p.can_export)


class _Entry:
    """One group's result for one event: an ExecutionResult, or a Future of one."""

    __slots__ = ("operation", "variables", "access", "result", "encoded")

    def __init__(self, operation, variables, access, result) -> None:
        self.operation, self.variables, self.access, self.result = operation, variables, access, result
        self.encoded: str | None = None

    def matches(self, operation, variables, access) -> bool:
        return self.operation is operation and self.access == access and self.variables == variables

    def execute_operation(self, serially: bool | None = None):
        """Stands in for a per-event executor (graphql-core calls this)."""
        return _await_shared(self.result) if isinstance(self.result, asyncio.Future) else self.result


class PulseExecutionContext(StrawberryGraphQLCoreExecutionContext):
    # Set by PulseSchema: the query cost limit (graph/core/limits.py); 0 = none.
    max_cost = 0
    _charge_pending = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        try:
            task = asyncio.current_task()
        except RuntimeError:  # built outside an event loop (tests, tooling)
            task = None
        if task is not None:
            _executors[task] = self

    @classmethod
    def build(cls, schema, document, root_value=None, context_value=None, raw_variable_values=None,
              operation_name=None, field_resolver=None, type_resolver=None, subscribe_field_resolver=None,
              max_coercion_errors=50, enable_early_execution=False, middleware=None, is_awaitable=None,
              is_async_iterable=None, hide_suggestions=False, abort_signal=None, hooks=None, **custom_args):
        """graphql-core's `Executor.build` with what depends on the document alone taken from the
        operation's preparation (graph/core/prepared.py: the operation and fragments found once, the
        variables coerced per request by a short path when they are plain scalars, the cost as a
        formula of its variables); anything else — an operation that graphql-core would refuse, a
        variable it must coerce or report — goes graphql-core's way, unchanged.

        Then the cost of the operation, before anything runs: over the limit, the request ends here
        (an error list, as for variable coercion). A query or mutation is charged to the rate
        limit when it starts executing (`execute_operation`), a subscription when its source
        stream starts (PulseSchema)."""
        prepared = _prepared(schema, document, operation_name)
        variable_values = prepared.coerce_variables(raw_variable_values) if prepared is not None else None
        if variable_values is None:
            variable_values = prepared = None
            executor = super().build(
                schema, document, root_value, context_value, raw_variable_values, operation_name, field_resolver,
                type_resolver, subscribe_field_resolver, max_coercion_errors, enable_early_execution, middleware,
                is_awaitable, is_async_iterable, hide_suggestions=hide_suggestions, abort_signal=abort_signal,
                hooks=hooks, **custom_args)
            if isinstance(executor, list):
                return executor
        else:
            # Executor.build after its walk of the document (graphql-core 3.3.2), same order of checks.
            assert_valid_schema(schema)
            middleware_manager = None
            if middleware is not None:
                if isinstance(middleware, (list, tuple)):
                    middleware_manager = MiddlewareManager(*middleware)
                elif isinstance(middleware, MiddlewareManager):
                    middleware_manager = middleware
                else:
                    return super().build(
                        schema, document, root_value, context_value, raw_variable_values, operation_name,
                        field_resolver, type_resolver, subscribe_field_resolver, max_coercion_errors,
                        enable_early_execution, middleware, is_awaitable, is_async_iterable,
                        hide_suggestions=hide_suggestions, abort_signal=abort_signal, hooks=hooks, **custom_args)
            executor = cls(
                schema, prepared.fragment_definitions, prepared.fragments, root_value, context_value,
                prepared.operation, variable_values, field_resolver or default_field_resolver,
                type_resolver or default_type_resolver, subscribe_field_resolver or default_field_resolver,
                enable_early_execution, middleware_manager, is_awaitable, is_async_iterable,
                hide_suggestions=hide_suggestions, abort_signal=abort_signal, hooks=hooks, **custom_args)
        coerced = getattr(executor.variable_values, "coerced", executor.variable_values)
        if prepared is not None:
            cost = prepared.cost_formula.cost(coerced)
        else:
            cost = limits.query_cost(schema, executor.fragments, executor.operation, coerced)
        context = executor.context_value
        if context is not None and hasattr(context, "query_cost"):
            context.query_cost = cost
        if executor.max_cost and cost > executor.max_cost:
            return [limits.too_costly(cost, executor.max_cost, executor.operation)]
        scope = getattr(getattr(context, "request", None), "scope", None)
        probe = scope.get("pulse.cache") if isinstance(scope, dict) else None
        if probe is not None:  # a response-cache candidate (app/main.py): may its answer be stored?
            probe.cost = cost
            if prepared is not None:
                probe.cacheable = prepared.cache_safe(schema)
                probe.fine = probe.cacheable and prepared.tracked()
            else:
                probe.cacheable = cache_safe(schema, executor.fragments, executor.operation)
                probe.fine = probe.cacheable and tracked(executor.operation)
        executor._charge_pending = executor.operation.operation.value != "subscription"
        return executor

    def execute_field(self, parent_type, source, field_details_list, path, position_context):
        """A plain leaf field (graph/schema.py `direct_resolvers`: an attribute or a `self`-only
        method, of a scalar or enum type) is completed here: its value, coerced by its type — what
        graphql-core's execute_field → complete_value → complete_leaf_value does, without building a
        resolve info, a node list and the completion calls for each of them. Anything unusual (no
        such field, arguments, resolve middleware, an exception, null in a non-null field, a value
        the type refuses) goes the general way, which re-runs the getter (it has no side effect) and
        reports the error exactly as before."""
        node = field_details_list[0].node
        field_def = parent_type.fields.get(node.name.value)
        leaf = getattr(field_def.resolve, "pulse_leaf", None) if field_def is not None else None
        if leaf is not None and not node.arguments and not self._resolve_middleware:
            try:
                value = field_def.resolve(source, None)
                if value is None:
                    if not leaf[0]:
                        return None
                elif value is not Undefined and not isinstance(value, Exception):
                    coerced = coercer(leaf[1])(value)
                    if coerced is not Undefined and coerced is not None:
                        return coerced
            except Exception:  # noqa: BLE001 - the general path reports it
                pass
        return super().execute_field(parent_type, source, field_details_list, path, position_context)

    def collect_and_execute_subfields(self, return_type, field_details_list, path, result, position_context):
        """An object whose whole selection is made of direct fields (graph/schema.py
        `direct_resolvers`: attributes and `self`-only methods, no arguments) — leaves, objects and
        lists of them, down to the leaves — is completed by a plan built once per selection and
        request (`_plan`): the values read and coerced in one pass, the dict built in the order
        graphql-core would build it — by the plan's generated code (`_compile`; `_run` interprets
        the same plan and is its reference). Getters have no side effects, so anything the plan does not
        take (a null in a non-null field, a value its type refuses, an exception, a type check
        that fails) falls back to graphql-core's own completion of the whole object, which reads
        the values again and reports the error exactly as before. Queries and mutations only."""
        plan = self._plan(return_type, field_details_list)
        if plan is not None:
            try:
                return (plan.compiled or _compile(plan))(result)
            except Exception:  # noqa: BLE001 - the general path answers (and reports) it
                pass
        return super().collect_and_execute_subfields(return_type, field_details_list, path, result,
                                                     position_context)

    def _plan(self, return_type, field_details_list, now: bool = False) -> list | None:
        """The plan of this selection, built the second time it is completed in this request (a
        list's items: the first item takes the general path) — a single object gains nothing from
        a plan. `now`: build at once (a nested selection of a plan being built).

        Shared across requests when the selection cannot depend on the request (`_shareable`: no
        directive anywhere in the operation or its fragments — so no @include/@skip reading a
        variable, no @defer — no fragment variables, no resolve middleware, a query or mutation):
        then a selection is the same AST nodes of the same cached document (graph/schema.py
        `_parsed`) in every request, its grouped fields and plan are the same, and the plan is
        kept in a bounded process-wide table keyed by (type, the nodes), built the second time the
        selection is met in any request — the send log's connection is then planned as a whole
        (edges, cursors, nodes) from the second request on. A shared plan runs as generated code
        (`_compile`, generated when it first runs); a plan of one request is interpreted (`_run`)."""
        if self._shareable():
            nodes = tuple(d.node for d in field_details_list)
            if all(d.defer_usage is None and d.fragment_variable_values is None for d in field_details_list):
                key = (return_type, *map(id, nodes))  # the entry keeps the nodes: their ids are not reused
                found = _SHARED_PLANS.get(key)
                if found is None:
                    if len(_SHARED_PLANS) >= _SHARED_PLANS_MAX:
                        _SHARED_PLANS.pop(next(iter(_SHARED_PLANS)))
                    if not now:
                        _SHARED_PLANS[key] = (nodes, _SEEN)
                        return None
                if found is None or found[1] is _SEEN:
                    found = _SHARED_PLANS[key] = (nodes, self._build_plan(return_type, field_details_list))
                return found[1]
        plans = self.__dict__.get("_pulse_plans")
        if plans is None:
            plans = self.__dict__["_pulse_plans"] = {}
        key = (return_type, id(field_details_list))  # the list is kept in the entry: its id is not reused
        found = plans.get(key)
        if found is None and not now:
            plans[key] = (field_details_list, _SEEN)
            return None
        if found is None or found[1] is _SEEN:
            plan = self._build_plan(return_type, field_details_list)
            if plan is not None:  # lives for this request: interpreted (generating it costs ~1 ms)
                plan.compiled = functools.partial(_run, plan)
            found = plans[key] = (field_details_list, plan)
        return found[1]

    def _shareable(self) -> bool:
        found = self.__dict__.get("_pulse_shareable")
        if found is None:
            found = self.__dict__["_pulse_shareable"] = (
                not self._resolve_middleware and self.operation.operation.value != "subscription"
                and _request_independent(self.operation, self.fragments))
        return found

    def _build_plan(self, return_type, field_details_list) -> list | None:
        if self._resolve_middleware or self.operation.operation.value == "subscription":
            return None
        grouped, new_defer_usages, _forbidden = self.collect_subfields(return_type, field_details_list)
        if new_defer_usages:
            return None
        steps = _Plan()
        info = steps.info
        for key, details in grouped.items():
            node = details[0].node
            if node.arguments or any(d.defer_usage is not None for d in details):
                return None
            name = node.name.value
            if name == "__typename":
                steps.append((key, _TYPENAME, None, False, return_type.name, None))
                info.append((None, None))
                continue
            field_def = return_type.fields.get(name)
            if field_def is None:
                return None
            resolve = field_def.resolve if getattr(field_def.resolve, "pulse_direct", False) else \
                getattr(field_def.resolve, "pulse_plain", None)
            if resolve is None:
                return None
            attribute = _attribute_name(resolve)
            resolve = _getter(resolve)
            non_null = isinstance(field_def.type, GraphQLNonNull)
            of = field_def.type.of_type if non_null else field_def.type
            info.append((attribute, of))
            if isinstance(of, (GraphQLScalarType, GraphQLEnumType)):
                steps.append((key, _LEAF, resolve, non_null, coercer(of), None))
            elif isinstance(of, GraphQLObjectType):
                sub = self._plan(of, details, now=True)
                if sub is None:
                    return None
                steps.append((key, _OBJECT, resolve, non_null, of, sub))
            elif isinstance(of, GraphQLList):
                item_non_null = isinstance(of.of_type, GraphQLNonNull)
                item = of.of_type.of_type if item_non_null else of.of_type
                if isinstance(item, (GraphQLScalarType, GraphQLEnumType)):
                    sub = None
                elif isinstance(item, GraphQLObjectType):
                    sub = self._plan(item, details, now=True)
                    if sub is None:
                        return None
                else:
                    return None
                steps.append((key, _LIST, resolve, non_null, (item, item_non_null), sub))
            else:  # an interface or a union: graphql-core resolves the runtime type
                return None
        return steps

    @property
    def _resolve_middleware(self) -> bool:
        manager = self.middleware_manager
        return manager is not None and bool(manager._middleware_resolvers)

    def execute_operation(self, serially: bool | None = None):
        if not self._charge_pending:
            return super().execute_operation(serially)
        self._charge_pending = False
        return self._charged(serially)

    async def _charged(self, serially: bool | None):
        refusal = await limits.charge(self.context_value)
        if refusal is not None:
            return ExecutionResult(None, errors=[refusal])
        result = super().execute_operation(serially)
        clean = False
        try:
            result = await result if self.is_awaitable(result) else result
            clean = not getattr(getattr(self, "collected_errors", None), "errors", True)
            return result
        finally:
            # An audited mutation that raised or answered an error moves F all the same: its changes
            # may not all have been announced.
            if self.operation.operation.value == "mutation" and not (clean and _audited(self.operation)):
                await _data_changed(self.context_value)

    def group(self) -> tuple:
        """What a subscriber's group is made of besides the operation: (variables, access)."""
        return getattr(self.variable_values, "coerced", self.variable_values), access_key(self.context_value)

    def shared_entry(self, payload: SharedPayload, group: tuple | None = None) -> _Entry:
        """This subscriber's group result for `payload`, executing it if the group has none yet."""
        variables, access = group or self.group()
        entries = payload.shared_entries()
        for entry in entries:
            if entry.matches(self.operation, variables, access):
                _REUSED.inc()
                return entry
        executor = self._per_event(payload)
        result = executor.execute_operation(False)
        _EXECUTED.inc()
        if self.is_awaitable(result):
            # One execution for the group, awaited by every member: a subscriber that leaves
            # (its task cancelled) must not cancel it for the others.
            result = asyncio.ensure_future(result)
            result.add_done_callback(_retrieve)  # no "never retrieved" warning if every member left
        entry = _Entry(self.operation, variables, access, result)
        entries.append(entry)
        return entry

    def _per_event(self, payload: Any):
        executor = super().build_per_event_executor(payload)
        executor._relevant_sub_fields = {}
        executor._stream_usages = RefMap()
        return executor

    def build_per_event_executor(self, payload: Any):
        if isinstance(payload, SharedPayload):
            return self.shared_entry(payload)  # no copy of the executor per subscriber
        return self._per_event(payload)


_LEAF, _OBJECT, _LIST, _TYPENAME = range(4)
_SEEN = object()  # a selection completed once in this request (no plan yet)


class _Fallback(Exception):
    pass


def _run(steps: list, source: Any) -> dict:
    """One object of a plan (PulseExecutionContext.collect_and_execute_subfields)."""
    out = {}
    for key, kind, resolve, non_null, of, sub in steps:
        if kind == _TYPENAME:
            out[key] = of
            continue
        value = resolve(source)
        if value is None or value is Undefined:
            if non_null:
                raise _Fallback
            out[key] = None
        elif kind == _LEAF:  # `_leaf`, inlined (the send log completes 300 leaves a page)
            if isinstance(value, Exception):
                raise _Fallback
            coerced = of(value)
            if coerced is None or coerced is Undefined:
                raise _Fallback
            out[key] = coerced
        elif kind == _OBJECT:
            out[key] = _object(of, sub, value)
        else:
            if not isinstance(value, (list, tuple)):
                raise _Fallback
            item_type, item_non_null = of
            items = []
            for item in value:
                if item is None or item is Undefined:
                    if item_non_null:
                        raise _Fallback
                    items.append(None)
                else:
                    items.append(_leaf(coercer(item_type), item) if sub is None else _object(item_type, sub, item))
            out[key] = items
    return out


class _Plan(list):
    """A plan: its steps (key, kind, getter, non_null, of, sub), which `_run` interprets, and per
    step (`info`) the attribute its getter reads (graph/schema.py `_attribute`, else None) and its
    field's type without the non-null wrapper; `compiled`: its generated function (`_compile`),
    built the first time it runs."""

    __slots__ = ("info", "compiled")

    def __init__(self) -> None:
        super().__init__()
        self.info: list = []
        self.compiled = None


def _compile(plan: _Plan):
    """The plan's generated function (`_Compiler`), kept on the plan: nested objects inline (measured
    ~5 % faster on the send log than a generated function per nested object). A plan nested deeper
    than Python's compiler takes inline (20 nested loops) gets a function per nested object; one it
    cannot compile at all is interpreted by `_run`."""
    try:
        run = _Compiler().function(plan)
    except Exception:  # noqa: BLE001 - SyntaxError ("too many statically nested blocks"), RecursionError
        try:
            run = _Compiler(helpers=True).function(plan)
        except Exception:  # noqa: BLE001 - MemoryError, RecursionError: interpret it
            run = functools.partial(_run, plan)
    plan.compiled = run
    return run


def _checked(of, value) -> None:
    """`_object`'s checks of a nested object's value: not an exception, its type's `is_type_of`
    (when it has one) answering exactly True."""
    if isinstance(value, Exception):
        raise _Fallback
    check = of.is_type_of
    if check is not None and check(value, None) is not True:
        raise _Fallback


_GRAPHQL_MIN_INT, _GRAPHQL_MAX_INT = -2_147_483_648, 2_147_483_647  # graphql-core's Int range
_TIMES = {"Date": datetime.date, "Time": datetime.time}  # else datetime.datetime (`_Compiler.leaf_shortcut`)


class _Compiler:
    """Generates one function per plan: `run(source) -> dict`, what `_run(plan, source)` returns or
    raises, as straight-line code (the plan's steps unrolled, nested objects inline, a loop per list,
    the dict built as one display in the steps' order). Only the plan's keys (as `repr` literals),
    its `__typename` values (`repr`) and the attribute names of direct fields (ASCII identifiers,
    from the schema's own field definitions) go into the source; getters, coercers, types, classes
    and tables are names bound in the function's globals.

    What each step does is `_run`'s, in the same order: read the value (a direct field's attribute
    as `source.name`, which is what its `operator.attrgetter` does, else the step's getter); null
    or Undefined → null, or fall back in a non-null field; a leaf → its coercer through `_leaf`
    (exception → fall back; a null or Undefined coercion → fall back), except where a shortcut is
    provably the coercion's answer (`leaf_shortcut`); an object → `_checked` then its fields, except
    where Strawberry's `is_type_of` provably answers True (`_uncast_origin`); a list → fall back
    unless a list or a tuple, then its items as `_run` completes them."""

    def __init__(self, helpers: bool = False) -> None:
        self.helpers = helpers  # nested objects as generated functions instead of inline code
        self.env: dict = {"_U": Undefined, "_F": _Fallback, "_leaf": _leaf, "_checked": _checked, "_type": type,
                          "_isinstance": isinstance, "_Exception": Exception, "_list": list, "_sequence": (list, tuple),
                          "_getattr": getattr, "_str": str, "_int": int, "_bool": bool,
                          "_float": float, "_isfinite": math.isfinite, "_Decimal": decimal.Decimal}
        self.bound: dict = {}  # id(value) -> its name in env (the env keeps the value: ids are not reused)
        self.lines: list[str] = []
        self.functions: list[str] = []
        self.count = 0

    def function(self, plan: _Plan):
        self.emit(0, "def run(src):")
        self.emit(1, f"return {self.object(plan, 'src', 1)}")
        source = "\n".join((*self.functions, *self.lines))
        exec(compile(source, "<pulse plan>", "exec"), self.env)  # noqa: S102 - see the class docstring
        run = self.env["run"]
        run.pulse_source = source
        return run

    def bind(self, value, prefix: str) -> str:
        name = self.bound.get(id(value))
        if name is None:
            name = self.bound[id(value)] = f"_{prefix}{len(self.bound)}"
            self.env[name] = value
        return name

    def var(self, prefix: str = "v") -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def emit(self, depth: int, line: str) -> None:
        self.lines.append("    " * depth + line)

    def object(self, plan: _Plan, source: str, depth: int) -> str:
        """Emits the reads and completions of the object `source`'s fields; returns the display
        of its result dict."""
        entries = []
        for (key, kind, getter, non_null, of, sub), (attribute, field_type) in zip(plan, plan.info, strict=True):
            if kind == _TYPENAME:
                entries.append(f"{key!r}: {of!r}")
                continue
            value = self.var()
            if attribute is not None and attribute.isascii() and attribute.isidentifier() \
                    and not keyword.iskeyword(attribute) and not attribute.startswith("__"):
                self.emit(depth, f"{value} = {source}.{attribute}")
            else:
                self.emit(depth, f"{value} = {self.bind(getter, 'g')}({source})")
            null = "raise _F" if non_null else f"{value} = None"
            if kind == _LEAF:
                self.leaf(value, field_type, of, null, depth)
            elif kind == _OBJECT:
                self.emit(depth, f"if {value} is None or {value} is _U:")
                self.emit(depth + 1, null)
                self.emit(depth, "else:")
                self.nested(value, of, sub, depth + 1)
            else:
                self.sequence(value, of, sub, null, depth)
            entries.append(f"{key!r}: {value}")
        return "{" + ", ".join(entries) + "}"

    def leaf(self, value: str, of, coerce, null: str, depth: int) -> None:
        shortcut = self.leaf_shortcut(value, of, coerce)
        if shortcut is None:
            self.emit(depth, f"if {value} is None or {value} is _U:")
        else:
            test, result = shortcut
            self.emit(depth, f"if {test}:")
            self.emit(depth + 1, "pass" if result is None else f"{value} = {result}")
            self.emit(depth, f"elif {value} is None or {value} is _U:")
        self.emit(depth + 1, null)
        self.emit(depth, "else:")
        self.emit(depth + 1, f"{value} = _leaf({self.bind(coerce, 'c')}, {value})")

    def leaf_shortcut(self, value: str, of, coerce) -> tuple[str, str | None] | None:
        """(a test on the value, the coerced value — None: the value itself) where the test proves
        that `coerce(value)` (the step's coercer: `coercer(of)`) answers that, a non-null value;
        None: always the coercer. graphql-core 3.3.2's serializers (graphql/type/scalars.py):
        String and ID return a `str` as it is; Boolean a `bool`; Int an `int` — not a bool, whose
        class is bool — within the 32-bit range as `int(value)`, itself; Float a finite `float` as
        `float(value)`, itself. Strawberry 0.341's Date/DateTime/Time serialize with
        `methodcaller("isoformat")`: `value.isoformat()`, a str for exactly a date, datetime or time;
        its Decimal with `str`: `str(value)`, a str. Strawberry's enums: the first branch of the
        enum's coercer (`_make_coercer`), the same test and table."""
        from strawberry.schema.types import base_scalars

        if isinstance(of, GraphQLEnumType):
            table = getattr(coerce, "pulse_enum", None)
            if table is None or coerce is not coercer(of):
                return None
            wrapped, names = table
            return (f"{value}.__class__ is {self.bind(wrapped, 'k')} and (t := {self.bind(names, 'n')}.get({value})) "
                    f"is not None", "t")
        general = getattr(of, "coerce_output_value", None)
        if not isinstance(of, GraphQLScalarType) or coerce is not general:
            return None
        if general is _scalars.serialize_string or general is _scalars.serialize_id:
            return f"_type({value}) is _str", None
        if general is _scalars.serialize_boolean:
            return f"_type({value}) is _bool", None
        if general is _scalars.serialize_int:
            return f"_type({value}) is _int and {_GRAPHQL_MIN_INT} <= {value} <= {_GRAPHQL_MAX_INT}", None
        if general is _scalars.serialize_float:
            return f"_type({value}) is _float and _isfinite({value})", None
        if general is base_scalars.isoformat:
            return f"_type({value}) is {self.bind(_TIMES.get(of.name, datetime.datetime), 'k')}", \
                f"{value}.isoformat()"
        if general is str:
            return f"_type({value}) is _Decimal", f"_str({value})"
        return None

    def nested(self, value: str, of, sub: _Plan, depth: int) -> None:
        """A non-null value of object type `of`: checked, then replaced by its result dict."""
        if not self.helpers:
            self.check(value, of, depth)
            self.emit(depth, f"{value} = {self.object(sub, value, depth)}")
            return
        name, outer = self.var("o"), self.lines
        self.lines = []
        self.emit(0, f"def {name}(src):")
        self.check("src", of, 1)
        self.emit(1, f"return {self.object(sub, 'src', 1)}")
        self.functions.extend(self.lines)
        self.lines = outer
        self.emit(depth, f"{value} = {name}({value})")

    def check(self, value: str, of, depth: int) -> None:
        origin = _uncast_origin(of)
        if origin is not None:
            self.emit(depth, f"if _type({value}) is not {self.bind(origin, 'k')} "
                             f"or _getattr({value}, {_CAST_ATTRIBUTE!r}, None) is not None:")
            self.emit(depth + 1, f"_checked({self.bind(of, 't')}, {value})")
        elif of.is_type_of is None:  # `_checked` without a type check (a schema's types do not change)
            self.emit(depth, f"if _isinstance({value}, _Exception):")
            self.emit(depth + 1, "raise _F")
        else:
            self.emit(depth, f"_checked({self.bind(of, 't')}, {value})")

    def sequence(self, value: str, of: tuple, sub: _Plan | None, null: str, depth: int) -> None:
        item_type, item_non_null = of
        items, item = self.var("l"), self.var("i")
        self.emit(depth, f"if {value} is None or {value} is _U:")
        self.emit(depth + 1, null)
        self.emit(depth, f"elif _type({value}) is not _list and not _isinstance({value}, _sequence):")
        self.emit(depth + 1, "raise _F")
        self.emit(depth, "else:")
        self.emit(depth + 1, f"{items} = []")
        self.emit(depth + 1, f"for {item} in {value}:")
        null = "raise _F" if item_non_null else f"{item} = None"
        if sub is None:
            self.leaf(item, item_type, coercer(item_type), null, depth + 2)
        else:
            self.emit(depth + 2, f"if {item} is None or {item} is _U:")
            self.emit(depth + 3, null)
            self.emit(depth + 2, "else:")
            self.nested(item, item_type, sub, depth + 3)
        self.emit(depth + 2, f"{items}.append({item})")
        self.emit(depth + 1, f"{value} = {items}")


_CAST_ATTRIBUTE = "__as_strawberry_type__"  # strawberry.types.cast.TYPE_CAST_ATTRIBUTE


def _uncast_origin(of) -> type | None:
    """The class C such that `of.is_type_of(value, info)` is True for every value whose exact type
    is C and which has no cast (`getattr(value, "__as_strawberry_type__", None) is None`), or None.
    That is Strawberry 0.341's `is_type_of` of an object type with interfaces (schema_converter.py
    `GraphQLCoreConverter.from_object._get_is_type_of.is_type_of`, recognised by its module, name
    and free variables): no cast → True when `concrete_of` matches, else `isinstance(value,
    possible_types)`, true for a value of exactly `object_type.origin` when the origin is one of
    `possible_types` (checked here). Any other check — a type's own `is_type_of` — is called."""
    check = of.is_type_of
    if getattr(check, "__module__", None) != "strawberry.schema.schema_converter" or getattr(
            check, "__qualname__", None) != "GraphQLCoreConverter.from_object.<locals>._get_is_type_of.<locals>.is_type_of":
        return None
    cells = dict(zip(check.__code__.co_freevars, (c.cell_contents for c in check.__closure__ or ()), strict=True))
    origin = getattr(cells.get("object_type"), "origin", None)
    possible = cells.get("possible_types")
    if not isinstance(origin, type) or issubclass(origin, BaseException) or not isinstance(possible, tuple) \
            or not any(p is origin for p in possible):
        return None
    return origin


def _getter(resolve):
    """A plan step's getter, taking the source only: `resolve(source, None)` as one call. A direct
    field's resolver (graph/schema.py) is `_attribute(name)` — `getattr(source, name)`, which is
    `operator.attrgetter(name)` for a name without a dot, called in C — or `_method(function)` —
    `function(source)`; anything else (a `plain_when` getter, a resolver of another shape) is called
    as it is. `test_plan_getters_are_the_resolvers` compares them on every direct field."""
    name = _attribute_name(resolve)
    if name is not None:
        return operator.attrgetter(name)
    cells = getattr(resolve, "__closure__", None)
    if getattr(resolve, "__module__", None) == "graph.schema" and cells is not None and len(cells) == 1:
        value = cells[0].cell_contents
        if resolve.__qualname__ == "_method.<locals>.resolve" and resolve.__code__.co_freevars == ("function",) \
                and callable(value):
            return value
    return lambda source: resolve(source, None)


def _attribute_name(resolve) -> str | None:
    """The attribute a direct field's resolver reads (graph/schema.py `_attribute(name)`, a name
    without a dot), else None."""
    cells = getattr(resolve, "__closure__", None)
    if getattr(resolve, "__module__", None) == "graph.schema" and cells is not None and len(cells) == 1 \
            and resolve.__qualname__ == "_attribute.<locals>.resolve" and resolve.__code__.co_freevars == ("name",):
        value = cells[0].cell_contents
        if isinstance(value, str) and "." not in value:
            return value
    return None


def _leaf(coerce, value):
    if isinstance(value, Exception):
        raise _Fallback
    coerced = coerce(value)
    if coerced is None or coerced is Undefined:
        raise _Fallback
    return coerced


_SHARED_PLANS: dict = {}  # (type, *ids of the selection's nodes) -> (the nodes, plan | None | _SEEN)
_SHARED_PLANS_MAX = 4096
_INDEPENDENT: dict = {}  # id(operation) -> (operation, fragments, whether no selection depends on the request)


def _request_independent(operation, fragments) -> bool:
    """Whether the operation and its fragments hold no directive (@include/@skip with a variable,
    @defer, anything else) and no fragment variables: their grouped fields then depend only on the
    document and the types. Cached per operation node (documents are cached, bounded)."""
    found = _INDEPENDENT.get(id(operation))
    if found is not None and found[0] is operation:
        return found[2]
    from graphql.language import BREAK, Visitor, visit

    class Finder(Visitor):
        seen = False

        def enter_directive(self, *_args):
            Finder.seen = True
            return BREAK

    independent = True
    for node in (operation, *(f.definition for f in (fragments or {}).values())):
        Finder.seen = False
        visit(node, Finder())
        if Finder.seen or getattr(node, "variable_definitions", None) and node is not operation:
            independent = False
            break
    if any(f.variable_signatures for f in (fragments or {}).values()):
        independent = False
    if len(_INDEPENDENT) >= 1024:
        _INDEPENDENT.clear()
    _INDEPENDENT[id(operation)] = (operation, fragments, independent)
    return independent


_COERCERS: dict = {}


def coercer(of):
    """The output coercion of a leaf type, as a function: `of.coerce_output_value`, except for
    Strawberry's enum types, whose coercion compares the member's `.value` with every value of the
    type in turn (a property call per comparison): there a dict from member to name, built once
    from that same comparison; anything that is not exactly a member of the enum goes to the type's
    own coercion, which answers or raises as before."""
    found = _COERCERS.get(of)
    if found is None:
        found = _COERCERS[of] = _make_coercer(of)
    return found


def _make_coercer(of):
    from strawberry.schema.schema_converter import CustomGraphQLEnumType

    general = of.coerce_output_value
    wrapped = getattr(of, "wrapped_cls", None)
    if getattr(type(of), "coerce_output_value", None) is not CustomGraphQLEnumType.coerce_output_value \
            or not (isinstance(wrapped, type) and issubclass(wrapped, enum.Enum)):
        return general
    names = {}
    for member in wrapped:
        for name, value in of.values.items():
            if member.value == value.value:  # CustomGraphQLEnumType.coerce_output_value's test
                names[member] = name
                break

    def coerce(value):
        if value.__class__ is wrapped:
            name = names.get(value)
            if name is not None:
                return name
        return general(value)

    coerce.pulse_enum = (wrapped, names)  # for the plans' generated code (`_Compiler.leaf`)
    return coerce


def _object(of, sub: list, value):
    if isinstance(value, Exception):
        raise _Fallback
    check = of.is_type_of
    if check is not None and check(value, None) is not True:
        raise _Fallback
    return _run(sub, value)


# Mutations whose every committed change is announced on the bus, campaign by campaign, before they
# return (subscriptions/bus.py CAMPAIGN_SCOPED): they do not move the organization's version.
AUDITED_MUTATIONS = frozenset(("sendEventsIngest", "__typename"))


def _audited(operation: Any) -> bool:
    """Whether every root field of the mutation is an audited one (no fragment at the root)."""
    return all(isinstance(s, FieldNode) and s.name.value in AUDITED_MUTATIONS
               for s in operation.selection_set.selections)


async def _data_changed(context: Any) -> None:
    """A mutation has run (its transactions are over): move its organization's data version before the
    answer leaves (subscriptions/versions.py; the response cache keys on it)."""
    principal = getattr(context, "principal_", None)
    bus = get_bus()
    if principal is not None and bus is not None:
        await bus.versions.bump(principal.org_id)


async def _await_shared(future: asyncio.Future):
    return await asyncio.shield(future)


def _retrieve(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()



_TEXTS: dict[str, str] = {}
_TEXTS_MAX = 512


def _shared_text(text: str) -> str:
    """One string object per distinct subscription document (bounded: cleared when full)."""
    shared = _TEXTS.get(text)
    if shared is not None:
        return shared
    if len(text) > 20_000:
        return text
    if len(_TEXTS) >= _TEXTS_MAX:
        _TEXTS.clear()
    _TEXTS[text] = text
    return text


class PulseTransportWSHandler(BaseGraphQLTransportWSHandler):
    """Strawberry's graphql-transport-ws handler, reachable from the context (`ws_handler`, for
    DirectDelivery); the view's open sockets (for token revocation) and the connection gauge are
    kept here, without wrapping a frame around the connection's life (memory per idle connection)."""

    def on_request_accepted(self) -> None:
        super().on_request_accepted()
        self.context.ws_handler = self
        self.view.sockets[self.context.request] = None
        metrics.WS_CONNECTIONS.inc()

    async def shutdown(self) -> None:
        try:
            await super().shutdown()
        finally:
            self.view.sockets.pop(self.context.request, None)  # may be gone already (revoked)
            metrics.WS_CONNECTIONS.dec()
            self.context.ws_handler = None  # no cycle: the connection is freed at once

    async def handle_subscribe(self, message) -> None:
        """Strawberry's, keeping less for the subscription's life: the query text is one shared
        string per distinct document (every `campaignKpis` socket sent the same one), and the
        parsed message — which Strawberry's read loop keeps referenced until the socket's next
        message, for an idle socket its whole life — is emptied once its parts are in the
        operation."""
        payload = message.get("payload") if isinstance(message, dict) else None
        if isinstance(payload, dict) and isinstance(payload.get("query"), str):
            payload["query"] = _shared_text(payload["query"])
        await super().handle_subscribe(message)
        message.clear()

    async def handle_connection_init(self, message) -> None:
        try:
            await super().handle_connection_init(message)
        except Exception as exc:
            if not is_unavailable(exc):  # checking the token needed the database: try again later
                raise
            await self.close_unavailable()
            return
        task = self.connection_init_timeout_task
        if task is not None and (task.done() or task.cancelling()):
            self.connection_init_timeout_task = None  # cancelled: nothing to keep for the connection's life


    async def send_message(self, message) -> None:
        """A result whose error is a database outage (SERVICE_UNAVAILABLE: the subscription's first
        read, a hub's round, a query over the socket) closes the socket with 1013 instead: graphql-ws
        clients reconnect (and resubscribe) on it by default."""
        if message.get("type") in ("next", "error") and _unavailable(message):
            await self.close_unavailable()
            raise _OperationStreamClosed()  # the operation ends without `complete`: the socket is closing
        await super().send_message(message)

    async def close_unavailable(self) -> None:
        with contextlib.suppress(Exception):  # the socket may be gone already
            await self.websocket.close(code=UNAVAILABLE_CLOSE, reason=UNAVAILABLE_REASON)


UNAVAILABLE_CLOSE = 1013  # "Try Again Later" (RFC 6455 registry): not fatal for graphql-ws clients
UNAVAILABLE_REASON = "database unavailable: try again later"


def _unavailable(message: dict) -> bool:
    payload = message.get("payload")
    errors = payload.get("errors") if isinstance(payload, dict) else payload if isinstance(payload, list) else None
    return any(isinstance(e, dict) and (e.get("extensions") or {}).get("code") == UNAVAILABLE for e in errors or ())


class DirectDelivery:
    """Writes a subscription's events to its websocket as ready frames (see the module docstring)."""

    __slots__ = ("executor", "operation", "websocket", "prefix", "group", "closed", "sent")

    def __init__(self, executor: PulseExecutionContext, operation: Any, websocket: Any, sent: Any = None) -> None:
        self.executor, self.operation, self.websocket, self.sent = executor, operation, websocket, sent
        self.prefix = '{"id":' + orjson.dumps(operation.id).decode() + ',"type":"next","payload":'
        self.group = executor.group()  # fixed for the subscription's life
        self.closed = False

    @classmethod
    def for_current(cls, info: Any, sent: Any = None) -> "DirectDelivery | None":
        """The direct path of the running subscription, or None (then yield as usual)."""
        task = asyncio.current_task()  # an operation's task runs its resolver
        executor, handler = _executors.get(task), getattr(info.context, "ws_handler", None)
        if executor is None or handler is None or executor.operation is not info.operation:
            return None
        operation = next((op for op in handler.operations.values() if op.task is task), None)
        if operation is None:
            return None
        return cls(executor, operation, info.context.request, sent)

    def send_now(self, payload: Any) -> bool:
        """Write `payload` now if that needs no waiting: a shared result already computed without
        errors, and a socket that takes the frame at once (its ASGI send completes in one step;
        when it would wait for a congested socket, nothing was written yet and it is abandoned).
        False: the subscription's own task must deliver it.

        "Nothing written before the first suspension" holds for uvicorn's websockets-sansio and
        wsproto protocols (they wait for the transport to drain, then write), which `pulse serve`
        uses; uvicorn's legacy `websockets` protocol writes first and then drains, and would send
        such a frame twice. Serve with `PulseWebSocketProtocol` (app/web/wsprotocol.py, a
        websockets-sansio subclass; app/cli.py)."""
        if self.closed or self.operation.completed or not isinstance(payload, SharedPayload):
            return False
        entry = self.executor.shared_entry(payload, self.group)
        if isinstance(entry.result, asyncio.Future):
            return False
        frame = self._frame(entry, entry.result)
        if frame is None:
            return False
        step = self.websocket.send_text(frame)
        try:
            step.send(None)
        except StopIteration:
            _DIRECT.inc()
            if self.sent is not None:
                self.sent.inc()
            return True
        except Exception:  # noqa: BLE001 - the socket is gone: the handler ends the operation
            self.closed = True
            return True
        step.close()  # it waits for the socket to drain before writing anything: not now
        return False

    async def send(self, payload: Any) -> bool:
        """Deliver `payload`; False when it must take Strawberry's path instead."""
        if not isinstance(payload, SharedPayload) or self.operation.completed:
            return False
        entry = self.executor.shared_entry(payload, self.group)
        result = entry.result
        if isinstance(result, asyncio.Future):
            result = await asyncio.shield(result)
        frame = self._frame(entry, result)
        if frame is None:
            return False
        if self.closed:
            return True
        try:
            await self.websocket.send_text(frame)
            _DIRECT.inc()
        except Exception:  # noqa: BLE001 - the socket is gone: the handler ends the operation
            self.closed = True
        return True

    def _frame(self, entry: _Entry, result) -> str | None:
        """The `next` frame of this subscription for a group's result (its JSON encoded once per
        group); None for a result with errors (formatting, masking and logging stay Strawberry's)."""
        if result.errors:
            return None
        if entry.encoded is None:
            entry.encoded = orjson.dumps({"data": result.data}).decode()
        return self.prefix + entry.encoded + "}"
