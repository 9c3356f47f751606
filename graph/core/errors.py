"""Which GraphQL errors are the client's, which are server faults, and the code each one carries.

The decision is made by the kind of error, not by its message:

- a request error (no `path`: syntax, validation, variable coercion, limits) is the client's;
- an error raised with a code (`GraphQLError(..., extensions={"code": ...})`) is the client's unless
  the code says otherwise;
- graphql-core's own input errors during execution (an argument that cannot be coerced: a
  GraphQLError without a code, wrapping nothing or a scalar's ValueError/TypeError) are the client's;
- anything else (an unexpected exception in a resolver) is a server fault: masked in production,
  logged with its traceback, code INTERNAL_SERVER_ERROR — or SERVICE_UNAVAILABLE when the database
  cannot be reached (a 503 over HTTP, a 1013 close on a websocket; never masked, no traceback).

Every error gets `extensions.code` (`with_code`), so clients can branch on it.
"""

from __future__ import annotations

from collections.abc import Iterable

from graphql import GraphQLError

from app.db import is_unavailable

INTERNAL = "INTERNAL_SERVER_ERROR"
UNAVAILABLE = "SERVICE_UNAVAILABLE"
SAFE_CODES = {"UNAUTHENTICATED", "BAD_USER_INPUT", "FORBIDDEN"}


def _coded(error: GraphQLError | None) -> str | None:
    return (getattr(error, "extensions", None) or {}).get("code") if error is not None else None


def is_client_error(error: GraphQLError) -> bool:
    """True for a client mistake (readable in production), False for a server fault."""
    original = error.original_error
    code = _coded(error) or _coded(original if isinstance(original, GraphQLError) else None)
    if code:
        return code != INTERNAL
    if original is None:
        return True  # parse, validation, query limits; graphql-core's own execution-time input errors
    if isinstance(original, GraphQLError):
        if error.path is None:
            return True  # variable coercion (the scalar's own error, wrapped)
        inner = original.original_error
        return inner is None or isinstance(inner, (ValueError, TypeError)) and not isinstance(inner, UnicodeError)
    return False


def should_mask(error: GraphQLError) -> bool:
    """Mask server faults only (production); client mistakes stay readable."""
    return not is_client_error(error)


def code_of(error: GraphQLError) -> str:
    """The code a client reads in `extensions.code`."""
    original = error.original_error
    code = _coded(error) or _coded(original if isinstance(original, GraphQLError) else None)
    if code:
        return code
    if not is_client_error(error):
        return UNAVAILABLE if is_unavailable(error.original_error) else INTERNAL
    if error.path is None and original is None:
        return "GRAPHQL_PARSE_FAILED" if error.message.startswith("Syntax Error") else "GRAPHQL_VALIDATION_FAILED"
    return "BAD_USER_INPUT"


def with_code(errors: Iterable[GraphQLError]) -> None:
    """Set `extensions.code` on every error that has none (in place)."""
    for error in errors:
        if not _coded(error):
            error.extensions = {**(error.extensions or {}), "code": code_of(error)}


def is_server_fault(error: GraphQLError) -> bool:
    """An unexpected exception (a bug, a database outage), not a client's mistake."""
    return not is_client_error(error)
