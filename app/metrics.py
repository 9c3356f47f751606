"""Prometheus metrics of this process (GET /metrics)."""

from prometheus_client import Counter, Gauge

from subscriptions.metrics import SNAPSHOTS, SUBSCRIPTIONS  # noqa: F401 - the realtime layer's, served here too

WS_CONNECTIONS = Gauge("pulse_ws_connections", "Open websocket connections")
MESSAGES = Counter("pulse_subscription_messages_total", "Subscription messages sent", ["subscription"])
DIRECT_FRAMES = Counter("pulse_subscription_direct_frames_total",
                        "Subscription messages written as ready frames (shared result, no errors)")
SHARED_EXECUTIONS = Counter("pulse_subscription_executions_total",
                            "Subscription events executed once per group of alike subscribers (executed) "
                            "and results given to the group's other members (reused)", ["outcome"])
WS_CLOSED = Counter("pulse_ws_closed_total", "Websockets closed by the server", ["code"])
