"""Resuming `sendStatusChanged` across reconnects with a stock graphql-ws client (issue 11, item 3).

graphql-ws resubscribes after a reconnect with the variables of the FIRST subscribe, so an `after`
variable is stale by then. What a stock client does send anew on every connect is the
`connection_init` payload, when `connectionParams` is a function. So the client keeps the last
cursor it received per stream and sends them all there:

    {"authorization": "Bearer …", "resume": {"<resume key>": "<last cursor>", …}}

The resume key of a `sendStatusChanged` subscription is its `resumeKey` argument, or by default its
`campaignId`. The stream then starts after the later of `after` and that cursor: everything missed
while disconnected is replayed first, nothing already received comes again. See docs/api.md,
"Surviving restarts".
"""

from __future__ import annotations

from graphql import GraphQLError
from strawberry.types import Info

from graph.core import ctx, from_global_id

MAX_RESUME_ENTRIES = 200


def resume_cursor(info: Info, key: str) -> str | None:
    """The cursor that this connection's `connection_init` payload holds under `key`, if any."""
    params = ctx(info).connection_params or {}
    resume = params.get("resume") if isinstance(params, dict) else None
    if resume is None:
        return None
    if not isinstance(resume, dict) or len(resume) > MAX_RESUME_ENTRIES:
        raise GraphQLError(f"connection_init `resume` must be an object of at most {MAX_RESUME_ENTRIES} "
                           "key → cursor entries", extensions={"code": "BAD_USER_INPUT"})
    cursor = resume.get(key)
    if cursor is None:
        return None
    if not isinstance(cursor, str):
        raise GraphQLError("a `resume` cursor must be a string", extensions={"code": "BAD_USER_INPUT"})
    return cursor


def later_cursor(info: Info, key: str, after: str | None) -> str | None:
    """`after` or the resume cursor of `key`, whichever is later in the stream (cursors of one
    campaign's stream are ordered by their change id)."""
    resumed = resume_cursor(info, key)
    if resumed is None:
        return after
    if after is None:
        return resumed

    def position(cursor: str) -> int:
        parsed = from_global_id(cursor)
        return parsed[1] if parsed is not None and isinstance(parsed[1], int) else -1

    return resumed if position(resumed) > position(after) else after
