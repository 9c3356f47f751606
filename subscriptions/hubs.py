"""Per-topic hubs: one bus subscription per organization and process, one
snapshot computation per change and process, whatever the number of local
subscribers; each subscriber's permission re-checked for every message.

    bus (org channel) ──▶ Feed ──notify──▶ Hub (campaign KPIs, dashboard, alerts, send stream)
                                             │ compute once (coalesced), check tokens once
                                             ▼
                                  Sub, Sub, Sub … (bounded; KPI subs keep only the latest value)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Hashable

import orjson

from subscriptions import metrics
from subscriptions import topics

log = logging.getLogger("pulse.hubs")


class SubscriptionClosed(Exception):
    """The subscriber may no longer receive messages (token revoked, object gone)."""


class SlowConsumer(Exception):
    """A stream subscriber fell too far behind; it must reconnect and resume by cursor."""


class SourceUnavailable(Exception):
    """The hub's data source (the database) is unavailable: the subscriber's socket is closed so the
    client reconnects later (its cause is the database error)."""


class Sub:
    """One local subscriber: a bounded mailbox (KPI topics: the latest value only)."""

    __slots__ = ("principal", "latest_only", "limit", "accept", "items", "waiter", "error", "overflow", "last",
                 "version", "on_overflow", "deliver", "cause")

    def __init__(self, principal: Any, *, latest_only: bool, limit: int = 1000, accept=None) -> None:
        self.principal = principal
        self.latest_only = latest_only
        self.limit = limit
        self.accept = accept or _accept_all
        # KPI topics hold one value (no deque: thousands of idle subscribers each keep one).
        self.items: deque | None = None if latest_only else deque()
        # A future only while the consumer waits (lighter than an asyncio.Event per subscriber).
        self.waiter: asyncio.Future | None = None
        self.error: str | None = None
        self.overflow = False
        self.last: Any = _NOTHING  # KPI topics: the fingerprint of the last snapshot given
        # KPI topics: the hub version of the last snapshot given (AWAITING until its first value is
        # read): a round never offers a value computed before the one the subscriber has.
        self.version: float = AWAITING
        # Called once when the mailbox overflows: the consumer may be blocked on
        # a stalled socket and never come back to read the flag.
        self.on_overflow: Callable[[], Any] | None = None
        # KPI topics: writes a value to the socket at once if it can without waiting (True),
        # set by the consumer while it waits. Saves waking the consumer's task for each value.
        self.deliver: Callable[[Any], bool] | None = None
        self.cause: BaseException | None = None  # set with `error` when the database is unavailable

    def offer(self, item: Any) -> None:
        if self.overflow:
            return
        if self.latest_only:
            if self.deliver is not None and self.items is None and self.waiter is not None \
                    and not self.waiter.done() and self._deliver_now(item):
                return  # the consumer was idle and the value is on its socket already
            self.items = item  # type: ignore[assignment]  (the held value replaces the previous one)
        elif len(self.items) >= self.limit:
            self.overflow = True
            self.items.clear()
            self._wake()
            if self.on_overflow is not None:
                self.on_overflow()
            return
        else:
            self.items.append(item)
        self._wake()

    def _deliver_now(self, item: Any) -> bool:
        try:
            return self.deliver(item)
        except Exception:  # noqa: BLE001 - never let one subscriber break a hub's round
            log.exception("direct delivery failed; the subscriber's task takes the value")
            return False

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def pending(self) -> int:
        """Values waiting to be taken."""
        if self.latest_only:
            return int(self.items is not None)
        return len(self.items)

    def fail(self, message: str, cause: BaseException | None = None) -> None:
        self.error, self.cause = message, cause
        self._wake()

    async def next(self) -> Any:
        while True:
            if self.overflow:
                raise SlowConsumer("subscriber fell behind")
            if self.latest_only:
                if self.items is not None:
                    item, self.items = self.items, None
                    return item
            elif self.items:
                return self.items.popleft()
            if self.error:
                if self.cause is not None:
                    raise SourceUnavailable(self.error) from self.cause
                raise SubscriptionClosed(self.error)
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None


_NOTHING = object()
AWAITING = float("inf")  # a KPI subscriber whose first value is being read: rounds skip it


def _accept_all(_item: Any) -> bool:
    return True


class Hub:
    """Base hub: coalesces notifications into rounds, at most one per interval."""

    kind = "hub"

    def __init__(self, registry: "Registry", key: Hashable, org_id: int) -> None:
        self.registry = registry
        self.key = key
        self.org_id = org_id
        self.subs: set[Sub] = set()
        self.dirty = asyncio.Event()
        self.task: asyncio.Task | None = None
        self.last_round = 0.0

    def relevant(self, message: dict) -> bool:
        return True

    def notify(self, message: dict) -> None:
        if self.relevant(message):
            self.dirty.set()

    def resync(self) -> None:
        self.dirty.set()

    def start(self) -> None:
        self.task = asyncio.create_task(self._loop(), name=f"pulse-hub-{self.key}")

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task

    async def moved(self) -> bool:
        """Reconciliation: whether the topic may have changed without a bus message (a lost publish).
        By default a round runs (it offers nothing when nothing changed); a hub with a cheap version
        probe compares it instead."""
        return True

    async def _reconcile(self) -> None:
        """Wait for a change; every `reconcile_interval` s without one, check whether the topic moved."""
        while not self.dirty.is_set():
            try:
                await asyncio.wait_for(self.dirty.wait(), timeout=self.registry.reconcile_interval)
                return
            except asyncio.TimeoutError:
                pass
            if not self.subs:
                continue
            try:
                if await self.moved():
                    self.dirty.set()
                self.registry.recovered()
            except Exception as exc:  # noqa: BLE001 - the next interval tries again
                if not self.registry.outage(self, exc):
                    log.exception("hub %s reconciliation failed", self.key)

    async def _loop(self) -> None:
        while True:
            await self._reconcile()
            wait = self.last_round + self.registry.min_interval - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self.dirty.clear()
            self.last_round = time.monotonic()
            had_subs = bool(self.subs)
            try:
                await self.round()
            except Exception as exc:  # noqa: BLE001 - a failed round is retried on the next change
                if not self.registry.outage(self, exc):
                    log.exception("hub %s round failed", self.key)
                self.dirty.set()
                await asyncio.sleep(1)
            else:
                if had_subs:
                    self.registry.recovered()

    async def round(self) -> None:
        raise NotImplementedError

    async def live_subs(self, subs: list[Sub] | None = None) -> list[Sub]:
        """Subscribers (all, or `subs`) whose access still holds (the registry's `check_access`: token
        active, member still with the role and scope it subscribed with; one query per round); the
        others are closed."""
        subs = list(self.subs) if subs is None else subs
        reasons = await self.registry.check_access([s.principal for s in subs])
        live = []
        for s, reason in zip(subs, reasons):
            if reason is None:
                live.append(s)
            else:
                s.fail(reason)
        return live


class SnapshotHub(Hub):
    """A KPI topic: computes the snapshot once per round and offers it to every allowed subscriber.

    Values only move forward. A hub's computes never overlap (each reads the database after the
    previous one finished, see `read`) and each is numbered when it starts (`version`), so a higher
    version is a later view of the database. Each subscriber remembers the version it was given
    (`Sub.version`), and a round offers its value only to subscribers holding an older one; a
    newcomer waiting for its first value is skipped by rounds until that value is read."""

    kind = "snapshot"

    def __init__(self, registry, key, org_id, compute: Callable[[], Awaitable[Any]],
                 allowed: Callable[[Any, Any], bool], relevant: Callable[[dict], bool],
                 fingerprint: Callable[[Any], Any] = lambda snapshot: snapshot,
                 probe: Callable[[], Awaitable[Any]] | None = None) -> None:
        super().__init__(registry, key, org_id)
        self.compute_fn = compute
        self.allowed = allowed
        self._relevant = relevant
        self.fingerprint = fingerprint
        self.probe = probe  # reconciliation: a cheap version of the topic (see `moved`)
        self._probed: Any = _NOTHING
        self.snapshot: Any = None
        self.last_fingerprint: Any = _NOTHING
        self.force = False
        self.version = 0  # the number of the last compute started
        self._computing = asyncio.Lock()
        self._queued: asyncio.Future | None = None  # the next compute, not started yet: readers share it
        self._queued_subs: list[Sub] = []  # newcomers whose first value that compute gives

    def resync(self) -> None:
        self.force = True  # after a reconnect every subscriber gets a fresh snapshot, changed or not
        super().resync()

    def relevant(self, message: dict) -> bool:
        return self._relevant(message)

    async def read(self, newcomer: Sub | None = None) -> tuple[int, Any]:
        """(version, snapshot) from a compute that starts after this call (a change may be committed
        whose bus message has not arrived yet). Callers that arrive while no compute is queued queue
        one; the others share it. `newcomer` is given that value as its first (version and
        fingerprint recorded when the compute ends, before any later round can run)."""
        fut = self._queued
        if fut is None:
            fut = self._queued = asyncio.get_running_loop().create_future()
            fut.add_done_callback(_retrieve)
            self._queued_subs = []
            if newcomer is not None:
                self._queued_subs.append(newcomer)
            return await self._lead(fut)
        if newcomer is not None:
            self._queued_subs.append(newcomer)
        try:
            return await asyncio.shield(fut)
        except _LeaderGone:
            return await self.read(newcomer)

    async def _lead(self, fut: asyncio.Future) -> tuple[int, Any]:
        try:
            async with self._computing:
                if self._queued is fut:
                    self._queued = None  # from now on, callers queue for the next compute
                newcomers, self._queued_subs = self._queued_subs, []
                self.version += 1
                version = self.version
                snapshot = await self.compute_fn()
                self.registry.recovered()
                metrics.SNAPSHOTS.labels(self.key[0]).inc()
                fingerprint = self._shared_fingerprint(self.fingerprint(snapshot)) if snapshot is not None else None
                for s in newcomers:
                    s.version, s.last = version, fingerprint
        except asyncio.CancelledError:
            if self._queued is fut:
                self._queued = None
            if not fut.done():
                fut.set_exception(_LeaderGone())  # the others compute again
            raise
        except BaseException as exc:
            if self._queued is fut:
                self._queued = None
            if not fut.done():
                fut.set_exception(exc)
            raise
        fut.set_result((version, snapshot))
        return version, snapshot

    async def moved(self) -> bool:
        if self.probe is None:
            return True
        probed = await self.probe()
        moved, self._probed = probed != self._probed, probed
        return moved

    async def compute(self) -> Any:
        self.snapshot = (await self.read())[1]
        return self.snapshot

    async def current(self, sub: Sub | None = None) -> Any:
        """The value a newcomer starts with, read now (a change may be committed whose bus
        message has not arrived yet), and recorded as what `sub` has."""
        return (await self.read(sub))[1]

    def _shared_fingerprint(self, fingerprint: Any) -> Any:
        """The hub's own copy when equal: thousands of subscribers hold one fingerprint, not one each."""
        if fingerprint != self.last_fingerprint:
            self.last_fingerprint = fingerprint
        return self.last_fingerprint

    async def round(self) -> None:
        if not self.subs:
            return
        version, snapshot = await self.read()
        self.snapshot = snapshot
        # Another scope's change can wake this hub: a subscriber is not sent a value it
        # already has (each subscriber remembers the last one it was given).
        fingerprint = self._shared_fingerprint(self.fingerprint(snapshot)) if snapshot is not None else None
        force, self.force = self.force, False
        for s in await self.live_subs():
            if s.version >= version:
                continue  # it has a later value already (or is reading its first one)
            if snapshot is None or not self.allowed(s.principal, snapshot):
                s.fail("not found")
            elif force or s.last != fingerprint:
                s.version, s.last = version, fingerprint
                s.offer(snapshot)
            else:
                s.version = version


class _LeaderGone(Exception):
    """The caller running a shared compute was cancelled: the others compute again."""


def _retrieve(fut: asyncio.Future) -> None:
    if not fut.cancelled():
        fut.exception()  # a failure is raised to every reader; never "exception was never retrieved"


class StreamHub(Hub):
    """An event stream: `fetch(last_id)` returns new items (with `.id`) since the last round."""

    kind = "stream"

    def __init__(self, registry, key, org_id, fetch: Callable[[int], Awaitable[list]], head: int,
                 allowed: Callable[[Any, Any], bool], relevant: Callable[[dict], bool]) -> None:
        super().__init__(registry, key, org_id)
        self.fetch = fetch
        self.head = head
        self.allowed = allowed
        self._relevant = relevant

    def relevant(self, message: dict) -> bool:
        return self._relevant(message)

    async def round(self) -> None:
        checked: dict[Sub, bool] = {}  # access of each subscriber, checked once per round
        while True:  # drain: a large batch spans several pages
            items = await self.fetch(self.head)
            if not items:
                return
            self.head = max(item.id for item in items)
            metrics.SNAPSHOTS.labels(self.key[0]).inc()
            # Taken right after the head moved: whoever joined before gets this page from the round
            # (a subscriber that joined mid-round too), whoever joins later replays up to the new head.
            subs = list(self.subs)
            new = [s for s in subs if s not in checked]
            if new:
                for s in new:
                    checked[s] = False
                for s in await self.live_subs(new):
                    checked[s] = True
            for s in subs:
                if not checked[s]:
                    continue
                for item in items:
                    if self.allowed(s.principal, item) and s.accept(item):
                        s.offer(item)


class Feed:
    """The process's one subscription to an organization's bus channel."""

    def __init__(self, registry: "Registry", org_id: int) -> None:
        self.registry = registry
        self.org_id = org_id
        self.hubs: set[Hub] = set()
        self.ready = asyncio.Event()
        self.task = asyncio.create_task(self._run(), name=f"pulse-feed-{org_id}")

    async def _run(self) -> None:
        async with self.registry.bus.subscribe(topics.organization(self.org_id)) as subscriber:
            self.ready.set()
            async for event in subscriber:
                if event is None:
                    break
                try:
                    message = orjson.loads(event.message)
                except orjson.JSONDecodeError:
                    continue
                if message.get("organizationId") != self.org_id:
                    continue
                for hub in list(self.hubs):
                    hub.notify(message)


@dataclass
class Registry:
    """All hubs and feeds of this process (safe to lose: rebuilt by subscribers)."""

    bus: Any
    #: (principals of live subscribers) -> for each, None while it may still receive messages, else
    #: the reason it may not. The bus knows no domain: the application passes tenancy's check.
    check_access: Callable[[list[Any]], Awaitable[list[str | None]]]
    min_interval: float = 0.25
    stream_limit: int = 5000  # queued stream items per subscriber before it is closed as too slow
    reconcile_interval: float = 5.0  # seconds between a hub's checks for a change without a bus message
    #: Whether an exception means the database is unavailable (the application passes app.db's test):
    #: then the hub's subscribers are ended (their sockets closed with 1013) and the failure is
    #: logged once per outage, not every round.
    is_outage: Callable[[BaseException], bool] = lambda _exc: False

    def __post_init__(self) -> None:
        self.hubs: dict[Hashable, Hub] = {}
        self.feeds: dict[int, Feed] = {}
        # One lock per organization: joining waits for that organization's feed to be subscribed,
        # which must not hold up other organizations' subscribers (locks are tiny; kept).
        self._org_locks: dict[int, asyncio.Lock] = {}
        self.bus.on_reconnect(self.resync_all)
        self.down_since: float | None = None  # monotonic time of the outage's first failure

    def outage(self, hub: Hub, exc: BaseException) -> bool:
        """A hub's database work failed. When the database is unavailable, end every subscriber of that
        hub (SourceUnavailable: their sockets are closed with 1013, clients reconnect later), log it once
        per outage, and return True; False for any other failure (the caller logs it)."""
        if not self.is_outage(exc):
            return False
        if self.down_since is None:
            self.down_since = time.monotonic()
            log.error("hub rounds failed: the database is unavailable (%s: %s); their subscribers are closed "
                      "with 1013; logged once until it recovers", type(exc).__name__, exc)
        for s in list(hub.subs):
            s.fail("the database is unavailable; reconnect later", exc)
        return True

    def recovered(self) -> None:
        if self.down_since is not None:
            log.warning("hub rounds recovered after %.1f s", time.monotonic() - self.down_since)
            self.down_since = None

    def resync_all(self) -> None:
        for hub in list(self.hubs.values()):
            hub.resync()


    def _org_lock(self, org_id: int) -> asyncio.Lock:
        lock = self._org_locks.get(org_id)
        if lock is None:
            lock = self._org_locks[org_id] = asyncio.Lock()
        return lock

    async def join(self, key: Hashable, org_id: int, make: Callable[[], Awaitable[Hub]], sub: Sub) -> Hub:
        async with self._org_lock(org_id):
            hub = self.hubs.get(key)
            if hub is None:
                feed = self.feeds.get(org_id)
                if feed is None or feed.task.done():  # a feed that died (e.g. bus error) is replaced
                    feed = self.feeds[org_id] = Feed(self, org_id)
                try:
                    # Subscribed on the bus before any snapshot is computed: nothing slips between.
                    await asyncio.wait_for(feed.ready.wait(), timeout=10)
                    hub = await make()
                except BaseException:
                    # No hub came of it: a feed that serves no hub is not left behind.
                    if not feed.hubs and self.feeds.get(org_id) is feed:
                        del self.feeds[org_id]
                        feed.task.cancel()
                    raise
                self.hubs[key] = hub
                feed.hubs.add(hub)
                hub.start()
            hub.subs.add(sub)
            metrics.SUBSCRIPTIONS.inc()
            return hub

    async def leave(self, hub: Hub, sub: Sub) -> None:
        metrics.SUBSCRIPTIONS.dec()
        async with self._org_lock(hub.org_id):
            hub.subs.discard(sub)
            if hub.subs or self.hubs.get(hub.key) is not hub:
                return
            del self.hubs[hub.key]
            feed = self.feeds.get(hub.org_id)
            if feed is not None:
                feed.hubs.discard(hub)
                if not feed.hubs:
                    del self.feeds[hub.org_id]
                    feed.task.cancel()
        await hub.stop()

    async def close(self) -> None:
        for hub in list(self.hubs.values()):
            for s in hub.subs:
                s.fail("server shutting down")
            await hub.stop()
        for feed in list(self.feeds.values()):
            feed.task.cancel()
        self.hubs.clear()
        self.feeds.clear()


_registry: Registry | None = None


def set_registry(registry: Registry | None) -> None:
    global _registry
    _registry = registry


def get_registry() -> Registry:
    if _registry is None:
        raise RuntimeError("subscriptions are not running")
    return _registry
