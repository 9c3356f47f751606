"""Which GraphQL errors are safe to show to clients in production."""

from graphql import GraphQLError

SAFE_CODES = {"UNAUTHENTICATED", "BAD_USER_INPUT", "FORBIDDEN"}


def should_mask(error: GraphQLError) -> bool:
    """Mask unexpected errors (bugs); keep validation and auth errors readable."""
    original = error.original_error
    if original is None:
        return False  # parse/validation errors from graphql-core
    if isinstance(original, GraphQLError):
        return (original.extensions or {}).get("code") not in SAFE_CODES
    return True


def is_server_fault(error: GraphQLError) -> bool:
    """An unexpected exception (a bug, a database outage), not a client's mistake."""
    original = error.original_error
    return original is not None and not isinstance(original, GraphQLError)
