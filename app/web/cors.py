"""CORS for browser pages on another origin (issue 11, item 1).

One rule for HTTP and websockets: the origins listed in PULSE_ALLOWED_ORIGINS (exact
`scheme://host[:port]` strings, or ["*"] for any). Websockets are checked by the GraphQL view
(Strawberry's `allowed_origins`, refused with 403 during the handshake); HTTP requests by
Starlette's CORSMiddleware configured here from the same list. Credentials (cookies) are off:
clients authenticate with `Authorization: Bearer …`, which is an allowed request header. Preflight
answers are cached by the browser for `max_age` seconds.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware

from app.settings import Settings

ALLOWED_METHODS = ["GET", "POST", "OPTIONS"]
ALLOWED_HEADERS = ["authorization", "content-type", "accept"]
EXPOSED_HEADERS = ["content-length"]


def add_cors(app: Starlette, settings: Settings) -> None:
    """Add CORS as the outermost middleware, so that every answer (401 and 413 included) carries
    the headers a browser needs to read it. Nothing is added when no origin is allowed."""
    origins = list(settings.allowed_origins)
    if not origins:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"] if "*" in origins else origins,
        allow_methods=ALLOWED_METHODS,
        allow_headers=ALLOWED_HEADERS,
        expose_headers=EXPOSED_HEADERS,
        allow_credentials=False,
        max_age=settings.cors_max_age_s,
    )
