"""A client that goes away before its request body is read (a load generator closing its
connections, a browser tab closed) is a normal event: one access line, no ERROR, no traceback."""

import asyncio
import logging
from urllib.parse import urlsplit

from tests.api.test_json_logs import Capture
from app import logs


async def test_client_disconnect_logs_no_error(live_server):
    url = urlsplit(live_server)
    with Capture(logs.JsonFormatter()) as capture:
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        writer.write(b"POST /graphql HTTP/1.1\r\nHost: pulse.test\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000\r\n\r\n{\"query\": \"{ __typename")
        await writer.drain()
        await asyncio.sleep(0.2)
        writer.close()
        await writer.wait_closed()
        for _ in range(100):  # wait for the server to finish the request
            if any('"status": 499' in line or '"status":499' in line for line in capture.lines()):
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        text = capture.stream.getvalue()
    assert '499' in text, text  # the access line: client closed the request
    assert '"level": "error"' not in text and '"level":"error"' not in text, text
    assert "Traceback" not in text and "traceback" not in text, text
