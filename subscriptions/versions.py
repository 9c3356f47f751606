"""Data versions: counters that move after every committed change of an organization's data.

The response cache (graph/core/cache.py) stores with each answer the versions it depends on, read
*before* the answer's data was read, and serves it only while they are unchanged: an entry computed
before a change is never served after the change was announced. Three kinds, per organization:

* the organization's version `F` (`key`): moved by every change that is not audited below — every
  mutation except the audited ones (graph/core/execution.py), every bus message that does not name
  an audited campaign change. Every entry depends on it (the fallback);
* one version per campaign `C[id]` (`campaign_key`): moved by the audited changes of that campaign
  (`CAMPAIGN_SCOPED` messages of subscriptions/bus.py: its sends, counters, metrics, spend, status);
* the organization's "any campaign" version `A` (`any_key`): moved together with every `C[id]`, so
  an answer that depends on (F, A) — the coarse dependency of every operation whose campaigns are
  not tracked — is invalidated by every change, audited or not.

Moved by

* every mutation, when it has executed (its transactions committed) and before its answer is sent
  (graph/core/execution.py): F, except for the audited mutations, whose every change is announced
  campaign by campaign on the bus before they return; a client that wrote and then reads never gets
  an answer older than its write;
* every message published on an organization's bus channel (`subscriptions.bus.publish`), before
  the message leaves: the worker's changes (sender rounds, scheduled launches and completions,
  outreach days) move them too.

Shared by every instance in Redis (`{prefix}pulse:dataversion:{org}[:any|:c:{id}]`, INCR / MGET) when
the broadcast URL is redis://…, in process memory otherwise (one instance, worker in process). A
version is the pair (shared counter, this process's own counter): the local part moves with every
bump made here, so a Redis failure during a bump still moves the version this instance reads; a
failed read gives None and the request bypasses the cache.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("pulse.versions")


class DataVersions:
    def __init__(self, redis_url: str | None = None, prefix: str = "") -> None:
        self.redis_url, self.prefix = redis_url, prefix
        self._redis: Any = None
        self._local: dict[str, int] = {}
        self.bumps = 0

    @property
    def shared(self) -> bool:
        return self.redis_url is not None

    def _client(self):
        if self._redis is None and self.redis_url:
            import redis.asyncio as aioredis

            self._redis = aioredis.from_url(self.redis_url, socket_connect_timeout=2, socket_timeout=2)
        return self._redis

    def key(self, org_id: int) -> str:
        """The organization's version F (the fallback every cached answer depends on)."""
        return f"{self.prefix}pulse:dataversion:{org_id}"

    def any_key(self, org_id: int) -> str:
        """The organization's version A: moves with each of its campaigns' versions."""
        return f"{self.prefix}pulse:dataversion:{org_id}:any"

    def campaign_key(self, org_id: int, campaign_id: int) -> str:
        """The version C[id] of one campaign of the organization."""
        return f"{self.prefix}pulse:dataversion:{org_id}:c:{campaign_id}"

    def coarse(self, org_id: int) -> tuple[str, str]:
        """(F, A): moved by every change of the organization's data."""
        return self.key(org_id), self.any_key(org_id)

    def local(self, key: str) -> int:
        """This process's own bumps of one version."""
        return self._local.get(key, 0)

    async def read(self, keys: tuple[str, ...]) -> tuple | None:
        """The versions now, one (shared, local) pair per key; None when they cannot be read (then
        nothing is cached)."""
        local = self._local
        client = self._client()
        if client is None:
            return tuple((0, local.get(k, 0)) for k in keys)
        try:
            shared = await client.mget(keys)
        except Exception:  # noqa: BLE001 - Redis away: serve uncached
            log.warning("data versions %s unreadable; response cache bypassed", keys[:1], exc_info=True)
            return None
        return tuple((int(s or 0), local.get(k, 0)) for s, k in zip(shared, keys))

    async def get(self, org_id: int) -> tuple | None:
        """The organization's version F now (None when unreadable)."""
        got = await self.read((self.key(org_id),))
        return None if got is None else got[0]

    async def _bump(self, keys: tuple[str, ...]) -> None:
        self.bumps += 1
        for k in keys:
            self._local[k] = self._local.get(k, 0) + 1
        client = self._client()
        if client is None:
            return
        try:
            if len(keys) == 1:
                await client.incr(keys[0])
            else:
                pipe = client.pipeline(transaction=False)
                for k in keys:
                    pipe.incr(k)
                await pipe.execute()
        except Exception:  # noqa: BLE001 - the change is committed; other instances' TTL bounds the rest
            log.warning("data versions %s not moved in Redis", keys, exc_info=True)

    async def bump(self, org_id: int) -> None:
        """After a committed change of the organization's data not audited finer (never raises)."""
        await self._bump((self.key(org_id),))

    async def bump_campaign(self, org_id: int, campaign_id: int) -> None:
        """After a committed audited change of one campaign (C[id] and A; never raises)."""
        # A first, then C[id] (in this order in Redis: one pipeline on one connection): a snapshot that
        # shows A unchanged shows every C[id] unchanged too (graph/core/cache.py, ResponseCache.get).
        await self._bump((self.any_key(org_id), self.campaign_key(org_id, campaign_id)))

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None
