"""`exportProgress`: the export now, then every change of its progress or status until it ends."""

from __future__ import annotations

import asyncio
from typing import Annotated, AsyncGenerator

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from app.exports import service
from app.core.errors import NotFound
from graph.core import ctx, decode_id
from graph.exports.types import Export

_ENDED = ("READY", *service.FINAL)


@strawberry.subscription(description=(
    "An export's progress: its current state first, then every change (progress, status), ending once it is "
    "ready or over. Read from the database, so it follows a job run by any worker."))
async def export_progress(self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(
        description="The export.")]) -> AsyncGenerator[Export, None]:
    p = ctx(info).principal
    try:
        export = await service.get_export(p, decode_id(id, "Export"))
    except NotFound:
        raise GraphQLError("export not found", extensions={"code": "NOT_FOUND"}) from None
    settings = ctx(info).settings
    interval = min(0.5, getattr(settings, "export_poll_s", 0.5))
    last = None
    while True:
        seen = (export.status, export.rows_done, export.progress)
        if seen != last:
            last = seen
            yield Export.of(export)
        if export.status in _ENDED:
            return
        await asyncio.sleep(interval)
        export = await service.history_query(p).filter(id=export.id).first()
        if export is None:
            return
