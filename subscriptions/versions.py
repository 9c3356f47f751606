"""Data versions: one counter per organization that moves after every committed change of its data.

The response cache (graph/core/cache.py) keys every entry on the organization's version read when
the request starts, so an entry computed before a change is never served after the change was
announced. Moved by

* every mutation, when it has executed (its transactions committed) and before its answer is sent
  (graph/core/execution.py), whatever the transport: a client that wrote and then reads never gets
  an answer older than its write;
* every message published on an organization's bus channel (`subscriptions.bus.publish`), before
  the message leaves: the worker's changes (sender rounds, scheduled launches and completions,
  outreach days) move it too.

Shared by every instance in Redis (`{prefix}pulse:dataversion:{org}`, INCR / GET) when the broadcast
URL is redis://…, in process memory otherwise (one instance, worker in process). A version is the
pair (shared counter, this process's own counter): the local part moves with every bump made here,
so a Redis failure during a bump still moves the version this instance reads; a failed read gives
None and the request bypasses the cache.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("pulse.versions")


class DataVersions:
    def __init__(self, redis_url: str | None = None, prefix: str = "") -> None:
        self.redis_url, self.prefix = redis_url, prefix
        self._redis: Any = None
        self._local: dict[int, int] = {}
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
        """The Redis key of the organization's shared counter."""
        return f"{self.prefix}pulse:dataversion:{org_id}"

    def local(self, org_id: int) -> int:
        """This process's own bumps of the organization."""
        return self._local.get(org_id, 0)

    async def get(self, org_id: int) -> tuple | None:
        """The organization's version now; None when it cannot be read (then nothing is cached)."""
        local = self._local.get(org_id, 0)
        client = self._client()
        if client is None:
            return (0, local)
        try:
            shared = await client.get(self.key(org_id))
        except Exception:  # noqa: BLE001 - Redis away: serve uncached
            log.warning("data version of organization %s unreadable; response cache bypassed", org_id,
                        exc_info=True)
            return None
        return (int(shared or 0), local)

    async def bump(self, org_id: int) -> None:
        """After a committed change of the organization's data (never raises)."""
        self.bumps += 1
        self._local[org_id] = self._local.get(org_id, 0) + 1
        client = self._client()
        if client is None:
            return
        try:
            await client.incr(self.key(org_id))
        except Exception:  # noqa: BLE001 - the change is committed; other instances' TTL bounds the rest
            log.warning("data version of organization %s not moved in Redis", org_id, exc_info=True)

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None
