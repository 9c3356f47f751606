"""The execution context of the schema: shared execution of subscription events.

Thousands of subscribers of one topic receive the same event object from their hub
(`subscriptions.hubs`). graphql-core executes the selection set once per subscriber and
event, which was ~50 % of the server's cost per delivered message. Here an event that is a
`SharedPayload` is executed once per group of subscribers that would get the same answer,
and every subscriber of that group gets that result:

    same event object × same operation (same parsed document, see ParserCache)
        × same coerced variables × same access (organization, role, scope, export right)

Every resolver reachable from a subscription payload depends only on the payload, the
arguments and these access fields (never on the user's identity), so the shared result is
exactly what each subscriber's own execution would have produced. The results live on the
event object and go away with it (after the last subscriber was sent it).

Also a work-around for graphql-core 3.3.2: `Executor.build_per_event_executor` makes a
shallow copy of the subscription's executor, so every event shares the memo
`_relevant_sub_fields`, keyed by `id()` of field lists that are new on every event: the
memo never hits and grows by one entry per field list per message for the life of the
subscription. Each per-event executor gets its own memo.
"""

from __future__ import annotations

import asyncio
from typing import Any

from graphql.pyutils import RefMap
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from app import metrics


class SharedPayload:
    """Mixin of subscription event types whose instances are given to many subscribers."""

    def shared_results(self) -> list:
        try:
            return self.__dict__["_pulse_shared_results"]
        except KeyError:
            results = self.__dict__["_pulse_shared_results"] = []
            return results


def access_key(context: Any) -> tuple | None:
    """What a subscriber's answer may depend on besides the event, the document and the variables."""
    p = getattr(context, "principal_", None)
    if p is None:
        return None
    return (p.org_id, p.role.value, p.scope.kind.value, p.scope.id, p.can_export)


_EXECUTED = metrics.SHARED_EXECUTIONS.labels("executed")
_REUSED = metrics.SHARED_EXECUTIONS.labels("reused")


class _Reuse:
    """Stands in for a per-event executor when the event's result already exists for this group."""

    __slots__ = ("result",)

    def __init__(self, result: Any) -> None:
        self.result = result

    def execute_operation(self, serially: bool | None = None):
        _REUSED.inc()
        return _await_shared(self.result) if isinstance(self.result, asyncio.Future) else self.result


class PulseExecutionContext(StrawberryGraphQLCoreExecutionContext):
    def build_per_event_executor(self, payload: Any):
        if isinstance(payload, SharedPayload):
            access = access_key(self.context_value)
            variables = getattr(self.variable_values, "coerced", self.variable_values)
            for operation, vars_, key, result in payload.shared_results():
                if operation is self.operation and key == access and vars_ == variables:
                    return _Reuse(result)  # no copy of the executor: most subscribers take this path
        executor = super().build_per_event_executor(payload)
        executor._relevant_sub_fields = {}
        executor._stream_usages = RefMap()
        return executor

    def execute_operation(self, serially: bool | None = None):
        payload = self.root_value
        if not isinstance(payload, SharedPayload):
            return super().execute_operation(serially)
        access = access_key(self.context_value)
        variables = getattr(self.variable_values, "coerced", self.variable_values)
        result = super().execute_operation(serially)
        _EXECUTED.inc()
        if self.is_awaitable(result):
            # One execution for the group, awaited by every member: a subscriber that leaves
            # (its task cancelled) must not cancel it for the others.
            result = asyncio.ensure_future(result)
            payload.shared_results().append((self.operation, variables, access, result))
            return _await_shared(result)
        payload.shared_results().append((self.operation, variables, access, result))
        return result


async def _await_shared(future: asyncio.Future):
    return await asyncio.shield(future)
