"""A bus listener cancelled while it subscribes stops (broadcaster's cleanup raised KeyError over the
cancellation, the principal-cache listener took it for a bus error and resubscribed forever: a
server's shutdown on Redis hung until it was killed)."""

import asyncio

import pytest

from app.main import _forget_principals_on_bus
from subscriptions.bus import Bus


async def _bus_that_subscribes_slowly() -> Bus:
    bus = Bus("memory://")
    await bus.connect()
    gate = asyncio.Event()

    async def subscribe(channel):  # the Redis SUBSCRIBE round trip, never answered here
        await gate.wait()

    bus.broadcast._backend.subscribe = subscribe
    return bus


async def test_a_subscription_cancelled_while_subscribing_raises_the_cancellation():
    bus = await _bus_that_subscribes_slowly()

    async def listen():
        async with bus.subscribe("topic"):
            pass

    task = asyncio.create_task(listen())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 2)
    await bus.disconnect()


async def test_the_principal_listener_stops_when_cancelled_while_subscribing():
    bus = await _bus_that_subscribes_slowly()
    task = asyncio.create_task(_forget_principals_on_bus(bus))
    await asyncio.sleep(0.05)
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=3)
    assert done, "the listener swallowed its cancellation and kept resubscribing"
    assert task.cancelled()
    await bus.disconnect()


async def test_a_subscriber_still_gets_messages_and_leaves_cleanly():
    bus = Bus("memory://")
    await bus.connect()
    async with bus.subscribe("topic") as subscriber:
        await bus.publish("topic", {"a": 1})
        event = await asyncio.wait_for(subscriber.get(), 2)
        assert event.message == '{"a":1}'
    assert not bus.broadcast._subscribers
    await bus.disconnect()
