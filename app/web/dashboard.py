"""Serve the built live dashboard (examples/dashboard, `npm ci && npm run build`) at /dashboard/.

On by default in development when the build exists (PULSE_DASHBOARD=false turns it off,
PULSE_DASHBOARD_DIR points at another build). The page is static: any static host can serve it
as well, and it talks to the API named on its sign-in form (CORS: PULSE_ALLOWED_ORIGINS).
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.responses import RedirectResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from app.settings import Settings

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "examples" / "dashboard" / "dist"


def dashboard_dir(settings: Settings) -> Path | None:
    """The build to serve, or None when the dashboard is off or not built."""
    enabled = settings.dashboard if settings.dashboard is not None else settings.env == "development"
    directory = Path(settings.dashboard_dir) if settings.dashboard_dir else DEFAULT_DIR
    if not enabled or not (directory / "index.html").is_file():
        return None
    return directory


def mount_dashboard(app: Starlette, settings: Settings) -> bool:
    directory = dashboard_dir(settings)
    if directory is None:
        return False

    async def to_slash(_request):
        return RedirectResponse("/dashboard/", status_code=308)

    app.router.routes.append(Route("/dashboard", to_slash))
    app.router.routes.append(Mount("/dashboard", app=StaticFiles(directory=directory, html=True), name="dashboard"))
    return True
