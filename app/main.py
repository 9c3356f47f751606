"""The ASGI application: routes, auth, limits, health, lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hmac
import logging
import os
import re
import time
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from datetime import timedelta

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from cross_web import HTTPException
from graphql import GraphQLSyntaxError
from strawberry.asgi import GraphQL
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.graphql import OperationType
from strawberry.exceptions import ConnectionRejectionError, MissingQueryError
from strawberry.http import GraphQLRequestData
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from app import db, logs, metrics
from app.tenancy.access import (PRINCIPALS_TOPIC, access_still_granted, authenticate, configure_principal_cache,
                                forget_principals)
from app.campaigns.service import promote_due
from app.core.errors import Unauthenticated
from app.exports.http import download as download_export
from app.exports.jobs import ExportRunner
from app.settings import Settings, get_settings
from app.wiring import wire
from app.web.cors import add_cors
from app.web.dashboard import mount_dashboard
from graph.core import Context
from graph.core.cache import Probe, ResponseCache
from graph.core.limits import who as rate_limited_party
from graph.core.execution import PulseTransportWSHandler
from graph.core.limits import RateLimiter
from graph.core.persisted import DocumentRefusal, DocumentStore, load_manifest
from graph.schema import build_schema
from graph.tenancy.types import forget_currencies
from subscriptions.bus import Bus, get_bus, set_bus
from subscriptions.hubs import Registry, set_registry

log = logging.getLogger("pulse")
GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"


def _unavailable() -> Response:
    response = _json_error(503, "the database is unavailable; retry later", "SERVICE_UNAVAILABLE")
    response.headers["Retry-After"] = "5"
    return response


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
        read_timeout = self.read_timeout

        async def limited() -> dict:
            nonlocal seen, done
            if done:  # the body was read: what follows is a disconnect, waited for without limit
                return await receive()
            message = await _within(receive(), read_timeout)
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


async def _within(awaitable: Any, timeout: float) -> Any:
    """`await awaitable`, raising _SlowBody when it takes longer than `timeout` seconds — with a
    timer only when it has to wait. (It was `asyncio.wait_for`: a Task per receive in 3.11; then
    `asyncio.timeout`: a timer per receive.) A coroutine is first run up to its first suspension:
    a body already received — uvicorn parses a small request whole before the app runs — comes
    back without any timer. Otherwise the rest runs under `asyncio.timeout`, driven as a Task
    drives a coroutine: each future it yields is taken (its `_asyncio_future_blocking` flag reset,
    as a Task does) and awaited here (this task waits on it); then the coroutine is resumed with
    `send(None)`, or with `throw(exc)` when the wait raised (the future failed, or this task is
    being cancelled — the deadline or anyone's cancel — which the coroutine then sees at its own
    await, as under a Task); a bare `yield` lets the loop run once."""
    step = getattr(awaitable, "send", None)
    if step is None:  # not a coroutine: awaited whole under the deadline
        try:
            async with asyncio.timeout(timeout):
                return await awaitable
        except TimeoutError:
            raise _SlowBody() from None
    try:
        waiting = step(None)
    except StopIteration as stop:
        return stop.value
    try:
        async with asyncio.timeout(timeout):
            while True:
                try:
                    if waiting is None:
                        await asyncio.sleep(0)
                    else:
                        waiting._asyncio_future_blocking = False  # taken, as a Task takes it
                        await waiting
                except BaseException as exc:  # noqa: BLE001 - handed to the coroutine, as a Task would
                    try:
                        waiting = awaitable.throw(exc)
                    except StopIteration as stop:
                        return stop.value
                    continue
                try:
                    waiting = step(None)
                except StopIteration as stop:
                    return stop.value
    except TimeoutError:
        raise _SlowBody() from None


class _TooLarge(Exception):
    pass


class _SlowBody(Exception):
    pass




class PulseGraphQL(GraphQL):
    """Strawberry view with our context, auth and limits."""

    graphql_transport_ws_handler_class = PulseTransportWSHandler
    # The common POST of JSON answered without Strawberry's `run` (`_fast`); False: every request
    # takes Strawberry's path (tests compare the two).
    fast_lane = True

    def __init__(self, settings: Settings, documents: DocumentStore | None = None,
                 limiter: RateLimiter | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.documents = documents or DocumentStore()
        self.limiter = limiter
        # Open websockets and the token each authenticated with (for revocation); kept by
        # PulseTransportWSHandler.
        self.sockets: dict[Any, int | None] = {}
        # Repeated reads answered from memory (graph/core/cache.py); None = off.
        self.cache = ResponseCache(settings.response_cache_entries, settings.response_cache_bytes,
                                   settings.response_cache_ttl_s) if settings.response_cache_entries else None
        if self._stream_transport_map or self.schema.config.enable_experimental_incremental_execution \
                or self.schema.config.batching_config is not None:
            self.fast_lane = False  # `_fast` knows none of these (streamed or batched answers)

    def decode_json(self, data: str | bytes) -> object:
        """orjson for the common body; anything it refuses (invalid JSON, NaN, nesting over its
        limit) or may read inexactly (a run of 19+ digits: orjson reads integers over 64 bits as
        floats, without an error) is parsed by json.loads as before, with the same errors."""
        if not _long_digits(data):
            try:
                return orjson.loads(data)
            except orjson.JSONDecodeError:
                pass
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
            raise ConnectionRejectionError({"message": "invalid or missing token"}) from None
        self.sockets[context.request] = context.principal_.token_id
        return None

    async def close_revoked(self) -> int:
        """Close the sockets whose token was revoked (4403). Returns how many (None: no socket to check,
        the database was not read)."""
        token_ids = {t for t in self.sockets.values() if t}
        if not token_ids:
            return None
        from models.tenancy import ApiToken

        active = set(await ApiToken.filter(id__in=list(token_ids), revoked_at=None).values_list("id", flat=True))
        closed = 0
        for ws, token_id in list(self.sockets.items()):
            if token_id and token_id not in active:
                self.sockets.pop(ws, None)
                with contextlib.suppress(Exception):
                    await ws.close(code=4403, reason="token revoked")
                closed += 1
        return closed

    def encode_json(self, data: object) -> str:
        """orjson (several times faster than json.dumps: every subscription message goes through here);
        json.dumps for what orjson refuses (integers over 64 bits)."""
        try:
            return orjson.dumps(data).decode()
        except TypeError:
            return super().encode_json(data)

    def __call__(self, scope: Scope, receive: Receive, send: Send):
        if scope["type"] != "http":
            # No frame kept per websocket (see BodyLimit): two small closures count the close codes.
            return super().__call__(scope, _count_client_close(receive), _count_server_close(send))
        return self._http(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Strawberry answers its refusals in text/plain; ours are GraphQL JSON with a code."""
        request = Request(scope=scope, receive=receive)
        started = time.perf_counter()
        probe = response = None
        accept = _json_post(scope) if self.fast_lane else None
        if accept is not None:
            await _read_body(request)  # kept by the request: the cache and Strawberry read it from there
        if self.cache is not None:
            probe, response = await self._cache_lookup(request, scope)
        try:
            if response is None:
                if accept is not None:
                    response = await self._fast(request, accept)
                if response is None:
                    response = await self.run(request)
                if probe is not None:
                    self._cache_store(probe, scope, response)
        except DocumentRefusal as exc:
            response = self.refusal(request, exc.status, exc.message, exc.code, exc.headers)
        except HTTPException as exc:
            status, code = _REFUSALS.get(exc.reason, (exc.status_code, _STATUS_CODES.get(exc.status_code, "BAD_REQUEST")))
            headers = {"Allow": "GET, POST"} if status == 405 else None
            response = self.refusal(request, status, exc.reason, code, headers)
        if scope.get("pulse.unavailable"):  # a dead database is no answer: 503, the client retries
            response.status_code = 503
            response.headers["Retry-After"] = "5"
        if scope.get("pulse.graphql"):
            outcome = "refused" if response.status_code >= 400 or scope.get("pulse.refused") else \
                "error" if scope.get("pulse.errors") else "ok"
            operation = metrics.operation_label(scope.get("pulse.operation"))
            counted, timed = metrics.graphql_children(operation, outcome)
            counted.inc()
            timed.observe(time.perf_counter() - started)
        await response(scope, receive, send)

    async def _fast(self, request: Request, accept: str) -> Response | None:
        """The common request without Strawberry's `run`: a POST of `application/json` (read by
        `_json_post`) whose body is one JSON object with a string or null `query`, object or null
        `variables` and `extensions`, string or null `operationName`. It runs the same steps as
        `run` for it — `execute_single`, `process_result`, `create_response` with the same
        sub-response and context — and skips what cannot apply to it (the content-type parse
        through `email.message`, the request adapter, the IDE and stream checks, batching, the
        protocol `isinstance` checks of a result HTTP cannot produce). None (before any effect):
        anything else, answered by Strawberry's `run`, refusals included."""
        if _long_digits(request._body):
            return None  # an integer orjson would read as a float: decode_json's json.loads, Strawberry's path
        try:
            data = orjson.loads(request._body)
        except orjson.JSONDecodeError:
            return None  # decode_json's second chance (json.loads) and its errors: Strawberry's path
        if type(data) is not dict:
            return None
        query, variables = data.get("query"), data.get("variables")
        extensions, operation_name = data.get("extensions"), data.get("operationName")
        if (query is not None and type(query) is not str) or (variables is not None and type(variables) is not dict) \
                or (extensions is not None and type(extensions) is not dict) \
                or (operation_name is not None and type(operation_name) is not str):
            return None
        # What Strawberry's get_sub_response builds (Response() without its content-length), directly.
        sub_response = Response.__new__(Response)
        sub_response.status_code, sub_response.background, sub_response.body = None, None, b""
        sub_response.raw_headers = []
        sub_response.graphql_response_json = GRAPHQL_RESPONSE_JSON in accept  # type: ignore[attr-defined]
        context = await self.get_context(request, sub_response)
        result = await self.execute_single(request, request, sub_response, context, None,
                                           GraphQLRequestData(query, variables, operation_name, extensions))
        response_data = await self.process_result(request, result)
        if sub_response.graphql_response_json:
            return self.create_response(response_data, sub_response)
        # What Strawberry's create_response builds for one result (Response(encode_json(data),
        # media_type="application/json"), the sub-response's headers and status added), without
        # encoding the JSON to text and back.
        try:
            body = orjson.dumps(response_data)
        except TypeError:  # what orjson refuses: encode_json's json.dumps
            body = self.encode_json(response_data).encode()
        response = Response.__new__(Response)
        response.status_code = sub_response.status_code or 200
        response.media_type, response.background, response.body = "application/json", None, body
        response.raw_headers = [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json"),
                                *sub_response.raw_headers]
        return response

    async def _cache_lookup(self, request: Request, scope: Scope) -> tuple[Probe | None, Response | None]:
        """A hit's ready response, or the probe of a candidate request (its answer may be stored once
        executed), or neither. Candidates: an authenticated GET with a query string or POST of JSON."""
        principal = scope.get("state", {}).get("principal")
        bus = get_bus()
        method = scope["method"]
        if principal is None or bus is None or method not in ("GET", "POST"):
            return None, None
        headers = request.headers
        if method == "POST":
            content_type = headers.get("content-type", "")
            if not content_type.startswith("application/json"):
                return None, None
            payload = await request.body()  # kept by the request: Strawberry reads it from there
        else:
            content_type, payload = "", scope.get("query_string", b"")
            if not payload:
                return None, None
        access = (principal.org_id, principal.role.value, principal.scope.kind.value, principal.scope.id,
                  principal.can_export)  # what access decides from (app/tenancy/access.py); never the user
        base = (method, content_type, headers.get("accept", ""), payload, access)
        versions, limiter = bus.versions, self.limiter
        org_id = principal.org_id
        # The coarse pair (F, A) and the versions the request depended on when it last executed (F and its
        # campaigns' versions; subscriptions/versions.py), read in one round trip.
        keys = coarse = versions.coarse(org_id)
        learned = self.cache.learned.get(base)
        if learned:
            keys += tuple(k for k in learned if k not in keys)
        charging = limiter is not None and limiter.enabled
        cost = self.cache.costs.get(base)
        charged = None
        if charging and cost is not None and versions.shared and (b'"query"' in payload or b"query=" in payload):
            # (a request with its document: one that names a persisted document may not execute at all)
            # Known cost, Redis: the charge and the versions read in one round trip.
            both = await limiter.charge_and_read(rate_limited_party(Context(request=request, principal_=principal)),
                                                 cost, keys)
            if both is not None:
                charged, shared = both
                values = tuple((v, versions.local(k)) for v, k in zip(shared, keys))
        if charged is None:
            values = await versions.read(keys)
            if values is None:
                self.cache.bypass()
                return None, None
        entry = self.cache.get(base, dict(zip(keys, values)), coarse, learned)
        if entry is not None:
            response_headers = {"content-type": entry.content_type}
            if charging and entry.cost is not None:
                # Charged like the uncached request; over the limit, the uncached path refuses it.
                state = charged if charged is not None and charged.cost == entry.cost else await limiter.charge(
                    rate_limited_party(Context(request=request, principal_=principal)), entry.cost)
                if state.allowed:
                    response_headers.update(state.headers())
                else:
                    entry = None
            if entry is not None:
                self.cache.hit()
                scope["pulse.graphql"] = True
                scope["pulse.operation"] = entry.operation
                return None, Response(entry.body, status_code=200, headers=response_headers)
        if charged is not None and charged.allowed:
            scope["pulse.rate_state"] = charged  # the executor does not charge it twice (limits.charge)
        probe = Probe(base, org_id, keys, values)
        scope["pulse.cache"] = probe
        return probe, None

    def _cache_store(self, probe: Probe, scope: Scope, response: Response) -> None:
        """Keep the answer of a cacheable query that succeeded (no error at all, HTTP 200)."""
        if not probe.cacheable:
            return
        self.cache.miss()
        if response.status_code != 200 or scope.get("pulse.errors") or scope.get("pulse.refused") \
                or scope.get("pulse.unavailable") or not isinstance(getattr(response, "body", None), bytes):
            return
        probe.operation = scope.get("pulse.operation")
        if probe.cost is not None:
            self.cache.learn_cost(probe.base, probe.cost)
        versions = get_bus().versions
        self.cache.put(probe, response.body, response.headers.get("content-type", "application/json"),
                       probe.depends_on(versions), versions.coarse(probe.org_id))

    def should_render_graphql_ide(self, request) -> bool:
        return "extensions" not in request.query_params and super().should_render_graphql_ide(request)

    def refusal(self, request, status: int, message: str, code: str, headers: dict | None = None) -> Response:
        metrics.graphql_error(code).inc()
        request.scope["pulse.graphql"] = request.scope["pulse.refused"] = True
        request.scope["pulse.error_code"] = code
        accept = request.headers.get("accept", "")
        media_type = GRAPHQL_RESPONSE_JSON if GRAPHQL_RESPONSE_JSON in accept else "application/json"
        headers = {"Cache-Control": "no-store", **(headers or {})}
        return Response(orjson.dumps({"errors": [{"message": message, "extensions": {"code": code}}]}),
                        status_code=status, media_type=media_type + "; charset=utf-8", headers=headers)

    async def execute_single(self, request, request_adapter, sub_response, context, root_value, request_data):
        """Persisted documents (graph/core/persisted.py) and the operation types HTTP allows: queries over
        GET and POST, mutations over POST only (405 over GET), subscriptions over the websocket only."""
        request.scope["pulse.graphql"] = True
        request.scope["pulse.operation"] = request_data.operation_name
        query = await self.documents.resolve(request_data.query, request_data.extensions)
        if request_data.operation_name is None and isinstance(query, str):
            named = _OPERATION_NAME.match(query)
            request.scope["pulse.operation"] = named.group(1) if named else None
        if (not self.settings.allows_anonymous_introspection and isinstance(query, str) and _INTROSPECTION.search(query)
                and request.scope.get("state", {}).get("principal") is None):
            raise DocumentRefusal(401, "introspection needs a valid token (Authorization: Bearer …)", "UNAUTHENTICATED",
                                  {"WWW-Authenticate": "Bearer"})
        method = request_adapter.method
        allowed = {OperationType.QUERY} if method == "GET" else {OperationType.QUERY, OperationType.MUTATION}
        try:
            return await self.schema.execute(query, root_value=root_value, variable_values=request_data.variables,
                                             context_value=context, operation_name=request_data.operation_name,
                                             allowed_operation_types=allowed,
                                             operation_extensions=request_data.extensions)
        except CannotGetOperationTypeError as exc:
            raise DocumentRefusal(400, exc.as_http_error_reason(), "OPERATION_NOT_FOUND") from exc
        except InvalidOperationTypeError as exc:
            if exc.operation_type == OperationType.SUBSCRIPTION:
                raise DocumentRefusal(400, "subscriptions are not served over HTTP: open a websocket to /graphql "
                                      "with the graphql-transport-ws protocol", "SUBSCRIPTION_OVER_HTTP") from exc
            raise DocumentRefusal(405, exc.as_http_error_reason(method) + ": send them with POST",
                                  "METHOD_NOT_ALLOWED", {"Allow": "POST"}) from exc
        except MissingQueryError as exc:
            raise DocumentRefusal(400, "No GraphQL query found in the request", "QUERY_MISSING") from exc

    async def process_result(self, request, result):
        """Request errors (parse, validation, variable coercion) carry `extensions.code` too."""
        response = await super().process_result(request, result)
        if result.errors:
            request.scope["pulse.errors"] = True
        if result.errors and result.data is None:
            for error, formatted in zip(result.errors, response.get("errors") or []):
                if error.path or (formatted.get("extensions") or {}).get("code"):
                    continue
                if isinstance(error, GraphQLSyntaxError):
                    code = "GRAPHQL_PARSE_FAILED"
                elif error.message.startswith("Variable "):
                    code = "BAD_USER_INPUT"
                else:
                    code = "GRAPHQL_VALIDATION_FAILED"
                formatted.setdefault("extensions", {})["code"] = code
        for error, formatted in zip(result.errors or [], response.get("errors") or []):
            if db.is_unavailable(error.original_error):
                formatted["message"] = "the database is unavailable; retry later"
                formatted.setdefault("extensions", {})["code"] = "SERVICE_UNAVAILABLE"
                request.scope["pulse.unavailable"] = True
        for formatted in response.get("errors") or []:
            code = (formatted.get("extensions") or {}).get("code")
            code = code if isinstance(code, str) and len(code) <= 64 else "INTERNAL"
            metrics.graphql_error(code).inc()
            request.scope.setdefault("pulse.error_code", code)
        return response

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
            if errors and response_data.get("data") is None and all(not e.get("path") for e in errors) \
                    and response.status_code == 200:  # a 429 (RATE_LIMITED) stays a 429
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
        return Context(request=request, principal_=principal, response=response, settings=self.settings,
                       limiter=self.limiter)



_DIGITS_BYTES = re.compile(rb"[0-9]{19}")
_DIGITS_TEXT = re.compile(r"[0-9]{19}")


def _long_digits(data: str | bytes) -> bool:
    """A run of 19+ digits (anywhere: a string's digits only send the body to json.loads, which reads
    it the same): orjson reads an integer over 64 bits as a float, silently — `ID` 123…890 would
    become "1.2345678901234568e+29". json.loads keeps it exact."""
    return (_DIGITS_BYTES if isinstance(data, bytes) else _DIGITS_TEXT).search(data) is not None


# An introspection field anywhere in a document (a match inside a string literal only refuses an
# anonymous request, which could read nothing anyway).
_INTROSPECTION = re.compile(r"__(?:schema|type)\b")
_OPERATION_NAME = re.compile(r"\s*(?:#[^\n]*\s*)*(?:query|mutation|subscription)\s+([_A-Za-z][_0-9A-Za-z]*)")

# Strawberry's refusals (HTTPException reasons) → (status, code).
_REFUSALS = {
    "Batching is not enabled": (400, "BATCHING_NOT_SUPPORTED"),
    "Unsupported content type": (415, "UNSUPPORTED_MEDIA_TYPE"),
    "Unable to parse request body as JSON": (400, "INVALID_JSON"),
    "No GraphQL query found in the request": (400, "QUERY_MISSING"),
}
_STATUS_CODES = {405: "METHOD_NOT_ALLOWED", 404: "NOT_FOUND", 415: "UNSUPPORTED_MEDIA_TYPE"}


def _json_post(scope: Scope) -> str | None:
    """For a POST whose first `content-type` is exactly `application/json` (or with `; charset=utf-8`):
    its first `accept` ("" when absent). None for anything else."""
    if scope["method"] != "POST":
        return None
    content_type = accept = None
    for name, value in scope["headers"]:
        if name == b"content-type":
            if content_type is None:
                content_type = value
        elif name == b"accept":
            if accept is None:
                accept = value
    if content_type != b"application/json" and content_type != b"application/json; charset=utf-8":
        return None
    return "" if accept is None else accept.decode("latin-1")


async def _read_body(request: Request) -> None:
    """Starlette's `Request.body()` without its async generator: the chunks of the ASGI receive,
    joined and kept on the request (`_body`, where `body()` and `stream()` look first)."""
    receive, chunks = request.receive, []
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "http.request":
            chunk = message.get("body", b"")
            if chunk:
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        elif kind == "http.disconnect":
            request._is_disconnected = True
            raise ClientDisconnect()
    request._stream_consumed = True
    request._body = b"".join(chunks)


def _count_client_close(receive: Receive) -> Receive:
    async def counting() -> dict:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            metrics.WS_CLIENT_CLOSED.labels(str(message.get("code", 1005))).inc()
        return message
    return counting


def _count_server_close(send: Send) -> Send:
    def counting(message: dict):
        if message["type"] == "websocket.close":
            metrics.WS_CLOSED.labels(str(message.get("code", 1000))).inc()
        return send(message)  # no extra coroutine frame per frame sent
    return counting


_ROUTES = {"/graphql", "/healthz", "/readyz", "/metrics"}


access_log = logging.getLogger("pulse.access")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# uuid.uuid4().hex without the UUID object (8 µs → 1 µs): 16 random bytes with the version (4) and
# RFC 4122 variant bits set as uuid.UUID(bytes=…, version=4) sets them.
_UUID4_KEEP = ~((0xC000 << 48) | (0xF000 << 64)) & ((1 << 128) - 1)
_UUID4_SET = (0x8000 << 48) | (4 << 76)


def _new_request_id(random: bytes | None = None) -> str:
    return "%032x" % (int.from_bytes(random or os.urandom(16), "big") & _UUID4_KEEP | _UUID4_SET)


class HttpMetrics:
    """Count, time and log (pulse.access, one line) every HTTP request; give it a request id."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def __call__(self, scope: Scope, receive: Receive, send: Send):
        if scope["type"] != "http":
            return self.app(scope, receive, send)
        return self._http(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started, status = time.perf_counter(), 500
        given = ""
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                given = value.decode("latin-1")
                break
        request_id = given if given and _REQUEST_ID.fullmatch(given) else _new_request_id()
        fields = {"request_id": request_id}
        token = logs.request_fields.set(fields)

        started_response = False

        async def sending(message: dict) -> None:
            nonlocal status, started_response
            if message["type"] == "http.response.start":
                started_response = True
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except ClientDisconnect:
            # The client went away before its body was read: a normal event (load generators,
            # closed tabs). Nothing can be answered; the access line says 499, no traceback.
            status = 499
        except Exception as exc:
            if db.is_unavailable(exc) and not started_response:
                access_log.warning("database unavailable in %s %s: %s", scope["method"], scope["path"],
                                   type(exc).__name__)
                scope["pulse.error_code"] = "SERVICE_UNAVAILABLE"
                await _unavailable()(scope, receive, sending)
            else:
                access_log.exception("unhandled error in %s %s", scope["method"], scope["path"])
                raise
        finally:
            elapsed = time.perf_counter() - started
            route = scope["path"] if scope["path"] in _ROUTES else "other"
            method = scope["method"] if scope["method"] in ("GET", "POST", "OPTIONS", "HEAD") else "other"
            counted, timed = metrics.http_children(route, method, status // 100)
            counted.inc()
            timed.observe(elapsed)
            principal = scope.get("state", {}).get("principal")
            fields.update(operation=scope.get("pulse.operation"), error_code=scope.get("pulse.error_code"),
                          organization_id=getattr(principal, "org_id", None), duration_ms=round(elapsed * 1000, 1),
                          status=status, method=scope["method"], path=scope["path"])
            if route != "/metrics" and route != "/healthz":
                access_log.info("%s %s %s", scope["method"], scope["path"], status)
            logs.request_fields.reset(token)


class HttpAuth:
    """Resolve `Authorization: Bearer …` once per HTTP request; a bad token is a 401."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app, self.settings = app, settings

    def __call__(self, scope: Scope, receive: Receive, send: Send):
        if scope["type"] != "http":
            return self.app(scope, receive, send)  # no frame kept per websocket (see BodyLimit)
        return self._http(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        header = None
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                header = value.decode("latin-1")
                break
        if header and scope["path"] != "/metrics":  # /metrics has its own token (PULSE_METRICS_TOKEN)
            try:
                principal = await authenticate(header, touch_resolution_s=self.settings.token_last_used_resolution_s)
            except Unauthenticated as exc:
                return await _json_error(401, str(exc), "UNAUTHENTICATED")(scope, receive, send)
            except Exception as exc:
                if not db.is_unavailable(exc):
                    raise
                scope["pulse.error_code"] = "SERVICE_UNAVAILABLE"
                return await _unavailable()(scope, receive, send)
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


async def export_download(request: Request) -> Response:
    """A single-use export link (app/exports/http.py)."""
    return await download_export(request)


def metrics_access(settings: Settings, authorization: str | None, own_port: bool) -> Response | None:
    """None when this request may read /metrics; otherwise the JSON refusal. On the API port: not
    served when metrics have their own port, nor in production without a metrics token."""
    if not own_port and settings.metrics_port is not None:
        return _json_error(404, "metrics are served on their own port (PULSE_METRICS_PORT)", "NOT_FOUND")
    if settings.metrics_token:
        given = (authorization or "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), settings.metrics_token.encode()):
            return _json_error(401, "metrics need Authorization: Bearer <PULSE_METRICS_TOKEN>", "UNAUTHENTICATED")
        return None
    if not own_port and settings.env == "production":
        return _json_error(404, "metrics are not served on the API port in production: set PULSE_METRICS_PORT "
                           "or PULSE_METRICS_TOKEN", "NOT_FOUND")
    return None


async def metrics_endpoint(request: Request) -> Response:
    refusal = metrics_access(request.app.state.settings, request.headers.get("authorization"), own_port=False)
    return refusal or await metrics_response()


async def metrics_response() -> Response:
    from app.sender.service import queue_stats, ready_stats

    with contextlib.suppress(Exception):  # the database may be down: serve the rest
        depth, age = await asyncio.wait_for(queue_stats(), timeout=3)
        metrics.SENDER_QUEUE_DEPTH.set(depth)
        metrics.SENDER_QUEUE_AGE.set(age)
        ready, ready_age = await asyncio.wait_for(ready_stats(), timeout=3)
        metrics.SENDER_READY_JOBS.set(ready)
        metrics.SENDER_READY_AGE.set(ready_age)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


async def _forget_principals_on_bus(bus: Bus) -> None:
    """Another instance revoked a token or changed a member's role/scope: drop cached principals."""
    while True:
        try:
            async with bus.subscribe(PRINCIPALS_TOPIC) as subscriber:
                forget_principals()  # anything missed before this subscription took effect
                async for _event in subscriber:
                    forget_principals()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - resubscribe; the cache TTL bounds staleness meanwhile
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise asyncio.CancelledError from None  # being stopped: an error on the way out ends it too
            log.warning("principal invalidation listener failed; resubscribing", exc_info=True)
            await asyncio.sleep(1)


async def _every(interval: float, fn, what: str) -> None:
    outage = db.OutageLog(log, what)  # logged once per outage, not every interval
    while True:
        await asyncio.sleep(interval)
        try:
            if await fn() is not None:  # None: it had nothing to read (no proof the database is back)
                outage.ok()
        except Exception as exc:  # noqa: BLE001 - keep going
            outage.failed(exc)


async def _scheduler(interval: float) -> None:
    """Moves SCHEDULED campaigns to LIVE at startAt and completes them at endAt. A failure (the
    database down) is logged once per outage, and its recovery once."""
    outage = db.OutageLog(log, "scheduler tick")
    while True:
        try:
            await promote_due()
            outage.ok()
        except Exception as exc:  # noqa: BLE001 - keep ticking
            outage.failed(exc)
        await asyncio.sleep(interval)


async def serve_metrics(settings: Settings) -> asyncio.AbstractServer:
    """GET /metrics on PULSE_METRICS_PORT (PULSE_HOST): a minimal HTTP/1.0 server, one request per
    connection. Every `--workers` process binds it (SO_REUSEPORT): a scrape reads one process."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            lines = head.decode("latin-1").split("\r\n")
            method, path = (lines[0].split(" ") + ["", ""])[:2]
            authorization = next((line.split(":", 1)[1].strip() for line in lines[1:]
                                  if line.lower().startswith("authorization:")), None)
            if method != "GET" or path.split("?")[0] != "/metrics":
                response: Response = _json_error(404, "only GET /metrics is served here", "NOT_FOUND")
            else:
                response = metrics_access(settings, authorization, own_port=True) or await metrics_response()
            body = response.body
            headers = "".join(f"{k}: {v}\r\n" for k, v in response.headers.items() if k != "content-length")
            writer.write(f"HTTP/1.0 {response.status_code} {'OK' if response.status_code == 200 else 'Error'}\r\n"
                         f"{headers}content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode() + body)
            await writer.drain()
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, settings.host, settings.metrics_port, reuse_port=True)


class WebSocketShortcut:
    """The GraphQL websocket straight to the view, past Starlette's error and exception
    middlewares, CORS and the router (issue 15 item 5): for a websocket they only pass the call
    on, but each keeps a coroutine frame (the exception middleware also a `WebSocket` object)
    alive for the socket's whole life. The scope gets what the router would add. Everything else
    takes the usual way. Outermost in the app's stack (`PulseStarlette`)."""

    def __init__(self, app: ASGIApp, graphql: ASGIApp, path: str = "/graphql") -> None:
        self.app, self.graphql, self.path = app, graphql, path

    def __call__(self, scope: Scope, receive: Receive, send: Send):
        if scope["type"] == "websocket" and scope["path"] == self.path and not scope.get("root_path"):
            scope["endpoint"], scope["path_params"] = self.graphql, {}
            return self.graphql(scope, receive, send)
        return self.app(scope, receive, send)


class PulseStarlette(Starlette):
    """Starlette with `WebSocketShortcut` outside its whole middleware stack (the error
    middleware included, which `add_middleware` cannot wrap), and `GraphQLRouteShortcut` in place
    of the router inside it."""

    graphql_ws: ASGIApp | None = None
    route_shortcut = True  # False: /graphql through the router like every other route (tests compare)

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        shortcut = GraphQLRouteShortcut.of(self.router) if self.route_shortcut else None
        layer = stack
        while shortcut is not None and layer is not None:  # the innermost middleware calls the router
            if getattr(layer, "app", None) is self.router:
                layer.app = shortcut
                break
            layer = getattr(layer, "app", None)
        return WebSocketShortcut(stack, self.graphql_ws) if self.graphql_ws is not None else stack


class GraphQLRouteShortcut:
    """HTTP requests to /graphql handed to the view without matching the router's routes one by one
    (`/graphql` is the fifth): the scope gets what the router would give it (`router`, `route`,
    `endpoint`, `path_params`) and the route's app is called as the route would call it. Only when
    that route is the first the router would pick for any method (`of`); everything else goes to
    the router."""

    def __init__(self, router: Any, route: Route, path: str = "/graphql") -> None:
        self.router, self.route, self.path = router, route, path
        self.endpoint, self.app = route.endpoint, route.app

    @classmethod
    def of(cls, router: Any, path: str = "/graphql") -> "GraphQLRouteShortcut | None":
        if getattr(router, "middleware_stack", None) != router.app:  # router-level middleware: not skipped
            return None
        from starlette.routing import Match

        for method in ("POST", "GET", "PUT", "OPTIONS"):
            probe = {"type": "http", "path": path, "root_path": "", "method": method}
            first = next((r for r in router.routes if r.matches(probe)[0] is not Match.NONE), None)
            if not (type(first) is Route and first.path == path and first.methods is None
                    and first.matches(probe) == (Match.FULL, {"endpoint": first.endpoint, "path_params": {}})):
                return None
        return cls(router, first, path)

    def __call__(self, scope: Scope, receive: Receive, send: Send):
        if scope["type"] == "http" and scope["path"] == self.path and not scope.get("root_path"):
            if "router" not in scope:
                scope["router"] = self.router
            scope["route"] = self.route
            scope["endpoint"] = self.endpoint
            scope["path_params"] = dict(scope.get("path_params", {}))
            return self.app(scope, receive, send)
        return self.router(scope, receive, send)


def freeze_startup_objects(settings: Settings) -> bool:
    """Once the app has started: collect, then move every object the process holds (modules, the
    schema, its types and resolvers, the pools, ~150k objects) to the collector's permanent generation
    (`gc.freeze`). They live as long as the process, and a full (generation-2) collection no longer
    walks them: measured on the send log, its pause went from 78-96 ms to ~4 ms — a pause that stalls
    every request in flight (it was Pulse's p99 under load). What requests allocate afterwards is
    collected as before. Off under PULSE_ENV=test unless PULSE_GC_FREEZE says otherwise."""
    on = settings.gc_freeze if settings.gc_freeze is not None else settings.env != "test"
    if on:
        gc.collect()
        gc.freeze()
    metrics.GC_FROZEN_OBJECTS.set(gc.get_freeze_count())
    return on


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or get_settings()
    if settings.env != "test":
        logs.configure(settings.env, settings.log_level)
    wire()
    schema = build_schema(settings.max_query_depth, settings.max_aliases, settings.max_tokens, settings.mask_errors,
                          max_cost=settings.max_query_cost, rate_points=settings.rate_limit_points,
                          rate_window_s=settings.rate_limit_window_s)
    trusted = None
    if settings.trusted_documents:
        trusted = {}
        for path in settings.trusted_documents.split(","):
            trusted.update(load_manifest(path.strip()))
    documents = DocumentStore(settings.broadcast_url if settings.broadcast_url.startswith(("redis://", "rediss://"))
                              else None, prefix=settings.channel_prefix, size=settings.apq_cache_size,
                              ttl_s=settings.apq_ttl_s, trusted=trusted)
    limiter = RateLimiter(settings.rate_limit_points, settings.rate_limit_window_s,
                          settings.broadcast_url if settings.broadcast_url.startswith(("redis://", "rediss://"))
                          else None, prefix=settings.channel_prefix)
    graphql = PulseGraphQL(
        settings,
        documents,
        limiter,
        schema=schema,
        graphql_ide="graphiql" if settings.graphiql else None,
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
        allow_queries_via_get=True,
        connection_init_wait_timeout=timedelta(seconds=settings.ws_init_timeout_s),
        max_subscriptions_per_connection=settings.ws_max_subscriptions,
        allowed_origins=settings.allowed_origins,
    )

    if settings.response_cache_entries and not settings.broadcast_url.startswith(("redis://", "rediss://")) \
            and not settings.runs_worker_in_process and settings.env != "test":
        log.warning("response cache on with an in-process bus and the worker in another process: the worker's "
                    "changes do not reach this process's data versions (cached answers may lag them by up to "
                    "PULSE_RESPONSE_CACHE_TTL_S); use PULSE_BROADCAST_URL=redis://… or the worker in process")

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        await db.init_db(settings)
        forget_currencies()
        bus = Bus(settings.broadcast_url, settings.channel_prefix)
        await bus.connect()
        set_bus(bus)
        configure_principal_cache(settings.principal_cache_ttl_s)
        bus.on_reconnect(forget_principals)  # messages may have been missed while Redis was away
        registry = Registry(bus, access_still_granted, min_interval=settings.subscription_min_interval_s,
                            stream_limit=settings.stream_buffer_limit,
                            reconcile_interval=settings.subscription_reconcile_interval_s,
                            is_outage=db.is_unavailable)
        set_registry(registry)
        tasks = [asyncio.create_task(_every(settings.token_watchdog_interval_s, graphql.close_revoked, "token watchdog")),
                 asyncio.create_task(_forget_principals_on_bus(bus), name="pulse-principals")]
        stop = asyncio.Event()
        if settings.runs_worker_in_process:
            from app.worker import Worker

            tasks.append(asyncio.create_task(Worker(settings).run(stop), name="pulse-worker"))
        else:
            tasks.append(asyncio.create_task(_scheduler(settings.scheduler_interval_s)))
        if settings.runs_exports_in_process:
            tasks.append(asyncio.create_task(ExportRunner(settings).run(stop), name="pulse-exports"))
        metrics_server = await serve_metrics(settings) if settings.metrics_port is not None else None
        frozen = freeze_startup_objects(settings)
        try:
            yield
        finally:
            if frozen:
                gc.unfreeze()
                metrics.GC_FROZEN_OBJECTS.set(0)
            stop.set()
            await asyncio.sleep(0)
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if metrics_server is not None:
                metrics_server.close()
                await metrics_server.wait_closed()
            await registry.close()
            set_registry(None)
            await bus.disconnect()
            set_bus(None)
            await documents.close()
            await limiter.close()
            await db.close_db()

    app = PulseStarlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics_endpoint),
            Route("/exports/{export_id:int}/download", export_download, methods=["GET"]),
            Route("/graphql", graphql),  # every method reaches the view: others get a JSON 405
            WebSocketRoute("/graphql", graphql),
        ],
        lifespan=lifespan,
    )
    app.add_middleware(HttpAuth, settings=settings)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, read_timeout=settings.body_read_timeout_s)
    app.add_middleware(HttpMetrics)
    add_cors(app, settings)  # outermost: 401/413 answers carry CORS headers too
    mount_dashboard(app, settings)
    app.graphql_ws = graphql  # the websocket's shortcut past the stack (websockets get no CORS headers)
    app.state.settings = settings
    app.state.graphql = graphql
    return app
