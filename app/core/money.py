"""Money: Decimal at the edges, integer micro-units in storage."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from app.core.errors import DomainError, ErrorCode

MICROS = 1_000_000
MAX_MICROS = 10**17  # 100 billion currency units


def to_micros(value: Decimal | str | int | float | None, field: str = "amount", *, allow_negative: bool = False) -> int:
    if value is None:
        return 0
    try:
        dec = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise DomainError(ErrorCode.INVALID, "not a decimal number", field) from None
    if not dec.is_finite():
        raise DomainError(ErrorCode.INVALID, "must be a finite number", field)
    if dec < 0 and not allow_negative:
        raise DomainError(ErrorCode.OUT_OF_RANGE, "must not be negative", field)
    # Bound the magnitude before any arithmetic: "1E+999999" would overflow the decimal context, and a
    # value with more digits than its precision cannot be quantized (decimal.Overflow/InvalidOperation).
    if dec and dec.adjusted() >= 17:
        raise DomainError(ErrorCode.OUT_OF_RANGE, "amount too large", field)
    try:
        if dec.as_tuple().exponent < -6 and dec != dec.quantize(Decimal("0.000001")):
            raise DomainError(ErrorCode.INVALID, "at most 6 decimal places", field)
        micros = int((dec * MICROS).to_integral_value(ROUND_HALF_EVEN))
    except ArithmeticError:
        raise DomainError(ErrorCode.INVALID, "not a usable amount", field) from None
    if abs(micros) >= MAX_MICROS:
        raise DomainError(ErrorCode.OUT_OF_RANGE, "amount too large", field)
    return micros


def from_micros(micros: int | None) -> Decimal:
    value = Decimal(int(micros or 0)) / MICROS
    # Normalise to at least 2 decimal places, no trailing noise beyond 6.
    q = value.quantize(Decimal("0.000001"))
    normalized = q.normalize()
    if normalized.as_tuple().exponent > -2:
        return q.quantize(Decimal("0.01"))
    return normalized


def ratio(numerator: int | float, denominator: int | float) -> float:
    return float(numerator) / float(denominator) if denominator else 0.0
