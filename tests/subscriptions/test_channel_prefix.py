"""Two deployments on one Redis (PULSE_CHANNEL_PREFIX) never wake each other; pub/sub ignores the
database number, so the prefix is what separates them. On a real Redis."""

import asyncio
import uuid

import pytest
import redis.asyncio as aioredis

from subscriptions import topics
from subscriptions.bus import Bus
from tests.conftest import REDIS_URL

pytestmark = pytest.mark.skipif(not REDIS_URL, reason="needs Redis (PULSE_TEST_REDIS_URL)")


async def _next(subscriber, timeout: float):
    try:
        return await asyncio.wait_for(subscriber.get(), timeout)
    except asyncio.TimeoutError:
        return None


async def test_deployments_with_different_prefixes_do_not_wake_each_other():
    tag = uuid.uuid4().hex[:6]
    # Same Redis server, even different database numbers: pub/sub is server-wide.
    staging = Bus(REDIS_URL, prefix=f"staging-{tag}:")
    staging_other_instance = Bus(REDIS_URL.rsplit("/", 1)[0] + "/3", prefix=f"staging-{tag}:")
    production = Bus(REDIS_URL.rsplit("/", 1)[0] + "/3", prefix=f"production-{tag}:")
    for bus in (staging, staging_other_instance, production):
        await bus.connect()
    raw = aioredis.from_url(REDIS_URL)
    try:
        topic = topics.organization(42)
        async with staging.subscribe(topic) as subscriber:
            channels = {c.decode() for c in await raw.pubsub_channels(f"*{tag}*")}
            assert channels == {f"staging-{tag}:{topic}"}
            await production.publish(topic, {"what": "credits", "organizationId": 42, "from": "production"})
            assert await _next(subscriber, 0.7) is None  # the other deployment's message never arrives
            await staging_other_instance.publish(topic, {"what": "credits", "organizationId": 42, "from": "staging"})
            event = await _next(subscriber, 5)
            assert event is not None and '"from":"staging"' in event.message
    finally:
        await raw.aclose()
        for bus in (staging, staging_other_instance, production):
            await bus.disconnect()
