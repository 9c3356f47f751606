"""One HTTP request to an ASGI application, in process (no network, no HTTP client): what the
in-process benches (`bench.peer.inproc`, `bench.peer.http_path`, `bench.ingest_small`) call.

Depends on nothing but asyncio, so `bench.ingest_small --compare` can load this file from its own
checkout while the product code (and the rest of `bench`) comes from another one."""

from __future__ import annotations

import asyncio


async def call_asgi(app, scope: dict, body: bytes) -> tuple[int, bytes]:
    """One HTTP request to the ASGI app: (status, body)."""
    sent = False
    out: list[bytes] = []
    status = 0

    async def receive():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)

    async def send(message):
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        else:
            out.append(message.get("body", b""))

    await app(dict(scope, state={}), receive, send)
    return status, b"".join(out)
