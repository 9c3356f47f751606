"""Logging: one JSON object per line in production, plain text in development.

Every line carries, when known, the request id (`X-Request-ID`, taken from the client when it is a
sane token, else generated, and echoed in the response), the GraphQL operation name, the
organization id, the duration and the error code. The access log (`pulse.access`) writes one line
per HTTP request. Tracebacks are written only for server faults (an unexpected exception); a
client's mistake (parse, validation, bad input, auth) is one access line with its error code.
"""

from __future__ import annotations

import contextvars
import logging
import sys
from datetime import datetime, timezone

import orjson

# Fields of the request being served (set by the HTTP middleware, read by every log line).
request_fields: contextvars.ContextVar[dict | None] = contextvars.ContextVar("pulse_request_fields", default=None)

CONTEXT_FIELDS = ("request_id", "operation", "organization_id", "duration_ms", "error_code", "status", "method",
                  "path")


def _fields(record: logging.LogRecord) -> dict:
    fields = dict(request_fields.get() or {})
    for name in CONTEXT_FIELDS:
        value = record.__dict__.get(name)
        if value is not None:
            fields[name] = value
    return {k: v for k, v in fields.items() if v is not None}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **_fields(record),
        }
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = _fields(record)
        if fields:
            first, _, rest = text.partition("\n")
            text = first + " " + " ".join(f"{k}={v}" for k, v in fields.items()) + ("\n" + rest if rest else "")
        return text


def configure(env: str, level: str = "info") -> None:
    """Install the formatter on the root logger (idempotent); uvicorn's own loggers go through it."""
    handler = logging.StreamHandler(sys.stdout if env == "production" else sys.stderr)
    handler.setFormatter(JsonFormatter() if env == "production" else TextFormatter())
    handler._pulse = True  # type: ignore[attr-defined]
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_pulse", False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # pulse.access replaces it
