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


# Root fields whose campaigns are tracked (`note_campaigns`): an operation made of these only depends
# on F and the versions of the campaigns it read; any other operation on (F, A) (subscriptions/versions.py).
TRACKED_ROOTS = frozenset(("campaign", "campaigns", "__typename"))


def tracked(operation: Any) -> bool:
    return all(isinstance(s, FieldNode) and s.name.value in TRACKED_ROOTS for s in operation.selection_set.selections)


def note_campaigns(info: Any, ids) -> None:
    """A resolver of a tracked root field read these campaigns (their rows, sends, counters below)."""
    probe = _probe(info)
    if probe is not None:
        probe.campaigns.update(ids)


def note_untracked(info: Any) -> None:
    """A resolver read more than the campaigns it can name (a filtered list: its membership depends
    on their fields): the answer depends on every change, (F, A)."""
    probe = _probe(info)
    if probe is not None:
        probe.fine = False


def _probe(info: Any) -> Probe | None:
    scope = getattr(getattr(info.context, "request", None), "scope", None)
    return scope.get("pulse.cache") if isinstance(scope, dict) else None


class Probe:
    """One candidate request: its key, and the versions read before executing (set by the view); whether
    its answer may be stored, its cost and what it read (set by the executor and the resolvers)."""

    __slots__ = ("base", "org_id", "keys", "values", "cacheable", "cost", "operation", "fine", "campaigns")

    def __init__(self, base: tuple, org_id: int, keys: tuple, values: tuple) -> None:
        self.base, self.org_id, self.keys, self.values = base, org_id, keys, values
        self.cacheable, self.cost, self.operation = False, None, None
        self.fine, self.campaigns = False, set()

    def depends_on(self, versions: Any) -> tuple[str, ...]:
        """The versions the answer depends on: (F, C[id]…) for a tracked operation, else (F, A)."""
        if not self.fine:
            return versions.coarse(self.org_id)
        return (versions.key(self.org_id), *(versions.campaign_key(self.org_id, c) for c in sorted(self.campaigns)))


class Entry:
    __slots__ = ("body", "content_type", "cost", "operation", "expires", "size", "keys", "values")

    def __init__(self, body: bytes, content_type: str, cost: int | None, operation: str | None, expires: float,
                 size: int, keys: tuple, values: tuple) -> None:
        self.body, self.content_type, self.cost, self.operation = body, content_type, cost, operation
        self.expires, self.size, self.keys, self.values = expires, size, keys, values


ENTRY_OVERHEAD = 400  # bytes per entry besides the body and the request bytes (key tuple, entry, dict slot)


class ResponseCache:
    """LRU of answers, one per request (its bytes and access), bounded in entries and bytes; per process."""

    def __init__(self, max_entries: int, max_bytes: int, ttl_s: float) -> None:
        self.max_entries, self.max_bytes, self.ttl_s = max_entries, max_bytes, ttl_s
        self.max_entry_bytes = max(1024, max_bytes // 16)  # one huge answer never flushes the rest
        self.entries: OrderedDict[tuple, Entry] = OrderedDict()
        self.bytes = 0
        self.hits = self.misses = self.bypassed = self.stored = self.evicted = 0
        # The cost of each request seen executing (a request's cost depends only on its bytes): a later
        # lookup charges it and reads the data versions in one Redis round trip (limits.charge_and_read).
        self.costs: dict[tuple, int] = {}
        # The versions each request depended on when it last executed: what a lookup reads.
        self.learned: dict[tuple, tuple[str, ...]] = {}

    def learn_cost(self, base: tuple, cost: int) -> None:
        if len(self.costs) >= 2 * self.max_entries + 16:
            self.costs.clear()
        self.costs[base] = cost

    def get(self, base: tuple, read: dict, coarse: tuple = (), learned: tuple | None = None) -> Entry | None:
        """The entry of the request if the versions it depends on are still those read now (`read`:
        version key -> value, one snapshot). An entry stored under the coarse pair (F, A) whose request
        has learned its finer versions is moved onto them: A unchanged since the entry was computed
        means no campaign version moved since then either (a campaign's change moves A first, then its
        C[id]; one that moved C[id] after A was read was committed before the data was read)."""
        entry = self.entries.get(base)
        if entry is None:
            return None
        for key, value in zip(entry.keys, entry.values):
            if read.get(key) != value:
                return None
        if entry.expires < time.monotonic():
            self._drop(base)
            return None
        self.entries.move_to_end(base)
        if learned and entry.keys == coarse and learned != coarse and all(k in read for k in learned):
            entry.keys, entry.values = learned, tuple(read[k] for k in learned)
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

    def learn(self, base: tuple, keys: tuple) -> None:
        if len(self.learned) >= 2 * self.max_entries + 16:
            self.learned.clear()
        self.learned[base] = keys

    def put(self, probe: Probe, body: bytes, content_type: str, depends_on: tuple, coarse: tuple) -> bool:
        """Store the answer under the versions read before it was computed: those it depends on when
        they were all read first, else the coarse pair (F, A), always read, which moves with every change."""
        self.learn(probe.base, depends_on)
        read = dict(zip(probe.keys, probe.values))
        keys = depends_on if all(k in read for k in depends_on) else coarse
        values = tuple(read[k] for k in keys)
        size = len(body) + sum(len(p) for p in probe.base if isinstance(p, (bytes, str))) + ENTRY_OVERHEAD
        if size > self.max_entry_bytes:
            return False
        key = probe.base
        if key in self.entries:
            self._drop(key)
        self.entries[key] = Entry(body, content_type, probe.cost, probe.operation, time.monotonic() + self.ttl_s, size,
                                  keys, values)
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
        self.learned.clear()
        self.bytes = 0

    def stats(self) -> dict:
        return {"entries": len(self.entries), "bytes": self.bytes, "hits": self.hits, "misses": self.misses,
                "bypassed": self.bypassed, "stored": self.stored, "evicted": self.evicted}
