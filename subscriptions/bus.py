"""The event bus: publish after commit, to every API instance (broadcaster)."""

from __future__ import annotations

import contextlib
import logging
from typing import AsyncIterator

import orjson
from broadcaster import Broadcast

from subscriptions import topics
from subscriptions.backends import ResilientRedisBackend
from subscriptions.versions import DataVersions

log = logging.getLogger("pulse.bus")


class Bus:
    """broadcaster with our Redis backend (or in-process `memory://`)."""

    def __init__(self, url: str, prefix: str = "") -> None:
        self.url = url
        # Prepended to every channel name (PULSE_CHANNEL_PREFIX): two deployments sharing one Redis
        # (pub/sub ignores the database number) never wake each other.
        self.prefix = prefix
        self.backend = ResilientRedisBackend(url) if url.startswith(("redis://", "rediss://")) else None
        self.broadcast = Broadcast(backend=self.backend) if self.backend else Broadcast(url)
        self.connected = False
        # Per-organization data versions (response cache), in the same Redis as the bus.
        self.versions = DataVersions(url if self.backend else None, prefix)

    @property
    def state(self) -> str:
        if self.backend is None:
            return "in-process" if self.connected else "stopped"
        return "connected" if self.backend.connected.is_set() else "reconnecting"

    def on_reconnect(self, callback) -> None:
        if self.backend is not None:
            self.backend.on_reconnect.append(callback)

    async def connect(self) -> None:
        await self.broadcast.connect()
        self.connected = True

    async def disconnect(self) -> None:
        if self.connected:
            self.connected = False
            await self.broadcast.disconnect()
        await self.versions.close()

    def channel(self, topic: str) -> str:
        """The bus channel of a topic (the deployment's prefix + the topic)."""
        return self.prefix + topic

    @contextlib.asynccontextmanager
    async def subscribe(self, topic: str) -> AsyncIterator:
        """broadcaster's subscriber context manager for a topic.

        broadcaster 0.3.1 registers the subscriber only after the backend's SUBSCRIBE returns, and its
        cleanup assumes it was registered: a subscription cancelled (shutdown) or failing (Redis away)
        while it subscribes raises KeyError from that cleanup instead of the real exception. A
        listener that retries on errors would then swallow its own cancellation and never stop (a
        server's shutdown hung on it). The original exception is raised instead."""
        manager = self.broadcast.subscribe(self.channel(topic))
        try:
            subscriber = await manager.__aenter__()
        except KeyError as exc:
            if isinstance(exc.__context__, BaseException) and not isinstance(exc.__context__, KeyError):
                raise exc.__context__ from None
            raise
        try:
            yield subscriber
        except BaseException as exc:
            if not await manager.__aexit__(type(exc), exc, exc.__traceback__):
                raise
        else:
            await manager.__aexit__(None, None, None)

    async def publish(self, topic: str, message: dict) -> None:
        await self.broadcast.publish(channel=self.channel(topic), message=orjson.dumps(message).decode())


_bus: Bus | None = None


def set_bus(bus: Bus | None) -> None:
    global _bus
    _bus = bus


def get_bus() -> Bus | None:
    return _bus


# Campaign changes audited to touch nothing a cached answer reads besides that one campaign's own
# rows — the campaign, its sends, counters, metrics, spend, budget alerts (graph/core/cache.py SAFE):
# their message moves the campaign's data version only (versions.py). Every other message moves the
# organization's version. Audit (docs/architecture.md, "Response cache"):
# * "sends": ingestion (API, sender, demo) — the batch's sends of that campaign, their counters and
#   rollups, its spend, and its status when the spend reaches the budget (LIVE -> PAUSED); one message
#   per campaign of the batch. The sender's rounds — new sends of that campaign;
# * "status": the campaign's own row (sender pauses and completions, scheduled launches and ends,
#   campaign mutations — which also move the organization's version as mutations);
# * "spend", "budgetAlert": the campaign's spend and its alert rows.
CAMPAIGN_SCOPED = frozenset(("sends", "status", "spend", "budgetAlert"))


async def publish(topic: str, message: dict) -> None:
    """Best effort: a failed publish never fails the committed change. A message on an organization's
    channel announces a committed change of its data: its data version moves first (versions.py)."""
    if _bus is not None and topic.startswith(topics.ORGANIZATION_PREFIX):
        org_id = int(topic[len(topics.ORGANIZATION_PREFIX):])
        campaign_id = message.get("campaignId")
        if message.get("what") in CAMPAIGN_SCOPED and isinstance(campaign_id, int):
            await _bus.versions.bump_campaign(org_id, campaign_id)
        else:
            await _bus.versions.bump(org_id)
    if _bus is None or not _bus.connected:
        return
    try:
        await _bus.publish(topic, message)
    except Exception:  # noqa: BLE001 - the bus must not break writes
        log.warning("publish to %s failed", topic, exc_info=True)


async def budget_alerts_raised(alerts) -> None:
    for alert in alerts:
        await campaign_changed(alert.organization_id, alert.campaign_id, "budgetAlert", alertId=alert.id)


async def campaign_changed(org_id: int, campaign_id: int, what: str, **extra) -> None:
    """One message on the organization's channel; hubs pick what concerns them."""
    message = {"what": what, "organizationId": org_id, "campaignId": campaign_id, **extra}
    await publish(topics.organization(org_id), message)
