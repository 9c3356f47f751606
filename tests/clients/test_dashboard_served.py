"""`pulse serve` in development serves the built dashboard at /dashboard/; a setting turns it off,
and production does not serve it unless asked (issue 11, the live dashboard)."""

from __future__ import annotations

import httpx

from app.main import create_app


def _client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://pulse.test")


def _build(tmp_path):
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html><title>Campaign Pulse dashboard</title>")
    (tmp_path / "assets" / "app.js").write_text("console.log('pulse')")
    return tmp_path


async def test_development_serves_the_built_dashboard(settings, tmp_path):
    app = create_app(settings.model_copy(update={"env": "development", "dashboard_dir": str(_build(tmp_path))}))
    async with _client(app) as client:
        redirect = await client.get("/dashboard")
        assert redirect.status_code == 308 and redirect.headers["location"] == "/dashboard/"
        page = await client.get("/dashboard/")
        assert page.status_code == 200 and "Campaign Pulse dashboard" in page.text
        asset = await client.get("/dashboard/assets/app.js")
        assert asset.status_code == 200 and "javascript" in asset.headers["content-type"]


async def test_the_dashboard_can_be_turned_off_and_is_off_in_production(settings, tmp_path):
    build = str(_build(tmp_path))
    for update in ({"env": "development", "dashboard": False}, {"env": "production"}):
        app = create_app(settings.model_copy(update={"dashboard_dir": build, **update}))
        async with _client(app) as client:
            assert (await client.get("/dashboard/")).status_code == 404, update
    app = create_app(settings.model_copy(update={"env": "production", "dashboard": True, "dashboard_dir": build}))
    async with _client(app) as client:
        assert (await client.get("/dashboard/")).status_code == 200


async def test_no_build_no_route(settings, tmp_path):
    app = create_app(settings.model_copy(update={"env": "development", "dashboard_dir": str(tmp_path / "missing")}))
    async with _client(app) as client:
        assert (await client.get("/dashboard/")).status_code == 404
