"""The worker loop: queue messages at a steady rate, hand them to providers,
start and complete campaigns on time. Run many (`pulse worker`) on PostgreSQL;
the embedded default runs one inside the API process."""

from __future__ import annotations

import asyncio
import logging
import time

from app.db import OutageLog, is_retryable, is_unavailable
from app.campaigns.service import promote_due
from app.sender.providers import build_providers
from app.sender.service import complete_finished, dispatch_batch, expire_receipts, queue_batch
from app.outreach.service import tick as outreach_tick
from app.settings import Settings
from app.wiring import wire

log = logging.getLogger("pulse.worker")


def _report(what: str, exc: BaseException) -> None:
    """A lock conflict with another worker rolls the round back; the next tick redoes it."""
    if is_retryable(exc):
        log.warning("%s rolled back after a lock conflict (%s); retried next tick", what, type(exc).__name__)
    else:
        log.exception("%s failed", what, exc_info=exc)


class Worker:
    def __init__(self, settings: Settings) -> None:
        wire()
        self.settings = settings
        self.providers = build_providers(settings)
        self.queued = 0
        self.handed = 0
        self.outage = OutageLog(log, "worker round")  # a dead database: logged once per outage
        self._down = False

    def _report(self, what: str, exc: BaseException) -> None:
        if is_unavailable(exc):
            self._down = True
            self.outage.failed(exc)
        else:
            _report(what, exc)

    async def tick(self) -> int:
        """One round; returns how much work it did."""
        s = self.settings
        per_tick = max(1, min(s.sender_batch, int(s.sender_rate * s.sender_tick_s)))
        work = 0
        try:  # a failed queueing round must not stop hand-offs (and the other way round)
            queued = await queue_batch(per_tick)
            self.queued += queued.queued
            work += queued.queued + queued.skipped
        except Exception as exc:  # noqa: BLE001
            self._report("queueing round", exc)
        try:
            dispatched = await dispatch_batch(self.providers, s.sender_batch, lease_s=s.dispatch_lease_s,
                                              max_attempts=s.dispatch_max_attempts, backoff_s=s.dispatch_backoff_s)
            self.handed += dispatched.handed
            work += dispatched.handed + dispatched.retried + dispatched.failed
        except Exception as exc:  # noqa: BLE001
            self._report("dispatch round", exc)
        return work

    async def maintain(self) -> None:
        await promote_due()
        await expire_receipts(self.settings.receipt_timeout_s)
        await complete_finished()
        await outreach_tick()  # outreach: local midnight moves due steps to action required

    async def run(self, stop: asyncio.Event) -> None:
        last_maintenance = 0.0
        while not stop.is_set():
            started = time.monotonic()
            self._down = False
            try:
                await self.tick()
                if started - last_maintenance > 2:
                    await self.maintain()
                    last_maintenance = started
            except Exception as exc:  # noqa: BLE001 - a bad round must not stop the sender
                self._report("worker round", exc)
            if not self._down:
                self.outage.ok()
            elapsed = time.monotonic() - started
            try:
                await asyncio.wait_for(stop.wait(), timeout=max(0.0, self.settings.sender_tick_s - elapsed))
            except asyncio.TimeoutError:
                pass
        for provider in self.providers.values():
            await provider.close()
