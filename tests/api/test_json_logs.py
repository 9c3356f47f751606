"""Production logs: one JSON object per line with time, level, logger, message, request id,
operation, organization id, duration and error code; one access line per request; a client's
mistake writes no traceback. Development logs are plain text."""

import io
import json
import logging

from app import logs


class Capture:
    def __init__(self, formatter: logging.Formatter) -> None:
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setFormatter(formatter)

    def __enter__(self):
        root = logging.getLogger()
        self.level = root.level
        root.addHandler(self.handler)
        root.setLevel(logging.INFO)
        return self

    def __exit__(self, *exc):
        root = logging.getLogger()
        root.removeHandler(self.handler)
        root.setLevel(self.level)

    def lines(self) -> list[str]:
        return [line for line in self.stream.getvalue().splitlines() if line]


async def test_json_access_lines_and_no_traceback_for_client_mistakes(tenant):
    with Capture(logs.JsonFormatter()) as capture:
        ok = await tenant.gql.http.post("/graphql", json={"query": "query LogViewer { viewer { id } }"},
                                        headers={"Authorization": f"Bearer {tenant.gql.token}", "X-Request-ID": "req-42"})
        bad = await tenant.gql.raw("query LogBroken { nope }")
    assert ok.headers["x-request-id"] == "req-42" and bad.headers["x-request-id"]
    entries = [json.loads(line) for line in capture.lines()]  # every line is one JSON object
    access = {e["operation"]: e for e in entries if e["logger"] == "pulse.access" and e.get("operation")}
    viewer = access["LogViewer"]
    assert {"time", "level", "logger", "message", "request_id", "organization_id", "duration_ms"} <= viewer.keys()
    assert viewer["request_id"] == "req-42" and viewer["level"] == "info" and viewer["status"] == 200
    broken = access["LogBroken"]
    assert broken["error_code"] == "GRAPHQL_VALIDATION_FAILED"
    about_broken = [e for e in entries if e.get("request_id") == broken["request_id"]]
    assert len(about_broken) == 1 and "traceback" not in about_broken[0]
    assert not any("traceback" in e for e in entries)


def test_development_is_plain_text_and_production_json():
    root = logging.getLogger()
    try:
        logs.configure("development")
        ours = [h for h in root.handlers if getattr(h, "_pulse", False)]
        assert len(ours) == 1 and isinstance(ours[0].formatter, logs.TextFormatter)
        logs.configure("production")
        ours = [h for h in root.handlers if getattr(h, "_pulse", False)]
        assert len(ours) == 1 and isinstance(ours[0].formatter, logs.JsonFormatter)
        record = logging.LogRecord("pulse", logging.ERROR, __file__, 1, "boom", None, None)
        assert json.loads(ours[0].formatter.format(record))["message"] == "boom"
    finally:
        for handler in [h for h in root.handlers if getattr(h, "_pulse", False)]:
            root.removeHandler(handler)
        logging.getLogger("uvicorn.access").disabled = False
