"""Broadcaster backends we own.

broadcaster 0.3.1's Redis backend drops the first subscription's messages on
a fresh process, never reconnects after Redis restarts, and queues without
bound. `ResilientRedisBackend` fixes the three:

- `subscribe()` returns only once Redis confirmed the SUBSCRIBE, so a change
  published after it returns is always received;
- one listener task owns the pub/sub connection: on any connection error it
  reconnects with backoff, resubscribes every channel, and calls the
  `on_reconnect` callbacks so that subscribers get fresh snapshots (messages
  published during the outage are lost by Redis pub/sub itself);
- the hand-off queue is bounded; on overflow the oldest message is dropped
  and a resync (the same callbacks) is requested, since our messages are
  "something changed" hints whose loss a fresh snapshot repairs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Awaitable, Callable

from broadcaster._backends.base import BroadcastBackend
from broadcaster._base import Event
from redis import asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger("pulse.bus")

Callback = Callable[[], Awaitable[None] | None]
CONNECTION_ERRORS = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError, asyncio.TimeoutError)


class ResilientRedisBackend(BroadcastBackend):
    def __init__(self, url: str, *, queue_size: int = 10_000, max_backoff: float = 2.0) -> None:
        self.url = url
        self._channels: set[str] = set()
        self._queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=queue_size)
        self._publisher = aioredis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5,
                                                  retry_on_timeout=False)
        self._pubsub: Any = None
        self._listener: asyncio.Task | None = None
        self._pending: dict[str, asyncio.Future] = {}
        self._wake = asyncio.Event()
        self._max_backoff = max_backoff
        self.connected = asyncio.Event()
        self.reconnects = 0
        self.on_reconnect: list[Callback] = []

    # -- BroadcastBackend -------------------------------------------------

    async def connect(self) -> None:
        self._listener = asyncio.create_task(self._run(), name="pulse-redis-listener")
        # Do not block start-up on a down Redis: /readyz reports it.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.connected.wait(), timeout=5)

    async def disconnect(self) -> None:
        if self._listener is not None:
            # redis-py can swallow a cancellation inside its health-check PING: cancel again
            # until the task really stops, and never wait for it without a bound.
            for _ in range(20):
                if self._listener.done():
                    break
                self._listener.cancel()
                await asyncio.wait({self._listener}, timeout=0.25)
            if self._listener.done():
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    self._listener.result()
        await self._close_pubsub()
        await self._publisher.aclose()

    async def subscribe(self, channel: str) -> None:
        self._channels.add(channel)
        if not self.connected.is_set():
            return  # the listener subscribes everything when it (re)connects
        future = self._pending.setdefault(channel, asyncio.get_running_loop().create_future())
        try:
            await self._pubsub.subscribe(channel)
            self._wake.set()
            await asyncio.wait_for(asyncio.shield(future), timeout=5)
        except CONNECTION_ERRORS:
            self._pending.pop(channel, None)
            log.warning("subscribe %s failed; the listener resubscribes on reconnect", channel)

    async def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)
        if self.connected.is_set() and self._pubsub is not None:
            with contextlib.suppress(*CONNECTION_ERRORS):
                await self._pubsub.unsubscribe(channel)

    async def publish(self, channel: str, message: Any) -> None:
        try:
            await self._publisher.publish(channel, message)
        except CONNECTION_ERRORS:
            # One retry on a fresh connection (the pool reconnects lazily).
            await self._publisher.publish(channel, message)

    async def next_published(self) -> Event:
        return await self._queue.get()

    # -- listener ---------------------------------------------------------

    async def _close_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    async def _run(self) -> None:
        backoff = 0.05
        ever_connected = False
        while True:
            try:
                client = aioredis.Redis.from_url(self.url, socket_connect_timeout=2, socket_keepalive=True,
                                                 health_check_interval=2)
                pubsub = client.pubsub()
                await client.ping()
                self._pubsub = pubsub
                channels = sorted(self._channels)
                if channels:
                    await pubsub.subscribe(*channels)
                    await self._await_confirmations(pubsub, set(channels))
                self.connected.set()
                backoff = 0.05
                if ever_connected:
                    self.reconnects += 1
                    log.info("redis pub/sub reconnected; resubscribed %d channels", len(channels))
                    await self._fire(self.on_reconnect)
                ever_connected = True
                await self._read(pubsub)
            except asyncio.CancelledError:
                raise
            except CONNECTION_ERRORS as exc:
                if self.connected.is_set():
                    log.warning("redis pub/sub connection lost: %s", exc)
            except Exception:  # noqa: BLE001 - never let the listener die
                log.exception("redis pub/sub listener error")
            self.connected.clear()
            for future in self._pending.values():
                if not future.done():
                    future.set_result(False)  # the channel is resubscribed on reconnect
            self._pending.clear()
            await self._close_pubsub()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._max_backoff)

    async def _await_confirmations(self, pubsub, channels: set[str]) -> None:
        deadline = asyncio.get_running_loop().time() + 5
        while channels and asyncio.get_running_loop().time() < deadline:
            message = await pubsub.get_message(timeout=1.0)
            if message is None:
                continue
            self._handle(message)
            if message["type"] == "subscribe":
                channels.discard(_text(message["channel"]))

    async def _read(self, pubsub) -> None:
        task = asyncio.current_task()
        while True:
            if task is not None and task.cancelling():
                raise asyncio.CancelledError  # a cancellation swallowed by the client library
            if not pubsub.subscribed:
                # Nothing to read until a subscribe() wakes us (checking the link meanwhile).
                self._wake.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=2)
                if not pubsub.subscribed:
                    await pubsub.ping()
                    await pubsub.get_message(timeout=0.1)
                continue
            message = await pubsub.get_message(timeout=1.0)
            if message is not None:
                self._handle(message)

    def _handle(self, message: dict) -> None:
        kind = message["type"]
        if kind == "subscribe":
            future = self._pending.pop(_text(message["channel"]), None)
            if future is not None and not future.done():
                future.set_result(True)
        elif kind == "message":
            event = Event(channel=_text(message["channel"]), message=_text(message["data"]))
            if self._queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    self._queue.get_nowait()
                asyncio.get_running_loop().create_task(self._fire(self.on_reconnect))
            self._queue.put_nowait(event)

    @staticmethod
    async def _fire(callbacks: list[Callback]) -> None:
        for callback in list(callbacks):
            try:
                result = callback()
                if asyncio.iscoroutine(result):
                    await result
            except Exception:  # noqa: BLE001
                log.exception("reconnect callback failed")


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
