"""Delivery: sends and their events — the pure send state machine (`sendstate`), ingestion of
provider/integrator events (`ingest`), counters per campaign × channel × center × day and their
rebuild (`counters`), the change log, send queries (`sends`). Declares `sends_changed`, filled by
billing (spend, alerts) and analytics (rollups).
"""
