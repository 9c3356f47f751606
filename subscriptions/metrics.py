"""Prometheus metrics of the realtime layer (served with the rest at GET /metrics)."""

from prometheus_client import Counter, Gauge

SUBSCRIPTIONS = Gauge("pulse_subscriptions_active", "Active GraphQL subscriptions")
SNAPSHOTS = Counter("pulse_snapshot_computations_total", "Hub snapshot/stream rounds computed", ["topic"])
