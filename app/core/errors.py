"""Domain errors: expected failures become GraphQL user errors with a code."""

from __future__ import annotations

from enum import Enum


class ErrorCode(str, Enum):
    NOT_FOUND = "NOT_FOUND"
    FORBIDDEN = "FORBIDDEN"
    INVALID = "INVALID"
    TOO_LONG = "TOO_LONG"
    OUT_OF_RANGE = "OUT_OF_RANGE"
    DUPLICATE = "DUPLICATE"
    ILLEGAL_TRANSITION = "ILLEGAL_TRANSITION"
    CAMPAIGN_LOCKED = "CAMPAIGN_LOCKED"
    NO_ENABLED_CHANNEL = "NO_ENABLED_CHANNEL"
    EMPTY_AUDIENCE = "EMPTY_AUDIENCE"
    SCOPE_OUTSIDE = "SCOPE_OUTSIDE"
    ALREADY_REVERSED = "ALREADY_REVERSED"
    REVERSAL_MISMATCH = "REVERSAL_MISMATCH"
    IDEMPOTENCY_CONFLICT = "IDEMPOTENCY_CONFLICT"
    MISSING_SEND_CONTEXT = "MISSING_SEND_CONTEXT"
    CHANNEL_NOT_ON_CAMPAIGN = "CHANNEL_NOT_ON_CAMPAIGN"
    CAMPAIGN_NOT_LAUNCHED = "CAMPAIGN_NOT_LAUNCHED"
    SEND_MISMATCH = "SEND_MISMATCH"
    BATCH_TOO_LARGE = "BATCH_TOO_LARGE"
    TOKEN_REVOKED = "TOKEN_REVOKED"
    CONTROL_RECIPIENT = "CONTROL_RECIPIENT"
    WEAK_PASSWORD = "WEAK_PASSWORD"
    ALREADY_DOWNLOADED = "ALREADY_DOWNLOADED"
    MEMBER_EXISTS = "MEMBER_EXISTS"
    LAST_OWNER = "LAST_OWNER"
    NOT_RECIPIENT = "NOT_RECIPIENT"
    INVALID_RANGE = "INVALID_RANGE"


def check_range(start, end, field: list[str] | str, *, strict: bool = False) -> None:
    """The one rule for every range argument (dates or times): the end may not come before the
    start (with `strict`, not at it either); open ends are fine. Raises INVALID_RANGE on `field`
    (the end's name)."""
    if start is not None and end is not None and (end <= start if strict else end < start):
        names = field if isinstance(field, str) else field[-1]
        raise DomainError(ErrorCode.INVALID_RANGE,
                          f"`{names}` is before the start of the range" if not strict
                          else f"`{names}` must be after the start of the range", field)


class DomainError(Exception):
    def __init__(self, code: ErrorCode, message: str, field: list[str] | str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        if isinstance(field, str):
            field = [field]
        self.field = field


class NotFound(DomainError):
    def __init__(self, what: str = "object", field: str | list[str] | None = None):
        super().__init__(ErrorCode.NOT_FOUND, f"{what} not found", field)


class Forbidden(DomainError):
    def __init__(self, message: str = "not allowed for your role", field=None):
        super().__init__(ErrorCode.FORBIDDEN, message, field)


class Unauthenticated(Exception):
    """No valid credentials: a top-level error (and HTTP 401 for a bad token)."""


class DomainErrors(DomainError):
    """Several user errors found at once (a mutation with several invalid inputs reports them all)."""

    def __init__(self, errors: list[DomainError]):
        super().__init__(errors[0].code, errors[0].message, errors[0].field)
        self.errors = errors


class Checks:
    """Collects the DomainErrors of independent checks; `done()` raises them together."""

    def __init__(self) -> None:
        self.errors: list[DomainError] = []

    def __call__(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except DomainError as exc:
            self.errors.extend(getattr(exc, "errors", None) or [exc])
            return None

    def fail(self, code: ErrorCode, message: str, field: list[str] | str | None = None) -> None:
        self.errors.append(DomainError(code, message, field))

    def done(self) -> None:
        if len(self.errors) == 1:
            raise self.errors[0]
        if self.errors:
            raise DomainErrors(self.errors)


def has_nul(value: object) -> bool:
    """PostgreSQL text cannot hold NUL: such text is refused on every backend."""
    return isinstance(value, str) and "\x00" in value


def check_no_nul(**values: object) -> None:
    """Raise INVALID (with the field) for the first text value that contains a NUL byte."""
    for name, value in values.items():
        if has_nul(value):
            raise DomainError(ErrorCode.INVALID, f"{name} must not contain NUL characters", name)
