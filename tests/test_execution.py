"""The graphql-core per-event memo leak stays fixed (see graph/execution.py)."""

from graphql import build_schema, parse

from graph.execution import PulseExecutionContext


def test_per_event_executors_do_not_grow_the_subscription_memo():
    schema = build_schema("""
        type Query { dummy: String }
        type Item { a: Int b: Int }
        type Subscription { item: Item }
    """)
    executor = PulseExecutionContext.build(schema, parse("subscription { item { a b } }"))
    for i in range(50):
        event = executor.build_per_event_executor({"item": {"a": i, "b": i}})
        result = event.execute_operation(False)
        assert result.data == {"item": {"a": i, "b": i}}
    assert len(executor._relevant_sub_fields) == 0
