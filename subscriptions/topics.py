"""Bus channels. One channel per organization: a process subscribes once per
organization with local subscribers, and a message never reaches a feed of
another organization. Payloads are small hints (what changed, ids); hubs
re-read state from the database."""


ORGANIZATION_PREFIX = "pulse.org."


def organization(org_id: int) -> str:
    return f"{ORGANIZATION_PREFIX}{org_id}"
