"""Tenancy: organizations, zones, centers, users, API tokens, and **access** — the one place that
turns a principal into what it may see and do (`access`: principals, units, scope querysets, token
checks). Lowest domain: imports none of the others.
"""
