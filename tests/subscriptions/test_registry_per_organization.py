"""The hub registry (subscriptions/hubs.py), issue 10 item 13: waiting for one organization's feed
holds up no other organization, and a hub factory that fails leaves no feed behind."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from subscriptions.hubs import Registry, SnapshotHub, Sub


class _Subscriber:
    def __aiter__(self):
        return self

    async def __anext__(self):
        await asyncio.Event().wait()  # no message ever comes


class _Bus:
    """Organization 1's subscription never completes (a stuck broker); the others at once."""

    def __init__(self) -> None:
        self.stuck = asyncio.Event()

    def on_reconnect(self, _callback) -> None:
        pass

    @contextlib.asynccontextmanager
    async def subscribe(self, channel: str):
        if channel.endswith(".1"):
            await self.stuck.wait()
        yield _Subscriber()


async def _all_allowed(principals):
    return [None] * len(principals)


def _hub_factory(registry: Registry, org_id: int):
    async def compute():
        return 0

    async def make():
        return SnapshotHub(registry, ("dashboard", org_id), org_id, compute, lambda _p, _s: True, lambda _m: True)
    return make


async def test_a_stuck_feed_of_one_organization_holds_up_no_other():
    registry = Registry(_Bus(), _all_allowed, min_interval=0)
    stuck = asyncio.create_task(registry.join(("dashboard", 1), 1, _hub_factory(registry, 1), Sub("a", latest_only=True)))
    await asyncio.sleep(0.05)  # organization 1 is waiting for its feed
    hub = await asyncio.wait_for(
        registry.join(("dashboard", 2), 2, _hub_factory(registry, 2), Sub("b", latest_only=True)), timeout=2)
    assert hub.org_id == 2 and not stuck.done()
    stuck.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stuck
    assert 1 not in registry.feeds  # the cancelled join left no feed behind
    await registry.close()


async def test_a_failing_hub_factory_leaves_no_feed():
    registry = Registry(_Bus(), _all_allowed, min_interval=0)

    async def broken():
        raise RuntimeError("snapshot query failed")

    with pytest.raises(RuntimeError):
        await registry.join(("campaign", 7), 3, broken, Sub("c", latest_only=True))
    assert 3 not in registry.feeds and ("campaign", 7) not in registry.hubs
    # the next subscriber starts cleanly
    hub = await registry.join(("campaign", 7), 3, _hub_factory(registry, 3), Sub("d", latest_only=True))
    assert registry.feeds[3].hubs == {hub}
    await registry.close()
