"""uvicorn's websockets-sansio protocol, keeping less per open websocket (issue 15 item 5).

An idle subscribed socket is mostly what the server keeps for it. The stock protocol keeps, for
the socket's whole life:

- the handshake's `Request` and `Response` (their header maps: ~3.5 KB), needed only until the
  101 answer is written (the `websockets` parser keeps the request in its generator frame: its
  headers are emptied);
- an `asyncio.Queue` for the app's `receive()` and an `asyncio.Event` for write flow control:
  five `collections.deque`s (~760 B each, a deque allocates a 64-slot block up front), for a
  queue that holds at most one message (reading pauses until the app took it) and an event
  nobody waits on unless the socket's buffer is full.

`PulseWebSocketProtocol` drops the handshake objects once the socket is accepted and uses a
list-based inbox and flag with the same semantics (FIFO, one waiter woken per message; `set()`
wakes every waiter). Everything else is uvicorn's. `pulse serve` and the test server use it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol


class _Inbox:
    """The part of `asyncio.Queue` uvicorn's protocol uses, without the deques."""

    __slots__ = ("_items", "_waiters")

    def __init__(self) -> None:
        self._items: list | None = None
        self._waiters: list[asyncio.Future] | None = None

    def put_nowait(self, item: Any) -> None:
        if self._items is None:
            self._items = [item]
        else:
            self._items.append(item)
        self._wake_one()

    def _wake_one(self) -> None:
        for fut in self._waiters or ():
            if not fut.done():
                fut.set_result(None)
                return

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items) if self._items else 0

    def get_nowait(self) -> Any:
        if not self._items:
            raise asyncio.QueueEmpty
        item = self._items.pop(0)
        if not self._items:
            self._items = None
        return item

    async def get(self) -> Any:
        while not self._items:
            fut = asyncio.get_running_loop().create_future()
            if self._waiters is None:
                self._waiters = []
            self._waiters.append(fut)
            try:
                await fut
            except BaseException:
                if fut.done() and not fut.cancelled() and self._items:
                    self._wake_one()  # woken, then cancelled: the message goes to another waiter
                raise
            finally:
                self._waiters.remove(fut)
                if not self._waiters:
                    self._waiters = None
        return self.get_nowait()


class _Flag:
    """The part of `asyncio.Event` uvicorn's protocol uses, without the deque."""

    __slots__ = ("_value", "_waiters")

    def __init__(self, value: bool = False) -> None:
        self._value = value
        self._waiters: list[asyncio.Future] | None = None

    def is_set(self) -> bool:
        return self._value

    def set(self) -> None:
        if self._value:
            return
        self._value = True
        waiters, self._waiters = self._waiters, None
        for fut in waiters or ():
            if not fut.done():
                fut.set_result(True)

    def clear(self) -> None:
        self._value = False

    async def wait(self) -> bool:
        if self._value:
            return True
        fut = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(fut)
        try:
            await fut
            return True
        finally:
            if self._waiters is not None and fut in self._waiters:
                self._waiters.remove(fut)


class PulseWebSocketProtocol(WebSocketsSansIOProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = _Inbox()  # type: ignore[assignment]
        self.writable = _Flag(True)  # type: ignore[assignment]

    async def send(self, message: Any) -> None:
        await super().send(message)
        if self.handshake_complete and getattr(self, "response", None) is not None:
            # The 101 answer (or a refusal) is written: the handshake's request and response are
            # never read again. The parser generator of `websockets` keeps the request in its
            # frame for the connection's life: its header map is emptied (the ASGI scope has its
            # own copy of the headers, which stays).
            for done in (self.request, self.response):
                headers = getattr(done, "headers", None)
                if headers is not None:
                    headers.clear()
            self.request = self.response = None  # type: ignore[assignment]
