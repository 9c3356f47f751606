"""A client trickling its request body is cut off: 408 GraphQL JSON once the next chunk takes
longer than the body read timeout (driven at the ASGI level, deterministically)."""

import asyncio

import orjson

from app.main import BodyLimit


async def test_slow_body_gets_408():
    reached = []

    async def app(scope, receive, send):  # stands for the GraphQL view: reads the whole body
        while (await receive()).get("more_body"):
            pass
        reached.append(True)

    chunks = [{"type": "http.request", "body": b'{"query":', "more_body": True}]

    async def receive():
        if chunks:
            return chunks.pop()
        await asyncio.sleep(3600)  # the next byte never comes

    sent = []

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/graphql", "headers": []}
    await asyncio.wait_for(BodyLimit(app, 1 << 20, read_timeout=0.2)(scope, receive, send), 5)
    assert not reached
    assert sent[0]["status"] == 408
    assert orjson.loads(sent[1]["body"])["errors"][0]["extensions"]["code"] == "REQUEST_TIMEOUT"
