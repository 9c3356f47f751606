"""Work-arounds for library bugs, applied once at import.

graphql-core 3.3.2: `Executor.build_per_event_executor` makes a shallow copy of the
subscription's executor, so every event shares the memo `_relevant_sub_fields`, keyed
by `id()` of field lists that are new on every event: the memo never hits and grows by
one entry per field list per message, for the life of the subscription (memory grows,
and full garbage collections get long). Each per-event executor gets its own memo.
"""

from graphql.execution.executor import Executor
from graphql.pyutils import RefMap

_original = Executor.build_per_event_executor


def _per_event_executor(self, payload):
    executor = _original(self, payload)
    executor._relevant_sub_fields = {}
    executor._stream_usages = RefMap()
    return executor


if not getattr(Executor.build_per_event_executor, "_pulse_patched", False):
    _per_event_executor._pulse_patched = True
    Executor.build_per_event_executor = _per_event_executor
