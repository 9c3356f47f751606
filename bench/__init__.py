"""Campaign Pulse benchmarks: `python -m bench [ingest|latency|queries|all]` (see bench/README.md)."""
