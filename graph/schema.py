"""The schema: the root types, listing every domain's fields, and the limits every operation runs under."""

import contextvars
import functools
import inspect
import logging

import strawberry
from graphql import GraphQLError, specified_rules
from graphql.language.parser import parse
from strawberry.extensions import MaskErrors, MaxAliasesLimiter, QueryDepthLimiter
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.name_converter import NameConverter
from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import execute as graphql_execute
from graphql.execution import MiddlewareManager
from graphql.execution import ExperimentalIncrementalExecutionResults
from graphql.execution.execute import UNEXPECTED_MULTIPLE_PAYLOADS
from strawberry.exceptions import MissingQueryError
from strawberry.execution import optimized_is_awaitable
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.schema.schema import DEFAULT_ALLOWED_OPERATION_TYPES, _coerce_error, validate_document
from strawberry.types.execution import PreExecutionError
from strawberry.utils.operation import get_operation_type

from graph.core.errors import INTERNAL, UNAVAILABLE, is_client_error, should_mask, with_code

from graph import node as node
from graph.analytics import mutations as analytics_mutations
from graph.audience import mutations as audience_mutations
from graph.audience import queries as audience_queries
from graph.billing import mutations as billing_mutations
from graph.billing import queries as billing_queries
from graph.billing import subscriptions as billing_subscriptions
from graph.campaigns import mutations as campaigns_mutations
from graph.campaigns import queries as campaigns_queries
from graph.core import limits
from graph.core.execution import PulseExecutionContext
from graph.core.nul import wrap_schema as wrap_nul_check
from graph.delivery import mutations as delivery_mutations
from graph.delivery import subscriptions as delivery_subscriptions
from graph.exports import mutations as exports_mutations
from graph.exports import queries as exports_queries
from graph.exports import subscriptions as exports_subscriptions
from graph.node import NODE_TYPES
from graph.outreach import mutations as outreach_mutations
from graph.outreach import queries as outreach_queries
from graph.outreach import subscriptions as outreach_subscriptions
from graph.reporting import queries as reporting_queries
from graph.reporting import subscriptions as reporting_subscriptions
from graph.tenancy import mutations as tenancy_mutations
from graph.tenancy import queries as tenancy_queries

log = logging.getLogger("pulse.graphql")

log = logging.getLogger("pulse.graphql")

# The root types list every field explicitly, domain by domain: the schema's shape is read here,
# each field's resolver lives with its domain (graph/<domain>/{queries,mutations,subscriptions}.py).


QUERY_DESCRIPTION = ("Reads. Every read is scoped to the caller. " + limits.COST_FORMULA +
                     " An operation may cost at most {max_cost} (PULSE_MAX_QUERY_COST): costlier ones are refused "
                     "before they run with `extensions.code` QUERY_TOO_COSTLY. Each token may spend {points} points "
                     "per {window} s (PULSE_RATE_LIMIT_POINTS, PULSE_RATE_LIMIT_WINDOW_S); over it: RATE_LIMITED, "
                     "HTTP 429 with Retry-After. See `rateLimit`.")


@strawberry.type(description=QUERY_DESCRIPTION.format(max_cost=20000, points=100000, window=60))
class Query:
    rate_limit = limits.rate_limit
    node = node.node
    viewer = tenancy_queries.viewer
    dashboard = reporting_queries.dashboard
    campaigns = campaigns_queries.campaigns
    campaign = campaigns_queries.campaign
    leads = audience_queries.leads
    budget_alerts = billing_queries.budget_alerts
    tokens = tenancy_queries.tokens
    users = tenancy_queries.users
    credit_wallets = billing_queries.credit_wallets
    credit_consumption = billing_queries.credit_consumption
    leads_kpis = outreach_queries.leads_kpis
    outreach_steps = outreach_queries.outreach_steps
    campaign_outreach_kpis = outreach_queries.campaign_outreach_kpis
    action_required = outreach_queries.action_required
    recipient_steps = outreach_queries.recipient_steps
    exports = exports_queries.exports


@strawberry.type(description="Writes. Expected failures come back as `userErrors` with a code.")
class Mutation:
    campaign_create = campaigns_mutations.campaign_create
    campaign_update = campaigns_mutations.campaign_update
    campaign_launch = campaigns_mutations.campaign_launch
    campaign_pause = campaigns_mutations.campaign_pause
    campaign_resume = campaigns_mutations.campaign_resume
    campaign_complete = campaigns_mutations.campaign_complete
    campaign_cancel = campaigns_mutations.campaign_cancel
    campaign_clone = campaigns_mutations.campaign_clone
    audience_set = campaigns_mutations.audience_set
    leads_upsert = audience_mutations.leads_upsert
    spend_log = billing_mutations.spend_log
    send_events_ingest = delivery_mutations.send_events_ingest
    token_create = tenancy_mutations.token_create
    token_revoke = tenancy_mutations.token_revoke
    member_update = tenancy_mutations.member_update
    organization_create = tenancy_mutations.organization_create
    zone_create = tenancy_mutations.zone_create
    center_create = tenancy_mutations.center_create
    credits_top_up = billing_mutations.credits_top_up
    goal_events_ingest = analytics_mutations.goal_events_ingest
    steps_set = outreach_mutations.steps_set
    step_mark_done = outreach_mutations.step_mark_done
    step_undo = outreach_mutations.step_undo
    outreach_events_ingest = outreach_mutations.outreach_events_ingest
    export_create = exports_mutations.export_create
    export_cancel = exports_mutations.export_cancel


@strawberry.type(description="Live updates over a websocket (graphql-transport-ws).")
class Subscription:
    dashboard_kpis = reporting_subscriptions.dashboard_kpis
    campaign_kpis = reporting_subscriptions.campaign_kpis
    budget_alerts = billing_subscriptions.budget_alerts
    send_status_changed = delivery_subscriptions.send_status_changed
    leads_kpis = outreach_subscriptions.leads_kpis
    export_progress = exports_subscriptions.export_progress


class PulseMaskErrors(MaskErrors):
    """Strawberry's masking, keeping a code on the masked error."""

    def anonymise_error(self, error):
        from app.db import is_unavailable

        if is_unavailable(error.original_error):  # not a fault to hide: the client retries (HTTP 503)
            return GraphQLError("the database is unavailable; retry later", nodes=error.nodes, path=error.path,
                                original_error=error.original_error, extensions={"code": "SERVICE_UNAVAILABLE"})
        masked = super().anonymise_error(error)
        masked.extensions = {"code": INTERNAL}
        return masked

    def _process_result(self, result: object) -> None:
        """MaskErrors' own, without its `isinstance` against a runtime-checkable Protocol (a
        `hasattr` through typing's machinery, on every operation): the same test, `errors` present
        and not empty."""
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = self._process_errors(errors)


_EXECUTING = contextvars.ContextVar("pulse_executing", default=False)


class _Nothing:
    """A hook context with no extension behind it (sync and async)."""

    def __enter__(self):
        return None

    def __exit__(self, *_exc):
        return False

    async def __aenter__(self):
        return None

    async def __aexit__(self, *_exc):
        return False


_NOTHING = _Nothing()


class _OperationHook:
    """The masking extension's `on_operation` run as Strawberry's hook context runs it (a
    `contextlib.contextmanager` around the generator): up to its `yield` on entry, the rest on a
    normal exit; on an exception the generator is closed and the exception goes on (its code after
    `yield` never runs, as when contextmanager throws the exception into it)."""

    __slots__ = ("steps",)

    def __init__(self, extension) -> None:
        self.steps = extension.on_operation()

    async def __aenter__(self):
        next(self.steps)

    async def __aexit__(self, exc_type, exc, tb):
        if exc_type is None:
            for _ in self.steps:
                raise RuntimeError("on_operation yielded twice")
        else:
            self.steps.close()
        return False


class _MaskOnlyRunner:
    """Strawberry's extension runner for a query or mutation (`execute`) whose only extension is the
    error masking (production): the masking's one hook (`on_operation`) run directly, the other
    hook points empty — what SchemaExtensionsRunner does for this one extension, without building
    four hook contexts and an exit stack per operation. Subscriptions keep Strawberry's runner."""

    __slots__ = ("extension",)

    def __init__(self, extension) -> None:
        self.extension = extension

    def operation(self):
        return _OperationHook(self.extension)

    def parsing(self):
        return _NOTHING

    validation = executing = parsing

    def get_extensions_results_sync(self) -> dict:
        return dict(self.extension.get_results())

    async def get_extensions_results(self, ctx) -> dict:
        data = dict(self.extension.get_results())
        data.update(ctx.extensions_results)
        return data


class _NoExtensionsRunner(_MaskOnlyRunner):
    """The runner of a query or mutation without any extension (development: no masking): every
    hook point empty, the results empty — what SchemaExtensionsRunner does with no extension."""

    __slots__ = ()

    def __init__(self) -> None:
        self.extension = None

    def operation(self):
        return _NOTHING

    def get_extensions_results_sync(self) -> dict:
        return {}

    async def get_extensions_results(self, ctx) -> dict:
        return dict(ctx.extensions_results)


# Runners under which no extension hook runs in parsing and validation (PulseSchema._prepare_operation_async).
_NO_HOOKS = (_MaskOnlyRunner, _NoExtensionsRunner)


class PulseSchema(strawberry.Schema):
    """The limits (depth, aliases, tokens) set on each operation's execution context directly.

    As extensions they cost, per operation, hook context managers and a new tuple of ~30 rules;
    a subscription keeps its execution context for its whole life, so that was memory per
    connection. Every operation gets the same tuple of rules (ValidationCache keys on it)."""

    def __init__(self, *args, limits: tuple[tuple, int], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.limit_rules, self.max_tokens = limits
        self.direct_fields = direct_resolvers(self._schema)
        self.converted_fields = converted_resolvers(self)
        # A subscription is charged to the rate limit when its source stream starts (its events are free).
        subscription = self._schema.subscription_type
        for field in (subscription.fields.values() if subscription is not None else ()):
            if field.subscribe is not None:
                field.subscribe = _charged_subscribe(field.subscribe)
        wrap_nul_check(self._schema)  # outermost: text with a NUL byte is refused first (graph/core/nul.py)
        self.direct_execution = direct_execution(self)

    def process_errors(self, errors, execution_context=None) -> None:
        """Every error gets `extensions.code`; a client's mistake is logged only by the request's one
        access line (pulse.access, with the error code), a server fault as an error with its
        traceback (graph/core/errors.py decides which is which)."""
        with_code(errors)
        for error in errors:
            if error.extensions.get("code") == UNAVAILABLE:  # an outage, not a bug: one line, no traceback
                log.warning("database unavailable (path %s): %s", ".".join(map(str, error.path or ())) or "-",
                            type(error.original_error).__name__, extra={"error_code": UNAVAILABLE})
            elif not is_client_error(error):  # a client's mistake is in its access line, with the code
                fault = error.original_error
                log.error("server error: %s (path %s)", error.message,
                          ".".join(map(str, error.path)) if error.path else "-",
                          exc_info=(type(fault), fault, fault.__traceback__) if fault else None,
                          extra={"error_code": error.extensions["code"]})

    async def execute(self, query, variable_values=None, context_value=None, root_value=None, operation_name=None,
                      allowed_operation_types=None, operation_extensions=None):
        token = _EXECUTING.set(True)  # a query or mutation over HTTP (create_extensions_runner)
        try:
            if self.direct_execution:
                extensions = self.get_extensions()
                if not extensions or (len(extensions) == 1 and type(extensions[0]) is PulseMaskErrors):
                    return await self._execute_directly(extensions, query, variable_values, context_value, root_value,
                                                        operation_name, allowed_operation_types, operation_extensions)
            return await super().execute(query, variable_values, context_value, root_value, operation_name,
                                         allowed_operation_types, operation_extensions)
        finally:
            _EXECUTING.reset(token)

    async def _execute_directly(self, extensions, query, variable_values, context_value, root_value, operation_name,
                                allowed_operation_types, operation_extensions):
        """Strawberry's `Schema.execute` → `_execute_operation` → graphql-core's `execute` →
        `experimental_execute_incrementally` as one function (strawberry-graphql 0.341.2, graphql-core
        3.3.2; tests/graph_core/test_library_contracts.py fails when their code changes), for an
        operation whose only extension is the masking, or none (`create_extensions_runner` then gives
        a runner whose parsing, validation and executing hooks are empty): the same steps in the same
        order, the same results and errors, without four coroutine layers, the hook contexts of
        those empty hooks, a middleware manager per request (none of these extensions has a
        `resolve`: an empty manager, which holds no state, is shared) and the execute function's
        per-request checks of the schema's directives (done once: `direct_execution`)."""
        if allowed_operation_types is None:
            allowed_operation_types = DEFAULT_ALLOWED_OPERATION_TYPES
        execution_context = self._create_execution_context(
            query=query, allowed_operation_types=allowed_operation_types, variable_values=variable_values,
            context_value=context_value, root_value=root_value, operation_name=operation_name,
            operation_extensions=operation_extensions)
        for extension in extensions:
            extension.execution_context = execution_context
        extensions_runner = self.create_extensions_runner(execution_context, extensions)
        if extensions_runner.__class__ not in _NO_HOOKS:  # (create_extensions_runner was overridden)
            return await super().execute(query, variable_values, context_value, root_value, operation_name,
                                         allowed_operation_types, operation_extensions)
        try:
            async with extensions_runner.operation():
                if errors := await self._prepare_operation_async(execution_context, extensions_runner):
                    return await self._handle_execution_result(execution_context, errors, extensions_runner)
                # Schema._execute_operation (its `executing` hook is empty here)
                if not execution_context.result:
                    executor = self.execution_context_class.build(
                        self._schema, execution_context.graphql_document, execution_context.root_value,
                        execution_context.context, execution_context.variables, execution_context.operation_name,
                        None, None, None, 50, False, _NO_MIDDLEWARE, optimized_is_awaitable, None,
                        hide_suggestions=False, abort_signal=None, hooks=None,
                        operation_extensions=operation_extensions)
                    if isinstance(executor, list):
                        result = GraphQLExecutionResult(None, errors=executor)
                    else:  # graphql-core's execute: a result, a refusal of several payloads, or awaited
                        result = executor.execute_operation()
                        if not isinstance(result, GraphQLExecutionResult):
                            if isinstance(result, ExperimentalIncrementalExecutionResults):
                                raise GraphQLError(UNEXPECTED_MULTIPLE_PAYLOADS)
                            result = await result
                            if not isinstance(result, GraphQLExecutionResult):
                                raise GraphQLError(UNEXPECTED_MULTIPLE_PAYLOADS)
                    execution_context.result = result
                else:
                    result = execution_context.result
                if isinstance(result, GraphQLExecutionResult) and result.errors:
                    execution_context.pre_execution_errors = result.errors
                    self._process_errors(result.errors, execution_context)
        except (MissingQueryError, CannotGetOperationTypeError, InvalidOperationTypeError):
            raise
        except Exception as exc:  # noqa: BLE001 - as Strawberry: an error answer
            return await self._handle_execution_result(
                execution_context, PreExecutionError(data=None, errors=[_coerce_error(exc)]), extensions_runner)
        return await self._handle_execution_result(execution_context, result, extensions_runner,
                                                   skip_process_errors=True)

    def create_extensions_runner(self, execution_context, extensions):
        if not extensions and _EXECUTING.get():
            return _NoExtensionsRunner()
        if len(extensions) == 1 and type(extensions[0]) is PulseMaskErrors and _EXECUTING.get() \
                and type(extensions[0]).on_operation is MaskErrors.on_operation \
                and type(extensions[0]).get_results is MaskErrors.get_results:
            return _MaskOnlyRunner(extensions[0])
        return super().create_extensions_runner(execution_context, extensions)

    def _create_execution_context(self, *args, **kwargs):
        context = super()._create_execution_context(*args, **kwargs)
        context.validation_rules = self.limit_rules
        context.parse_options["max_tokens"] = self.max_tokens
        return context

    async def _prepare_operation_async(self, context, extensions_runner):
        """Parsing and validation through process-wide caches (what Strawberry's ParserCache and
        ValidationCache extensions did, without an extension instance and its hooks per request):
        the document of a known text is the same parsed object (execution plans key on it), its
        validation errors the same list. A text that does not parse is left to Strawberry's own
        parsing step, which reports the error exactly as before (failures are not cached); the
        validation errors are set where ValidationCache set them, so Strawberry's validation step
        returns them (after its operation-type check, as before).

        When no extension hook can run (the masking-only runner, or no extension at all), the rest of
        Strawberry's step is done here with the operation type of the document looked up once per
        (document, operation name): the same checks in the same order — missing query, operation
        type (an unknown one takes Strawberry's path, which raises as before), allowed types, the
        validation errors."""
        document = context.graphql_document
        if document is None and context.query:
            try:
                document = context.graphql_document = _parsed(context.query, tuple(sorted(context.parse_options.items())))
            except Exception:  # noqa: BLE001 - parsed again below, and reported there
                pass
        if document is not None and context.pre_execution_errors is None and context.validation_rules:
            context.pre_execution_errors = _validated(self._schema, document, context.validation_rules)
        if document is not None and extensions_runner.__class__ in _NO_HOOKS:
            operation_type = _operation_type(document, context.operation_name)
            if operation_type is not None:
                if operation_type not in context.allowed_operations:
                    raise InvalidOperationTypeError(operation_type)
                if context.pre_execution_errors:
                    return PreExecutionError(data=None, errors=context.pre_execution_errors)
                return None
        return await super()._prepare_operation_async(context, extensions_runner)


def direct_execution(schema) -> bool:
    """Whether `PulseSchema.execute` may run operations through `_execute_directly`: Strawberry adds no
    directives extension, executes with graphql-core's `execute` (not incrementally) and graphql-core's
    `execute` would not refuse the schema (no @defer/@stream directive)."""
    return (not schema.directives and schema._get_execute_function() is graphql_execute
            and schema.execution_context_class is not None
            and not (schema._schema.get_directive("defer") or schema._schema.get_directive("stream")))


_NO_MIDDLEWARE = MiddlewareManager()  # no middleware: get_field_resolver answers the resolver itself, keeps nothing


class ArgumentNames(NameConverter):
    """Strawberry's name converter, remembering each argument's GraphQL name: Strawberry asks for it
    every time it converts a field's arguments (per field and object: `sends(first: 50)` asks for
    `filter`, `first` and `after` on every call, each a camel-case conversion). The arguments are the
    schema's own objects (alive as long as it is); the name is what the converter answered the first
    time (the same function of the same object)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._arguments: dict[int, tuple] = {}

    def from_argument(self, argument) -> str:
        found = self._arguments.get(id(argument))
        if found is not None and found[0] is argument:
            return found[1]
        name = super().from_argument(argument)
        self._arguments[id(argument)] = (argument, name)
        return name


# Clients (dashboards, thousands of mobile subscribers) send the same few documents: both caches are
# shared by every request of the process, bounded (a public endpoint cannot grow them without limit).
@functools.lru_cache(maxsize=512)
def _parsed(query: str, options: tuple):
    return parse(query, **dict(options))


_VALIDATED: dict[tuple[int, int, int], tuple] = {}
_OPERATION_TYPES: dict[tuple[int, str | None], tuple] = {}
_CACHED_MAX = 512


def _validated(gql_schema, document, rules) -> list:
    """`validate_document` once per (schema, document, rules), by identity: the document is the
    parsed object `_parsed` shares, the rules the schema's one tuple (hashing a document walks all
    its nodes). The entry keeps the three objects, so their ids are not reused while it lives."""
    key = (id(gql_schema), id(document), id(rules))
    found = _VALIDATED.get(key)
    if found is not None and found[0] is gql_schema and found[1] is document and found[2] is rules:
        return found[3]
    errors = validate_document(gql_schema, document, rules)
    if len(_VALIDATED) >= _CACHED_MAX:
        _VALIDATED.clear()
    _VALIDATED[key] = (gql_schema, document, rules, errors)
    return errors


def _operation_type(document, operation_name):
    """Strawberry's `get_operation_type(document, operation_name)` once per document and name; None
    when it raises (the caller then takes Strawberry's own path, which raises it again)."""
    key = (id(document), operation_name)
    found = _OPERATION_TYPES.get(key)
    if found is not None and found[0] is document:
        return found[1]
    try:
        operation_type = get_operation_type(document, operation_name)
    except RuntimeError:
        return None
    if len(_OPERATION_TYPES) >= _CACHED_MAX:
        _OPERATION_TYPES.clear()
    _OPERATION_TYPES[key] = (document, operation_type)
    return operation_type


def direct_resolvers(gql_schema) -> int:
    """Plain fields resolved without Strawberry's per-field wrapper (issue 15 item 2).

    For every output field of a query or mutation type, Strawberry installs a resolver that, per
    field and per object, builds an `Info`, converts the (absent) arguments and calls the Python
    method; for a field without a resolver it calls `getattr` through two functions. For the two
    kinds below that wrapper does nothing but call: it is replaced by a direct call of the same
    Python code, so the values (and the errors a method raises) are exactly the same:

    * a field without a resolver (`name: str = strawberry.field(...)`) → `getattr(source, name)`;
    * a synchronous method that takes only `self` (`def name(self) -> str: return self.m.name`) →
      `method(source)`.

    Anything else keeps Strawberry's resolver: async methods, methods taking `info`, `root` or
    arguments, fields with field extensions or permission classes, and subscription fields (their
    source stream is not a plain value). The schema (SDL) does not change. Returns how many fields
    were switched."""
    from graphql import GraphQLEnumType, GraphQLNonNull, GraphQLObjectType, GraphQLScalarType

    switched = 0
    subscription = gql_schema.subscription_type
    for gql_type in gql_schema.type_map.values():
        if not isinstance(gql_type, GraphQLObjectType) or gql_type is subscription or gql_type.name.startswith("__"):
            continue
        for gql_field in gql_type.fields.values():
            field = (gql_field.extensions or {}).get("strawberry-definition")
            if field is None or field.extensions or getattr(field, "permission_classes", None):
                continue
            resolver = field.base_resolver
            if resolver is None:
                if field.default_resolver is not getattr:
                    continue
                gql_field.resolve = _attribute(field.python_name)
            elif (not resolver.is_async and not resolver.arguments and resolver.self_parameter is not None
                  and resolver.info_parameter is None and resolver.root_parameter is None
                  and resolver.parent_parameter is None and callable(resolver.wrapped_func)):
                gql_field.resolve = _method(resolver.wrapped_func)
            else:
                # A resolver that can answer without `info` when its value is at hand says so
                # (graph.core.plain_when): a plan may call that instead (graph/core/execution.py).
                plain = getattr(getattr(resolver, "wrapped_func", None), "pulse_plain", None)
                if plain is not None and not field.extensions:
                    gql_field.resolve.pulse_plain = plain
                continue
            gql_field.resolve.pulse_direct = True  # PulseExecutionContext may plan it (graph/core/execution.py)
            # A leaf (scalar or enum, possibly non-null): the executor may complete it without its
            # general machinery (PulseExecutionContext.execute_field).
            of = gql_field.type.of_type if isinstance(gql_field.type, GraphQLNonNull) else gql_field.type
            if isinstance(of, (GraphQLScalarType, GraphQLEnumType)):
                gql_field.resolve.pulse_leaf = (isinstance(gql_field.type, GraphQLNonNull), of)
            switched += 1
    return switched


def converted_resolvers(schema) -> int:
    """Fields with a Python resolver called without Strawberry's per-call argument machinery (issue 15
    item 2, fourth pass).

    For a field with a resolver, Strawberry's wrapper builds an `Info`, then `get_arguments` →
    `convert_arguments`: per argument, its GraphQL name (a name-converter call), its type (a
    property resolving the annotation), `convert_argument` (a chain of isinstance tests); then the
    `self`/`root`/`parent`/`info` parameters; then the field-extension chain (`reduce` over none)
    and, for an async resolver, a coroutine awaiting the resolver's. Here the names, types and
    parameters are looked up once per field, and an argument whose conversion is the identity (a
    scalar or an optional scalar, not a GlobalID or a Maybe: `convert_argument` returns such a value
    as it is) is passed as it is; any other argument still goes through `convert_argument`, with
    the same path and info. The same Info class is built with the same raw info and field; the
    resolver gets the same positional and keyword arguments.

    Only fields without field extensions, permission classes or exception handlers, outside the
    subscription type, whose resolver is Strawberry's (not a direct field). An async resolver's
    coroutine is returned as it is when every argument is passed as it is (nothing can raise before
    the resolver runs, so errors are raised where they were: when graphql-core awaits it);
    otherwise the wrapper stays a coroutine, as Strawberry's, so a conversion error is raised at
    the same moment as before. Returns how many fields were switched."""
    from graphql import GraphQLObjectType
    from strawberry.relay.types import GlobalID
    from strawberry.types.arguments import _is_leaf_type, _is_optional_leaf_type, convert_argument
    from strawberry.types.base import StrawberryMaybe

    gql_schema = schema._schema
    converter = schema.schema_converter
    config = schema.config
    registry = converter.scalar_registry
    subscription = gql_schema.subscription_type
    switched = 0
    for gql_type in gql_schema.type_map.values():
        if not isinstance(gql_type, GraphQLObjectType) or gql_type is subscription or gql_type.name.startswith("__"):
            continue
        for gql_field in gql_type.fields.values():
            field = (gql_field.extensions or {}).get("strawberry-definition")
            resolver = getattr(field, "base_resolver", None)
            current = gql_field.resolve
            if resolver is None or field.extensions or getattr(field, "permission_classes", None) \
                    or getattr(current, "pulse_direct", False) or getattr(current, "_is_default", True) is not False \
                    or converter._get_field_exception_handlers(field) or not callable(resolver.wrapped_func):
                continue
            specs = []
            for argument in field.arguments:
                type_ = argument.type
                identity = not isinstance(type_, StrawberryMaybe) and (
                    _is_leaf_type(type_, registry, skip_classes=(GlobalID,))
                    or _is_optional_leaf_type(type_, registry, skip_classes=(GlobalID,)))
                specs.append((config.name_converter.from_argument(argument), argument.python_name, type_, identity))
            resolve = _converted(field, resolver, tuple(specs), config, registry, convert_argument)
            plain = getattr(current, "pulse_plain", None)
            if plain is not None:
                resolve.pulse_plain = plain
            resolve._is_default = False
            gql_field.resolve = resolve
            switched += 1
    return switched


def _converted(field, resolver, specs: tuple, config, registry, convert_argument):
    function = resolver.wrapped_func
    info_class = config.info_class
    takes_self = resolver.self_parameter is not None
    named = tuple(p.name for p in (resolver.parent_parameter, resolver.root_parameter) if p is not None)
    info_name = resolver.info_parameter.name if resolver.info_parameter is not None else None
    all_identity = all(spec[3] for spec in specs)

    def call(source, raw_info, kwargs):
        info = info_class(_raw_info=raw_info, _field=field)
        arguments = {}
        for name, python_name, type_, identity in specs:
            if name in kwargs:
                value = kwargs[name]
                arguments[python_name] = value if identity else convert_argument(
                    value=value, type_=type_, config=config, scalar_registry=registry, info=info, path=(name,))
        for name in named:
            arguments[name] = source
        if info_name is not None:
            arguments[info_name] = info
        return function(source, **arguments) if takes_self else function(**arguments)

    if not field.is_async:
        def resolve(source, info, /, **kwargs):  # positional-only: an argument may be named `source`
            return call(source, info, kwargs)
    elif all_identity:
        def resolve(source, info, /, **kwargs):  # positional-only: an argument may be named `source`
            return call(source, info, kwargs)
    else:
        async def resolve(source, info, /, **kwargs):
            result = call(source, info, kwargs)
            return await result if inspect.isawaitable(result) else result
    return resolve


def _attribute(name: str):
    def resolve(source, _info):
        return getattr(source, name)
    return resolve


def _method(function):
    def resolve(source, _info):
        return function(source)
    return resolve


def _charged_subscribe(subscribe):
    async def charged(root, info, **kwargs):
        context = info.context
        cost = getattr(context, "query_cost", None)  # set by this operation's executor just now
        if cost is not None:
            refusal = await _limits.charge(context)
            if refusal is not None:
                raise refusal
        result = subscribe(root, info, **kwargs)
        return await result if hasattr(result, "__await__") else result
    return charged


_limits = limits


def build_schema(max_depth: int = 12, max_aliases: int = 30, max_tokens: int = 5000, mask_errors: bool = False,
                 max_cost: int = 20000, rate_points: int = 100000, rate_window_s: int = 60):
    # Factories, not instances: Strawberry builds them per request (an instance is shared by
    # concurrent requests and its `execution_context` is overwritten by each one: MaskErrors could
    # then mask another request's result). The limit rules are built once: QueryDepthLimiter and
    # MaxAliasesLimiter make a new rule class per instance, which would defeat ValidationCache.
    rules = (*specified_rules, *QueryDepthLimiter(max_depth=max_depth).validation_rules,
             *MaxAliasesLimiter(max_alias_count=max_aliases).validation_rules)
    # Parsing and validation are cached by PulseSchema itself (`_prepare_operation_async`).
    extensions = []
    if mask_errors:
        extensions.append(lambda: PulseMaskErrors(should_mask_error=should_mask))
    schema = PulseSchema(
        limits=(rules, max_tokens),
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=NODE_TYPES,
        extensions=extensions,
        config=StrawberryConfig(name_converter=ArgumentNames()),
        execution_context_class=type("PulseExecutionContext", (PulseExecutionContext,), {"max_cost": max_cost}),
    )
    # The limits this deployment runs with, readable by introspection.
    schema._schema.query_type.description = QUERY_DESCRIPTION.format(
        max_cost=max_cost, points=rate_points if rate_points > 0 else "unlimited", window=rate_window_s)
    return schema


# The default schema (for `strawberry export-schema graph.schema:schema` and tests).
schema = build_schema()
