"""The download route: `GET /exports/{id}/download?token=…` (no bearer token needed: the link's own
token authorizes it, once). Refusals are JSON errors with a code, and are recorded."""

from __future__ import annotations

from urllib.parse import quote

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from app.exports.service import DownloadRefused, open_download

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


async def download(request: Request) -> Response:
    settings = request.app.state.settings
    try:
        d = await open_download(request.path_params["export_id"], request.query_params.get("token"),
                                _client_ip(request), request.headers.get("user-agent"), settings)
    except DownloadRefused as exc:
        return Response(orjson.dumps({"errors": [{"message": exc.message, "extensions": {"code": exc.code}}]}),
                        status_code=exc.status, media_type="application/json",
                        headers={"Cache-Control": "no-store"})
    headers = {
        "Content-Disposition": f"attachment; filename=\"{d.filename}\"; filename*=UTF-8''{quote(d.filename)}",
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    }
    if d.export.file_size:
        headers["Content-Length"] = str(d.export.file_size)
    return StreamingResponse(d.chunks, media_type=XLSX, headers=headers)
