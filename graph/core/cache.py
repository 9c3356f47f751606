"""Response cache for repeated reads over HTTP (dashboards polling, many users of one organization).

Optional (`PULSE_RESPONSE_CACHE_ENTRIES` > 0), bounded, one per process. See docs/architecture.md,
"Response cache", for the guarantees; in short:

* Key: (method, content type, whether the client speaks application/graphql-response+json, the
  request's body bytes — document, operation name, variables, extensions — or its query string for
  GET, the caller's access (organization, role, scope, export right), the organization's data
  version read when the request starts). The version (subscriptions/versions.py) moves after every
  committed change of the organization's data: a mutation, or a message on its bus channel.
* Stored: only the answer of a query (never a mutation or subscription) whose every selected field
  is in `SAFE` below (plain stored data that depends on nothing but the organization's rows, the
  arguments and the access fields: no identity, no token, no clock), answered HTTP 200 without any
  error. The stored bytes are the uncached answer's bytes; a hit sends them unchanged.
* A hit is charged to the rate limit like the uncached request (its cost was computed on the miss);
  a hit over the limit takes the uncached path, which refuses it exactly as without the cache.
* Bounded in entries and in bytes (LRU); an entry also expires after `ttl_s` (a backstop for
  changes made outside the API and the bus: SQL by hand, `pulse rebuild-counters`). When an
  organization's version moves, its older entries are dropped at the next store.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

from graphql import FieldNode, FragmentSpreadNode, InlineFragmentNode, get_named_type

from app import metrics

# (parent type, field) pairs whose value is a function of the organization's stored rows, the
# arguments and the caller's access fields only. Audited one by one; everything else (viewer,
# tokens, users, rateLimit, exports, stats with relative periods, outreach days, budget, insights,
# send queues, KPIs computed "now", leads, …) makes the whole operation uncacheable.
SAFE: dict[str, frozenset[str]] = {name: frozenset(fields.split()) for name, fields in {
    "Query": "campaign campaigns node",
    "Node": "id",
    "CampaignConnection": "edges pageInfo totalCount",
    "CampaignEdge": "cursor node",
    "SendConnection": "edges pageInfo totalCount",
    "SendEdge": "cursor node",
    "PageInfo": "hasNextPage hasPreviousPage startCursor endCursor",
    "Campaign": "id name description type status statusReason createdFrom audienceSize reach controlSize "
                "controlGroupPercent goal startAt endAt createdAt updatedAt launchedAt clonedFromId metrics sends",
    "OrgUnit": "id kind name",
    "Goal": "type key",
    "CampaignMetrics": "totals byChannel",
    "ChannelMetrics": "channel generated skipped skippedByReason pending sent delivered failed bounced read clicked "
                      "replied unsubscribed cost credits bounceRate failureRate deliveryRate readRate clickRate",
    "SkipCount": "reason count",
    "Money": "amount currency",
    "Send": "id channel status cost credits queuedAt sentAt deliveredAt failedAt failureReason skipReason bouncedAt "
            "bounceType readAt clickedAt repliedAt unsubscribedAt externalId campaignId",
}.items()}
_SAFE_DIRECTIVES = frozenset(("skip", "include"))

_HIT = metrics.RESPONSE_CACHE.labels("hit")
_MISS = metrics.RESPONSE_CACHE.labels("miss")
_BYPASS = metrics.RESPONSE_CACHE.labels("bypass")
_STORED = metrics.RESPONSE_CACHE.labels("stored")
_EVICTED = metrics.RESPONSE_CACHE.labels("evicted")


def cache_safe(schema: Any, fragments: dict, operation: Any) -> bool:
    """Whether every field the operation selects is in SAFE (fragments followed, any type condition
    checked against its own type); a query only."""
    if operation.operation.value != "query":
        return False
    stack = [(operation.selection_set, schema.query_type, frozenset())]
    while stack:
        selection_set, parent, seen = stack.pop()
        if selection_set is None:
            continue
        for selection in selection_set.selections:
            if any(d.name.value not in _SAFE_DIRECTIVES for d in selection.directives or ()):
                return False
            if isinstance(selection, FieldNode):
                name = selection.name.value
                if name == "__typename":
                    continue
                if name not in SAFE.get(parent.name, ()):
                    return False
                field = parent.fields.get(name)
                if field is None:
                    return False
                if selection.selection_set is not None:
                    stack.append((selection.selection_set, get_named_type(field.type), seen))
            elif isinstance(selection, InlineFragmentNode):
                cond = selection.type_condition
                target = schema.get_type(cond.name.value) if cond else parent
                if target is None:
                    return False
                stack.append((selection.selection_set, target, seen))
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = fragments.get(name)
                if fragment is None:
                    return False
                if name in seen:
                    continue
                fragment = getattr(fragment, "definition", fragment)  # graphql-core 3.3: FragmentDetails
                target = schema.get_type(fragment.type_condition.name.value)
                if target is None:
                    return False
                stack.append((fragment.selection_set, target, seen | {name}))
            else:
                return False
    return True


class Probe:
    """One candidate request: its key, set by the view before executing; whether its answer may be
    stored and its cost, set by the executor (`note`)."""

    __slots__ = ("base", "key", "org_id", "version", "cacheable", "cost", "operation")

    def __init__(self, base: tuple, org_id: int, version: tuple) -> None:
        self.base, self.key, self.org_id, self.version = base, (*base, version), org_id, version
        self.cacheable, self.cost, self.operation = False, None, None


class Entry:
    __slots__ = ("body", "content_type", "cost", "operation", "expires", "size")

    def __init__(self, body: bytes, content_type: str, cost: int | None, operation: str | None, expires: float,
                 size: int) -> None:
        self.body, self.content_type, self.cost, self.operation = body, content_type, cost, operation
        self.expires, self.size = expires, size


ENTRY_OVERHEAD = 400  # bytes per entry besides the body and the request bytes (key tuple, entry, dict slot)


class ResponseCache:
    """LRU of answers, bounded in entries and bytes; per process."""

    def __init__(self, max_entries: int, max_bytes: int, ttl_s: float) -> None:
        self.max_entries, self.max_bytes, self.ttl_s = max_entries, max_bytes, ttl_s
        self.max_entry_bytes = max(1024, max_bytes // 16)  # one huge answer never flushes the rest
        self.entries: OrderedDict[tuple, Entry] = OrderedDict()
        self.bytes = 0
        # Per organization: the newest version stored and the keys stored under it.
        self.by_org: dict[int, tuple[tuple, list[tuple]]] = {}
        self.hits = self.misses = self.bypassed = self.stored = self.evicted = 0
        # The cost of each request seen executing (a request's cost depends only on its bytes): a later
        # lookup charges it and reads the data version in one Redis round trip (limits.charge_and_read).
        self.costs: dict[tuple, int] = {}

    def learn_cost(self, base: tuple, cost: int) -> None:
        if len(self.costs) >= 2 * self.max_entries + 16:
            self.costs.clear()
        self.costs[base] = cost

    def get(self, key: tuple) -> Entry | None:
        entry = self.entries.get(key)
        if entry is None:
            return None
        if entry.expires < time.monotonic():
            self._drop(key)
            return None
        self.entries.move_to_end(key)
        return entry

    def hit(self) -> None:
        self.hits += 1
        _HIT.inc()

    def miss(self) -> None:
        self.misses += 1
        _MISS.inc()

    def bypass(self) -> None:
        self.bypassed += 1
        _BYPASS.inc()

    def put(self, probe: Probe, body: bytes, content_type: str) -> bool:
        size = len(body) + sum(len(p) for p in probe.key if isinstance(p, (bytes, str))) + ENTRY_OVERHEAD
        if size > self.max_entry_bytes:
            return False
        newest = self.by_org.get(probe.org_id)
        if newest is not None and newest[0] != probe.version:
            if all(a >= b for a, b in zip(probe.version, newest[0])):
                for key in newest[1]:  # the organization's data moved on: its older answers are dead
                    self._drop(key)
                newest = None
            else:  # computed under an older version while a newer one was stored: already dead
                return False
        if newest is None:
            if len(self.by_org) > 2 * self.max_entries + 16:  # organizations whose entries are all gone
                self.by_org = {org: (v, [k for k in keys if k in self.entries]) for org, (v, keys) in
                               self.by_org.items() if any(k in self.entries for k in keys)}
            newest = self.by_org[probe.org_id] = (probe.version, [])
        key = probe.key
        if key in self.entries:
            self._drop(key)
        self.entries[key] = Entry(body, content_type, probe.cost, probe.operation, time.monotonic() + self.ttl_s, size)
        newest[1].append(key)
        if len(newest[1]) > 2 * self.max_entries + 16:  # keys evicted since: forget them
            newest[1][:] = [k for k in newest[1] if k in self.entries]
        self.bytes += size
        self.stored += 1
        _STORED.inc()
        while self.entries and (len(self.entries) > self.max_entries or self.bytes > self.max_bytes):
            oldest = next(iter(self.entries))
            self._drop(oldest)
            self.evicted += 1
            _EVICTED.inc()
        metrics.RESPONSE_CACHE_BYTES.set(self.bytes)
        metrics.RESPONSE_CACHE_ENTRIES.set(len(self.entries))
        return True

    def _drop(self, key: tuple) -> None:
        entry = self.entries.pop(key, None)
        if entry is not None:
            self.bytes -= entry.size

    def clear(self) -> None:
        self.entries.clear()
        self.by_org.clear()
        self.bytes = 0

    def stats(self) -> dict:
        return {"entries": len(self.entries), "bytes": self.bytes, "hits": self.hits, "misses": self.misses,
                "bypassed": self.bypassed, "stored": self.stored, "evicted": self.evicted}
