"""Pulse against its peer (PostGraphile 4) and a raw endpoint: `python -m bench.peer` (see __main__.py)."""
