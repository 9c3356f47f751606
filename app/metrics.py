"""Prometheus metrics of this process (GET /metrics)."""

from prometheus_client import Counter, Gauge, Histogram

from subscriptions.metrics import SNAPSHOTS, SUBSCRIPTIONS  # noqa: F401 - the realtime layer's, served here too

WS_CONNECTIONS = Gauge("pulse_ws_connections", "Open websocket connections")
MESSAGES = Counter("pulse_subscription_messages_total", "Subscription messages sent", ["subscription"])
DIRECT_FRAMES = Counter("pulse_subscription_direct_frames_total",
                        "Subscription messages written as ready frames (shared result, no errors)")
SHARED_EXECUTIONS = Counter("pulse_subscription_executions_total",
                            "Subscription events executed once per group of alike subscribers (executed) "
                            "and results given to the group's other members (reused)", ["outcome"])
WS_CLOSED = Counter("pulse_ws_closed_total", "Websockets closed by the server, by close code (every code)", ["code"])
WS_CLIENT_CLOSED = Counter("pulse_ws_client_closed_total", "Websockets closed by the client, by close code", ["code"])

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
HTTP_REQUESTS = Counter("pulse_http_requests_total", "HTTP requests by route, method and status class",
                        ["route", "method", "status"])
HTTP_LATENCY = Histogram("pulse_http_request_duration_seconds", "HTTP request latency by route and method",
                         ["route", "method"], buckets=_LATENCY_BUCKETS)
GRAPHQL_REQUESTS = Counter("pulse_graphql_requests_total",
                           "GraphQL operations over HTTP by operation name and outcome "
                           "(ok, error: the response carries errors, refused: a request error or refusal)",
                           ["operation", "outcome"])
GRAPHQL_LATENCY = Histogram("pulse_graphql_request_duration_seconds",
                            "GraphQL operation latency over HTTP by operation name and outcome",
                            ["operation", "outcome"], buckets=_LATENCY_BUCKETS)
GRAPHQL_ERRORS = Counter("pulse_graphql_errors_total", "GraphQL errors returned, by extensions.code", ["code"])
RESPONSE_CACHE = Counter("pulse_response_cache_total",
                         "Response cache (PULSE_RESPONSE_CACHE_ENTRIES): hit, miss (a cacheable-looking request "
                         "executed), bypass (version unreadable), stored, evicted", ["result"])
GC_FROZEN_OBJECTS = Gauge("pulse_gc_frozen_objects", "Objects moved to the collector's permanent generation at startup "
                          "(gc.freeze; PULSE_GC_FREEZE)")
RESPONSE_CACHE_ENTRIES = Gauge("pulse_response_cache_entries", "Answers held by the response cache")
RESPONSE_CACHE_BYTES = Gauge("pulse_response_cache_bytes", "Bytes accounted to the response cache's answers and keys")
SENDER_QUEUE_DEPTH = Gauge("pulse_sender_queue_depth", "System sends waiting for hand-off to a provider (PENDING)")
SENDER_QUEUE_AGE = Gauge("pulse_sender_queue_oldest_age_seconds", "Age of the oldest system send still PENDING")
SENDER_READY_JOBS = Gauge("pulse_sender_ready_jobs", "Send jobs of LIVE campaigns waiting to be queued (READY)")
SENDER_READY_AGE = Gauge("pulse_sender_ready_oldest_age_seconds",
                         "Age of the oldest READY send job of a LIVE campaign (per campaign: Campaign.sendQueue)")
INGEST_EVENTS = Counter("pulse_ingest_events_total", "Send events ingested, by outcome (accepted, duplicate, rejected)",
                        ["outcome"])

# Operation names are chosen by clients: at most this many distinct label values, then "other".
_MAX_OPERATIONS = 200
_operations: set[str] = set()


def operation_label(name: object) -> str:
    if not isinstance(name, str) or not name:
        return "anonymous"
    if name in _operations:
        return name
    if len(_operations) >= _MAX_OPERATIONS or len(name) > 64 or not name.replace("_", "").isalnum():
        return "other"
    _operations.add(name)
    return name


# `.labels(...)` takes a lock and builds a key on every call; the request path asks for the same few
# children over and over: kept here once made (no metric of this process is ever cleared or has
# children removed, so a kept child is the one `.labels` would return).
_http_children: dict[tuple, tuple] = {}
_graphql_children: dict[tuple, tuple] = {}
_error_children: dict[str, Counter] = {}


def http_children(route: str, method: str, status_class: int) -> tuple:
    """(HTTP_REQUESTS child, HTTP_LATENCY child) of a request."""
    key = (route, method, status_class)
    children = _http_children.get(key)
    if children is None:
        children = _http_children[key] = (HTTP_REQUESTS.labels(route, method, f"{status_class}xx"),
                                          HTTP_LATENCY.labels(route, method))
    return children


def graphql_children(operation: str, outcome: str) -> tuple:
    """(GRAPHQL_REQUESTS child, GRAPHQL_LATENCY child) of an operation (operation: `operation_label`'s)."""
    key = (operation, outcome)
    children = _graphql_children.get(key)
    if children is None:
        children = _graphql_children[key] = (GRAPHQL_REQUESTS.labels(operation, outcome),
                                             GRAPHQL_LATENCY.labels(operation, outcome))
    return children


def graphql_error(code: str):
    """The GRAPHQL_ERRORS child of a code (codes are bounded: ours, or "INTERNAL")."""
    child = _error_children.get(code)
    if child is None:
        child = _error_children[code] = GRAPHQL_ERRORS.labels(code)
    return child
