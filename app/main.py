"""The ASGI application: routes, auth, limits, health, lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from datetime import timedelta

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from cross_web import HTTPException
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from app import db, metrics
from app.tenancy.access import access_still_granted, authenticate
from app.campaigns.service import promote_due
from app.core.errors import Unauthenticated
from app.settings import Settings, get_settings
from app.wiring import wire
from graph.core import Context
from graph.core.execution import PulseTransportWSHandler
from graph.schema import build_schema
from subscriptions.bus import Bus, get_bus, set_bus
from subscriptions.hubs import Registry, set_registry

log = logging.getLogger("pulse")
GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"


def _json_error(status: int, message: str, code: str) -> Response:
    return Response(orjson.dumps({"errors": [{"message": message, "extensions": {"code": code}}]}),
                    status_code=status, media_type="application/json",
                    headers={"WWW-Authenticate": "Bearer"} if status == 401 else None)


class BodyLimit:
    """Refuse request bodies over the limit with 413 (declared or streamed), and bodies whose next
    chunk takes longer than `read_timeout` seconds with 408 (slow-body clients hold connections)."""

    def __init__(self, app: ASGIApp, max_bytes: int, read_timeout: float = 10.0) -> None:
        self.app, self.max_bytes, self.read_timeout = app, max_bytes, read_timeout

    def __call__(self, scope: Scope, receive: Receive, send: Send):
        # Not a coroutine itself: a websocket runs for hours, and every wrapping frame it keeps
        # alive is memory per connection.
        if scope["type"] != "http":
            return self.app(scope, receive, send)
        return self._http(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.max_bytes
                except ValueError:
                    too_big = True
                if too_big:
                    return await _json_error(413, f"request body over {self.max_bytes} bytes", "PAYLOAD_TOO_LARGE")(
                        scope, receive, send)
        seen = 0
        done = False

        async def limited() -> dict:
            nonlocal seen, done
            if done:  # the body was read: what follows is a disconnect, waited for without limit
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.read_timeout)
            except asyncio.TimeoutError:
                raise _SlowBody() from None
            if message["type"] == "http.request":
                done = not message.get("more_body", False)
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge()
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await _json_error(413, f"request body over {self.max_bytes} bytes", "PAYLOAD_TOO_LARGE")(scope, receive, send)
        except _SlowBody:
            await _json_error(408, f"request body not received within {self.read_timeout:g} s", "REQUEST_TIMEOUT")(
                scope, receive, send)


class _TooLarge(Exception):
    pass


class _SlowBody(Exception):
    pass


_HTTP_CODES = {400: "BAD_REQUEST", 405: "METHOD_NOT_ALLOWED", 406: "NOT_ACCEPTABLE", 415: "UNSUPPORTED_MEDIA_TYPE"}


class _PlainTextAsJson:
    """Rewrites a plain-text error response of the GraphQL view into GraphQL JSON with a code."""

    def __init__(self, send: Send) -> None:
        self.send, self.start = send, None

    async def __call__(self, message: dict) -> None:
        if message["type"] == "http.response.start" and message["status"] >= 400 and any(
                k == b"content-type" and v.startswith(b"text/plain") for k, v in message.get("headers", [])):
            self.start = message
            return
        if self.start is not None and message["type"] == "http.response.body":
            status = self.start["status"]
            text = message.get("body", b"").decode("utf-8", "replace") or "bad request"
            body = orjson.dumps({"errors": [{"message": text, "extensions": {"code": _HTTP_CODES.get(status, "BAD_REQUEST")}}]})
            headers = [(k, v) for k, v in self.start.get("headers", []) if k not in (b"content-type", b"content-length")]
            headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            self.start = None
            await self.send({"type": "http.response.start", "status": status, "headers": headers})
            await self.send({"type": "http.response.body", "body": body})
            return
        await self.send(message)


class PulseGraphQL(GraphQL):
    """Strawberry view with our context, auth and limits."""

    graphql_transport_ws_handler_class = PulseTransportWSHandler

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        # Open websockets and the token each authenticated with (for revocation); kept by
        # PulseTransportWSHandler.
        self.sockets: dict[Any, int | None] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Strawberry answers its HTTP exceptions (bad JSON, bad method, …) in plain text: answer
        them as GraphQL JSON with a code, like every other error. A body nested deeper than the
        parser's recursion allows is a 400 too (before auth matters: it is only parsing)."""
        if scope["type"] != "http":
            return await super().__call__(scope, receive, send)
        try:
            return await super().__call__(scope, receive, _PlainTextAsJson(send))
        except RecursionError:
            return await _json_error(400, "request nested too deeply", "BAD_REQUEST")(scope, receive, send)

    def decode_json(self, data: str | bytes) -> object:
        try:
            return super().decode_json(data)
        except RecursionError:
            raise HTTPException(400, "request body nested too deeply") from None

    async def on_ws_connect(self, context: Context):
        """Authenticate `connection_init` {"authorization": "Bearer <token>"}; refuse with 4403."""
        params = context.connection_params or {}
        raw = params.get("authorization") or params.get("Authorization")
        try:
            context.principal_ = await authenticate(raw if isinstance(raw, str) else None)
        except Unauthenticated:
            metrics.WS_CLOSED.labels("4403").inc()
            raise ConnectionRejectionError({"message": "invalid or missing token"}) from None
        self.sockets[context.request] = context.principal_.token_id
        return None

    async def close_revoked(self) -> int:
        """Close the sockets whose token was revoked (4403). Returns how many."""
        token_ids = {t for t in self.sockets.values() if t}
        if not token_ids:
            return 0
        from models.tenancy import ApiToken

        active = set(await ApiToken.filter(id__in=list(token_ids), revoked_at=None).values_list("id", flat=True))
        closed = 0
        for ws, token_id in list(self.sockets.items()):
            if token_id and token_id not in active:
                self.sockets.pop(ws, None)
                with contextlib.suppress(Exception):
                    await ws.close(code=4403, reason="token revoked")
                metrics.WS_CLOSED.labels("4403").inc()
                closed += 1
        return closed

    def encode_json(self, data: object) -> str:
        """orjson (several times faster than json.dumps: every subscription message goes through here);
        json.dumps for what orjson refuses (integers over 64 bits)."""
        try:
            return orjson.dumps(data).decode()
        except TypeError:
            return super().encode_json(data)

    async def get_sub_response(self, request):
        sub_response = await super().get_sub_response(request)
        accept = request.headers.get("accept", "") if request.scope["type"] == "http" else ""
        sub_response.graphql_response_json = GRAPHQL_RESPONSE_JSON in accept  # type: ignore[attr-defined]
        return sub_response

    def create_response(self, response_data, sub_response):
        """Speak application/graphql-response+json when the client accepts it (GraphQL over HTTP):
        a request error (parse, validation, variable coercion: errors without a path and no data)
        is then a 400 without a `data` entry."""
        response = super().create_response(response_data, sub_response)
        if getattr(sub_response, "graphql_response_json", False) and isinstance(response_data, dict):
            errors = response_data.get("errors") or []
            if errors and response_data.get("data") is None and all(not e.get("path") for e in errors):
                response_data = {k: v for k, v in response_data.items() if k != "data"}
                response.body = self.encode_json(response_data).encode()
                response.headers["content-length"] = str(len(response.body))
                response.status_code = 400
            response.headers["content-type"] = GRAPHQL_RESPONSE_JSON + "; charset=utf-8"
        return response

    async def get_context(self, request, response) -> Context:
        principal = None
        if request.scope["type"] == "http":
            principal = request.scope.get("state", {}).get("principal")
        return Context(request=request, principal_=principal, response=response, settings=self.settings)



class HttpAuth:
    """Resolve `Authorization: Bearer …` once per HTTP request; a bad token is a 401."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app, self.settings = app, settings

    def __call__(self, scope: Scope, receive: Receive, send: Send):
        if scope["type"] != "http":
            return self.app(scope, receive, send)  # no frame kept per websocket (see BodyLimit)
        return self._http(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        header = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"authorization"), None)
        if header:
            try:
                principal = await authenticate(header, touch_resolution_s=self.settings.token_last_used_resolution_s)
            except Unauthenticated as exc:
                return await _json_error(401, str(exc), "UNAUTHENTICATED")(scope, receive, send)
            scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)


async def healthz(_request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(_request: Request) -> Response:
    checks: dict[str, str] = {}
    ok = True
    try:
        await asyncio.wait_for(db.fetch("SELECT 1 AS ok"), timeout=3)
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001
        ok, checks["database"] = False, f"down: {type(exc).__name__}"
    bus = get_bus()
    checks["bus"] = bus.state if bus is not None else "stopped"
    if bus is not None and bus.url.startswith("redis"):
        try:
            import redis.asyncio as aioredis

            client = aioredis.from_url(bus.url, socket_connect_timeout=2, socket_timeout=2)
            try:
                await client.ping()
            finally:
                await client.aclose()
            checks["broadcast"] = "ok"
        except Exception as exc:  # noqa: BLE001
            ok, checks["broadcast"] = False, f"down: {type(exc).__name__}"
    else:
        checks["broadcast"] = "ok (in-process)"
    return JSONResponse({"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503)


async def metrics_endpoint(_request: Request) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


async def _every(interval: float, fn, what: str) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await fn()
        except Exception:  # noqa: BLE001 - keep going
            log.warning("%s failed", what, exc_info=True)


async def _scheduler(interval: float) -> None:
    """Moves SCHEDULED campaigns to LIVE at startAt and completes them at endAt."""
    while True:
        try:
            await promote_due()
        except Exception:  # noqa: BLE001 - keep ticking
            log.warning("scheduler tick failed", exc_info=True)
        await asyncio.sleep(interval)


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or get_settings()
    wire()
    schema = build_schema(settings.max_query_depth, settings.max_aliases, settings.max_tokens, settings.mask_errors)
    graphql = PulseGraphQL(
        settings,
        schema=schema,
        graphql_ide="graphiql" if settings.graphiql else None,
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
        allow_queries_via_get=True,
        connection_init_wait_timeout=timedelta(seconds=settings.ws_init_timeout_s),
        max_subscriptions_per_connection=settings.ws_max_subscriptions,
        allowed_origins=settings.allowed_origins,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        await db.init_db(settings)
        bus = Bus(settings.broadcast_url)
        await bus.connect()
        set_bus(bus)
        registry = Registry(bus, access_still_granted, min_interval=settings.subscription_min_interval_s,
                            stream_limit=settings.stream_buffer_limit)
        set_registry(registry)
        tasks = [asyncio.create_task(_every(settings.token_watchdog_interval_s, graphql.close_revoked, "token watchdog"))]
        stop = asyncio.Event()
        if settings.runs_worker_in_process:
            from app.worker import Worker

            tasks.append(asyncio.create_task(Worker(settings).run(stop), name="pulse-worker"))
        else:
            tasks.append(asyncio.create_task(_scheduler(5.0)))
        try:
            yield
        finally:
            stop.set()
            await asyncio.sleep(0)
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await registry.close()
            set_registry(None)
            await bus.disconnect()
            set_bus(None)
            await db.close_db()

    app = Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics_endpoint),
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
        ],
        lifespan=lifespan,
    )
    app.add_middleware(HttpAuth, settings=settings)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, read_timeout=settings.body_read_timeout_s)
    app.state.settings = settings
    app.state.graphql = graphql
    return app
