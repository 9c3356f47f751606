"""A minimal graphql-transport-ws client over a real socket (the `websockets` library)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import websockets

PROTOCOL = "graphql-transport-ws"


class WsClient:
    def __init__(self, url: str) -> None:
        self.url = url.replace("http://", "ws://") + "/graphql"
        self.ws: Any = None
        self.inbox: dict[str, asyncio.Queue] = {}
        self.reader: asyncio.Task | None = None
        self.closed = asyncio.get_event_loop().create_future()

    async def connect(self, subprotocol: str = PROTOCOL, **kw) -> "WsClient":
        self.ws = await websockets.connect(self.url, subprotocols=[subprotocol], open_timeout=10, **kw)
        return self

    async def init(self, token: str | None, *, expect_ack: bool = True) -> dict | None:
        payload = {"authorization": f"Bearer {token}"} if token else {}
        await self.send({"type": "connection_init", "payload": payload})
        if not expect_ack:
            return None
        message = json.loads(await asyncio.wait_for(self.ws.recv(), 10))
        assert message["type"] == "connection_ack", message
        self.reader = asyncio.create_task(self._read())
        return message

    async def send(self, message: dict) -> None:
        await self.ws.send(json.dumps(message))

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                message = json.loads(raw)
                if message.get("type") == "ping":
                    await self.send({"type": "pong"})
                    continue
                if "id" in message:
                    self.inbox.setdefault(message["id"], asyncio.Queue()).put_nowait(message)
        except websockets.ConnectionClosed:
            pass
        finally:
            if not self.closed.done():
                self.closed.set_result((self.ws.close_code, self.ws.close_reason))

    async def subscribe(self, sid: str, query: str, variables: dict | None = None) -> None:
        self.inbox.setdefault(sid, asyncio.Queue())
        await self.send({"id": sid, "type": "subscribe", "payload": {"query": query, "variables": variables or {}}})

    async def next(self, sid: str, timeout: float = 10) -> dict:
        """The next `next` payload's data for this subscription (fails on error/complete)."""
        message = await asyncio.wait_for(self.inbox.setdefault(sid, asyncio.Queue()).get(), timeout)
        assert message["type"] == "next", message
        assert not message["payload"].get("errors"), message
        return message["payload"]["data"]

    async def message(self, sid: str, timeout: float = 10) -> dict:
        return await asyncio.wait_for(self.inbox.setdefault(sid, asyncio.Queue()).get(), timeout)

    async def until(self, sid: str, predicate, timeout: float = 10) -> dict:
        """Read messages until one satisfies predicate(data); returns it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            data = await self.next(sid, timeout=max(0.01, deadline - loop.time()))
            if predicate(data):
                return data

    def pending(self, sid: str) -> int:
        return self.inbox.setdefault(sid, asyncio.Queue()).qsize()

    def stall(self) -> None:
        """Stop reading: with a small max_queue, TCP back-pressure reaches the server."""
        self.reader.cancel()
        self.reader = None

    async def wait_closed(self, timeout: float = 10) -> tuple[int, str]:
        if self.reader is None:
            try:
                while True:
                    await asyncio.wait_for(self.ws.recv(), timeout)
            except websockets.ConnectionClosed:
                return self.ws.close_code, self.ws.close_reason
        return await asyncio.wait_for(asyncio.shield(self.closed), timeout)

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.reader:
            self.reader.cancel()


async def connect(live_server: str, token: str | None) -> WsClient:
    client = WsClient(live_server)
    await client.connect()
    await client.init(token)
    return client
