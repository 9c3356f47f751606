"""The raw endpoint of `python -m bench.peer`: Starlette + asyncpg + orjson, no GraphQL.

It answers reads (a) and (b) with the statements Pulse itself issues for them
(copied verbatim from what Pulse sent at the time of writing, see `TOKEN_SQL`,
`CAMPAIGN_SQL`, `SENDS_SQL`): the bearer token lookup, the campaign read scoped
to the token's organization and, for (b), the page of sends. One pool
connection per request (asyncpg's default reset on release included), JSON
shaped like Pulse's GraphQL answer. It is the floor: what the same SQL and the
same JSON cost without an ORM or a GraphQL executor.

Run by the bench as `uvicorn bench.peer.raw:create_app --factory` with
PULSE_PEER_RAW_DSN set. Routes: POST /a and POST /b with {"id": <campaign pk>}.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os

import asyncpg
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

TOKEN_SQL = (
    'SELECT "api_token"."created_at","api_token"."revoked_at","api_token"."prefix","api_token"."user_id",'
    '"api_token"."name","api_token"."id","api_token"."last_used_at","api_token"."token_hash",'
    '"api_token__user"."email" "api_token__user.email","api_token__user"."created_at" "api_token__user.created_at",'
    '"api_token__user"."scope_zone_id" "api_token__user.scope_zone_id","api_token__user"."can_export" '
    '"api_token__user.can_export","api_token__user"."scope_kind" "api_token__user.scope_kind","api_token__user"."role" '
    '"api_token__user.role","api_token__user"."organization_id" "api_token__user.organization_id",'
    '"api_token__user"."name" "api_token__user.name","api_token__user"."id" "api_token__user.id",'
    '"api_token__user"."scope_center_id" "api_token__user.scope_center_id" FROM "api_token" LEFT OUTER JOIN '
    '"app_user" "api_token__user" ON "api_token__user"."id"="api_token"."user_id" WHERE "api_token"."token_hash"=$1 '
    'LIMIT $2')
CAMPAIGN_SQL = (
    'SELECT "ended_at","description","status_reason","control_size","owner_kind","goal_type","zone_id","created_at",'
    '"spent_micros","reach","created_by_id","name","start_at","type","control_group_percent","live_since",'
    '"reserved_micros","id","organization_id","goal_key","goal_window_hours","view_window_hours","updated_at",'
    '"goal_after_view_window_hours","budget_micros","audience_filter","launched_at","end_at","status","center_id",'
    '"audience_size","cloned_from_id" FROM "campaign" WHERE "organization_id"=$1 AND "id"=$2 LIMIT $3')
SENDS_SQL = (
    'SELECT "credits","channel","dispatch_attempts","queued_at","replied_at","delivered_at","clicked_at",'
    '"dispatch_after","external_id","failure_reason","sent_at","bounce_type","lead_id","cost_micros","bounced_at",'
    '"reserved_micros","id","organization_id","day","unsubscribed_at","updated_at","failed_at","system","was_sent",'
    '"provider","read_at","campaign_id","center_key","status" FROM "send" WHERE "campaign_id"=$1 '
    'ORDER BY "id" DESC LIMIT $2')


def gid(type_name: str, pk: int) -> str:
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode()


def iso(dt) -> str | None:
    return None if dt is None else dt.isoformat()


def json(data, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def create_app() -> Starlette:
    state: dict = {}

    async def principal(conn, request: Request):
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            return None
        row = await conn.fetchrow(TOKEN_SQL, hashlib.sha256(auth[7:].encode()).hexdigest(), 2)
        if row is None or row["revoked_at"] is not None:
            return None
        return row

    async def campaign(request: Request) -> Response:
        body = orjson.loads(await request.body())
        async with state["pool"].acquire() as conn:
            who = await principal(conn, request)
            if who is None:
                return json({"errors": [{"message": "unauthenticated"}]}, 401)
            c = await conn.fetchrow(CAMPAIGN_SQL, who["api_token__user.organization_id"], int(body["id"]), 1)
        if c is None:
            return json({"data": {"campaign": None}})
        return json({"data": {"campaign": {
            "id": gid("Campaign", c["id"]), "name": c["name"], "status": c["status"], "type": c["type"],
            "reach": c["reach"], "audienceSize": c["audience_size"], "createdAt": iso(c["created_at"])}}})

    async def sends(request: Request) -> Response:
        body = orjson.loads(await request.body())
        async with state["pool"].acquire() as conn:
            who = await principal(conn, request)
            if who is None:
                return json({"errors": [{"message": "unauthenticated"}]}, 401)
            c = await conn.fetchrow(CAMPAIGN_SQL, who["api_token__user.organization_id"], int(body["id"]), 1)
            rows = [] if c is None else await conn.fetch(SENDS_SQL, c["id"], 51)
        if c is None:
            return json({"data": {"campaign": None}})
        return json({"data": {"campaign": {"sends": {"edges": [{"node": {
            "id": gid("Send", r["id"]), "channel": r["channel"], "status": r["status"], "externalId": r["external_id"],
            "queuedAt": iso(r["queued_at"]), "sentAt": iso(r["sent_at"])}} for r in rows[:50]]}}}})

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        state["pool"] = await asyncpg.create_pool(os.environ["PULSE_PEER_RAW_DSN"], min_size=2, max_size=10)
        try:
            yield
        finally:
            await state["pool"].close()

    return Starlette(routes=[Route("/a", campaign, methods=["POST"]), Route("/b", sends, methods=["POST"])],
                     lifespan=lifespan)
