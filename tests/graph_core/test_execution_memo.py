"""The graphql-core per-event memo leak stays fixed (see graph/core/execution.py)."""

from graphql import build_schema, parse

from graph.core.execution import PulseExecutionContext


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


async def test_send_now_writes_at_once_or_leaves_the_value_to_the_subscriber_task():
    """A KPI hub writes a value itself only when the socket takes it without waiting; when the
    send would wait (a congested socket), nothing is written and the subscriber's task delivers it."""
    import asyncio

    import strawberry

    from graph.core.execution import DirectDelivery, PulseExecutionContext, SharedPayload

    @strawberry.type
    class Item(SharedPayload):
        n: int

    @strawberry.type
    class Query:
        x: int = 0

    @strawberry.type
    class Subscription:
        @strawberry.subscription
        async def item(self) -> Item:  # pragma: no cover - only the selection is executed here
            yield Item(n=0)

    schema = strawberry.Schema(query=Query, subscription=Subscription)._schema  # the graphql-core schema
    executor = PulseExecutionContext.build(schema, parse("subscription { item { n } }"))

    class Operation:
        id, completed = "op-1", False

    class Socket:
        def __init__(self, congested: bool) -> None:
            self.ready = asyncio.Event()
            if not congested:
                self.ready.set()
            self.frames: list[str] = []

        async def send_text(self, text: str) -> None:
            await self.ready.wait()  # like uvicorn: wait until the transport drains, then write
            self.frames.append(text)

    free, congested = Socket(False), Socket(True)
    assert DirectDelivery(executor, Operation(), free).send_now(Item(n=1))
    assert free.frames == ['{"id":"op-1","type":"next","payload":{"data":{"item":{"n":1}}}}']
    assert not DirectDelivery(executor, Operation(), congested).send_now(Item(n=2))
    assert congested.frames == [] and not congested.ready._waiters  # abandoned before writing, no waiter left
