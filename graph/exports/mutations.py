"""`exportCreate`, `exportCancel`."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from app.exports import service
from graph.core import UserError, ctx, decode_id
from graph.exports.types import Export
from graph.core.mutations import attempt


@strawberry.type(description="Result of exportCreate.")
class ExportCreatePayload:
    export: Export | None = strawberry.field(description="The queued export; follow it with exportProgress.")
    download_url: str | None = strawberry.field(description=(
        "The single-use download link, shown only here. It works once, when the export is READY, until its "
        "expiresAt (default 15 minutes after it is ready). It carries its own token: not your API token."))
    user_errors: list[UserError] = strawberry.field(description="Expected failures; empty on success.")


@strawberry.type(description="Result of exportCancel.")
class ExportPayload:
    export: Export | None = strawberry.field(description="The export.")
    user_errors: list[UserError] = strawberry.field(description="Expected failures; empty on success.")


def download_url(info: Info, export_id: int, token: str) -> str:
    settings = ctx(info).settings
    base = getattr(settings, "export_public_url", None)
    if not base:
        request = ctx(info).request
        base = str(request.base_url) if request is not None else "/"
    return f"{base.rstrip('/')}/exports/{export_id}/download?token={token}"


@strawberry.mutation(description=(
    "Export a campaign's data as an XLSX workbook encrypted with `password` (ECMA-376 Agile: it opens in Excel "
    "or LibreOffice only with it). Owners and members with canExport, for campaigns in their scope. Runs in "
    "the background; every request, refused ones included, is in the download history."))
async def export_create(
    self, info: Info,
    campaign_id: Annotated[strawberry.ID, strawberry.argument(description="The campaign to export.")],
    reason: Annotated[str, strawberry.argument(description="Why (3 to 500 characters); kept in the history.")],
    password: Annotated[str, strawberry.argument(description=(
        "Password of the file: 12 to 128 characters, letters and at least one digit or symbol, at least 5 "
        "distinct characters, no space at either end. Never stored, logged or returned."))],
) -> ExportCreatePayload:
    p = ctx(info).principal
    created, errors = await attempt(lambda: service.create_export(p, decode_id(campaign_id, "Campaign"), reason,
                                                                  password))
    if created is None:
        return ExportCreatePayload(export=None, download_url=None, user_errors=errors)
    return ExportCreatePayload(export=Export.of(created.export),
                               download_url=download_url(info, created.export.id, created.token), user_errors=[])


@strawberry.mutation(description="Cancel an export that is queued, running or waiting for its download "
                                 "(requester or owner); its file is deleted and its link stops working.")
async def export_cancel(
    self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="The export.")],
) -> ExportPayload:
    p = ctx(info).principal
    m, errors = await attempt(lambda: service.cancel_export(p, decode_id(id, "Export"), ctx(info).settings))
    return ExportPayload(export=Export.of(m) if m else None, user_errors=errors)
