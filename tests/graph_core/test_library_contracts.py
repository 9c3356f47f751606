"""What graph/core/execution.py and graph/schema.py rely on inside their pinned libraries.

Each test names the library behaviour a Pulse module depends on and fails with a message saying
what to re-check when an upgrade changes it (docs/architecture.md, "Upgrading the libraries whose
internals we use"). The behaviour itself (shared execution, direct frames, the memo work-around)
is tested end to end in tests/subscriptions and tests/graph_core/test_execution_memo.py.
"""

from __future__ import annotations

import inspect

import pytest
from graphql import build_schema, parse

UPGRADE = "see docs/architecture.md, 'Upgrading the libraries whose internals we use'"


def test_graphql_core_executor_still_builds_per_event_executors_by_shallow_copy():
    """graph/core/execution.py (PulseExecutionContext.build_per_event_executor) gives each per-event
    executor its own `_relevant_sub_fields` memo, because graphql-core 3.3's copy shares it."""
    from graphql.execution.executor import Executor

    assert hasattr(Executor, "build_per_event_executor"), (
        f"graphql-core no longer has Executor.build_per_event_executor: the per-event memo work-around and the "
        f"shared execution hook onto it; {UPGRADE}")
    schema = build_schema("type Query { a: Int } type Subscription { s: Int }")
    from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

    base = StrawberryGraphQLCoreExecutionContext.build(schema, parse("subscription { s }"))
    assert hasattr(base, "_relevant_sub_fields"), (
        f"graphql-core's executor has no `_relevant_sub_fields` memo any more: drop or adapt the memo work-around; {UPGRADE}")
    event = Executor.build_per_event_executor(base, {"s": 1})
    if event._relevant_sub_fields is not base._relevant_sub_fields:
        pytest.fail(f"graphql-core's per-event executor no longer shares the subscription's memo: the leak is fixed "
                    f"upstream; the work-around in PulseExecutionContext can go; {UPGRADE}")


def test_strawberry_execution_context_and_schema_hooks_exist():
    """graph/core/execution.py subclasses Strawberry's execution context (execute_operation(serially));
    graph/schema.py overrides Schema._create_execution_context to set validation_rules and parse_options."""
    import strawberry
    from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

    params = list(inspect.signature(StrawberryGraphQLCoreExecutionContext.execute_operation).parameters)
    assert params[:2] == ["self", "serially"], (
        f"Strawberry's execution context changed execute_operation's signature ({params}): "
        f"PulseExecutionContext.execute_operation must follow; {UPGRADE}")
    assert hasattr(strawberry.Schema, "_create_execution_context"), (
        f"strawberry.Schema._create_execution_context is gone: PulseSchema sets the limits there; {UPGRADE}")

    @strawberry.type
    class Query:
        a: int = 1

    from graph.schema import PulseSchema

    schema = PulseSchema(query=Query, limits=((), 123))
    context = schema._create_execution_context(query="{ a }", allowed_operation_types=None, operation_name=None)
    assert hasattr(context, "validation_rules") and context.parse_options.get("max_tokens") == 123, (
        f"Strawberry's execution context no longer carries validation_rules / parse_options: limits would not "
        f"apply; {UPGRADE}")


def test_strawberry_transport_ws_handler_hooks_exist():
    """PulseTransportWSHandler overrides these methods, and DirectDelivery finds a subscription's
    operation among `handler.operations` by its task, id and `completed` flag."""
    from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler, Operation

    for name in ("on_request_accepted", "shutdown", "handle_connection_init", "handle_subscribe"):
        assert callable(getattr(BaseGraphQLTransportWSHandler, name, None)), (
            f"Strawberry's graphql-transport-ws handler has no `{name}`: PulseTransportWSHandler relies on it; {UPGRADE}")
    fields = set(inspect.signature(Operation.__init__).parameters) | set(getattr(Operation, "__slots__", ()))
    source = inspect.getsource(Operation)
    for attr in ("id", "task", "completed"):
        assert attr in fields or f"self.{attr}" in source, (
            f"Strawberry's transport-ws Operation has no `{attr}`: DirectDelivery.for_current / send use it; {UPGRADE}")


def test_uvicorn_sansio_websocket_protocol_is_what_pulse_serve_uses():
    """DirectDelivery.send_now assumes an ASGI websocket send that writes nothing before its first
    suspension (uvicorn's websockets-sansio protocol); `pulse serve` pins that protocol."""
    import importlib

    try:
        importlib.import_module("uvicorn.protocols.websockets.websockets_sansio_impl")
    except ImportError:
        pytest.fail(f"uvicorn no longer ships the websockets-sansio protocol that send_now assumes; {UPGRADE}")
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

    from app import cli
    from app.web.wsprotocol import PulseWebSocketProtocol

    assert "ws=PulseWebSocketProtocol" in inspect.getsource(cli), (
        "`pulse serve` must run uvicorn with ws=PulseWebSocketProtocol (DirectDelivery.send_now's assumption)")
    assert issubclass(PulseWebSocketProtocol, WebSocketsSansIOProtocol)


def test_uvicorn_protocol_uses_only_what_pulse_replaces():
    """PulseWebSocketProtocol replaces the protocol's queue and writable event with lighter objects
    and drops the handshake request/response once accepted: uvicorn must use no more of them."""
    import re

    from uvicorn.protocols.websockets import websockets_sansio_impl

    from app.web.wsprotocol import _Flag, _Inbox

    source = inspect.getsource(websockets_sansio_impl)
    for attr, cls in (("queue", _Inbox), ("writable", _Flag)):
        used = set(re.findall(rf"self\.{attr}\.(\w+)", source))
        missing = {m for m in used if not hasattr(cls, m)}
        assert used and not missing, f"uvicorn's protocol uses self.{attr}.{missing}: {cls.__name__} lacks it; {UPGRADE}"
    readers = [line for line in source.splitlines() if re.search(r"self\.(request|response)\b", line)]
    assert len(readers) <= 7 and all(("self.response" in line or "self.request = event" in line) for line in readers), (
        f"uvicorn reads the handshake request/response in more places than PulseWebSocketProtocol expects: "
        f"{readers}; {UPGRADE}")


# The library code that Pulse's per-request shortcuts (docs/architecture.md, "Per-request cost, fourth
# pass") follow step by step, fingerprinted as it was when they were written (strawberry-graphql 0.341.2,
# graphql-core 3.3.2). A changed fingerprint does not mean the shortcut is wrong: re-read the function,
# bring the shortcut in line, run tests/graph_core/test_prepared_operations.py (test_compiled_plans.py for the
# compiled plans' entries), update the fingerprint.
FOLLOWED = {
    # graph/schema.py PulseSchema._execute_directly
    "strawberry.schema.schema:Schema.execute": "a4b76c96d614f4d0",
    "strawberry.schema.schema:Schema._execute_operation": "5d64cc27e74797f9",
    "graphql.execution.execute:execute": "c388ee5e31557751",
    "graphql.execution.execute:experimental_execute_incrementally": "ac82362a51b2fc48",
    # graph/schema.py PulseSchema._prepare_operation_async, _operation_type
    "strawberry.schema.schema:Schema._prepare_operation_async": "0973d3b5a73f65fd",
    "strawberry.utils.operation:get_operation_type": "2db79313f28f3af6",
    # graph/schema.py converted_resolvers
    "strawberry.schema.schema_converter:GraphQLCoreConverter.from_resolver": "bcac1354fecdee79",
    "strawberry.schema.schema_converter:get_arguments": "622f5399b812e9e2",
    "strawberry.types.arguments:convert_arguments": "c1f343b7611e0f78",
    "strawberry.types.arguments:convert_argument": "a11a22f213be34f4",
    # graph/schema.py PulseMaskErrors._process_result
    "strawberry.extensions.mask_errors:MaskErrors._process_result": "c0674de60b912e68",
    # graph/core/prepared.py, PulseExecutionContext.build
    "graphql.execution.executor:Executor.build": "faf76cb9d6140315",
    "graphql.execution.values:coerce_variable_values": "9d7e32a42ceaec29",
    # graph/core/execution.py _Compiler.leaf_shortcut, _uncast_origin (compiled plans, fifth pass;
    # tests/graph_core/test_compiled_plans.py)
    "graphql.type.scalars:serialize_string": "99f9fa4073226501",
    "graphql.type.scalars:serialize_id": "367285ae52fbedf8",
    "graphql.type.scalars:serialize_int": "8af8f6f541b53b36",
    "graphql.type.scalars:serialize_boolean": "cd3050e868555bc3",
    "graphql.type.scalars:serialize_float": "0093ba9ee32efd28",
    "graphql.type.scalars:coerce_int_from_number": "7dcc995128821d2d",
    "graphql.type.scalars:coerce_float_from_number": "76babb54934a9c1d",
    "strawberry.schema.schema_converter:GraphQLCoreConverter.from_object": "0f7b2e8c97a4270c",
    "strawberry.schema.schema_converter:CustomGraphQLEnumType.coerce_output_value": "e4a086ff6db85ddb",
    "strawberry.types.cast:get_strawberry_type_cast": "fb59330c81d0c201",
}


@pytest.mark.parametrize("name", sorted(FOLLOWED))
def test_the_library_code_the_shortcuts_follow_is_unchanged(name):
    import hashlib
    import importlib

    module, _, qualname = name.partition(":")
    target = importlib.import_module(module)
    for part in qualname.split("."):
        target = getattr(target, part)
    found = hashlib.sha256(inspect.getsource(target).encode()).hexdigest()[:16]
    assert found == FOLLOWED[name], (
        f"{name} changed in this version of the library: the per-request shortcut that follows it (named in "
        f"FOLLOWED) must be re-read against it, then tests/graph_core/test_prepared_operations.py run and the "
        f"fingerprint updated; {UPGRADE}")
