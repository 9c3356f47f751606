"""The live dashboard (examples/dashboard) in a real browser: Debian's chromium driven by
Playwright's Python package (system browser, nothing downloaded), the page served from ANOTHER
origin than the API (CORS + websocket origin check), against a real `pulse serve` process that is
restarted mid-stream. Screenshots of each step go to test-artifacts/dashboard/ (git-ignored)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.clients.server import ROOT, Api, PulseServer, drop_database, throwaway_database
from tests.clients.test_graphql_ws_resume import INGEST, event, setup_campaign
from tests.helpers import free_port

DIST = ROOT / "examples" / "dashboard" / "dist"
CHROMIUM = Path(os.environ.get("PULSE_TEST_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = ROOT / "test-artifacts" / "dashboard"
LIVE_WITHIN_S = 2.0


def _require_browser() -> None:
    missing = []
    if not (DIST / "index.html").is_file():
        missing.append("examples/dashboard/dist (npm ci && npm run build; scripts/install-clients does it)")
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (apt-get install chromium; scripts/install-clients does it as root)")
    try:
        import playwright  # noqa: F401
    except ImportError:
        missing.append("the playwright Python package (pip install -e '.[test]')")
    if missing:
        message = "dashboard browser test needs: " + "; ".join(missing)
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


DASHBOARD = ("{ dashboard { activeCampaigns totalReach totalSpent { amount } totalBudget { amount } "
             "budgetUtilization } }")
CAMPAIGN = ("query($c:ID!){ campaign(id:$c){ reach metrics { totals { sent delivered } } "
            "budget { spent { amount } utilization } } }")


@pytest.fixture
async def stack(tmp_path):
    _require_browser()
    url, name = await throwaway_database(tmp_path)
    static_port = free_port()
    page_origin = f"http://127.0.0.1:{static_port}"
    srv = PulseServer(url, tmp_path, PULSE_ALLOWED_ORIGINS=json.dumps([page_origin]))
    token = srv.cli("org", "create", "--name", "Browser Org", "--owner-email", "owner@browser.test")
    await srv.start()
    static = subprocess.Popen([sys.executable, "-m", "http.server", str(static_port), "--bind", "127.0.0.1",
                               "--directory", str(DIST)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield srv, token, page_origin
    finally:
        static.terminate()
        static.wait(10)
        await srv.close()
        await drop_database(name)


async def test_live_dashboard_in_chromium_from_another_origin(stack):
    from playwright.async_api import async_playwright, expect

    server, token, page_origin = stack
    assert page_origin.rsplit(":", 1)[1] != str(server.port)  # two origins
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    api = Api(server.url, token)
    campaign_id, leads = await setup_campaign(api, 120)
    await api("mutation($c:ID!,$i:CampaignUpdateInput!){ campaignUpdate(id:$c, input:$i){ userErrors{ code } } }",
              {"c": campaign_id, "i": {"budget": "1.00"}})
    serial = iter(range(10**6))

    async def ingest_sends(n: int) -> None:
        for _ in range(n):
            i = next(serial)
            r = await api(INGEST, {"e": [event(f"b{i}-SENT", f"b-{i}", "SENT", 1 + i / 10, campaign_id, leads[i])]})
            assert r["sendEventsIngest"]["accepted"] == 1, r

    await ingest_sends(5)
    problems: list[str] = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                          args=["--no-sandbox", "--disable-dev-shm-usage"])
        page = await browser.new_page(viewport={"width": 1280, "height": 1100})
        page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
        page.on("console", lambda msg: problems.append(f"console: {msg.text}") if msg.type == "error" else None)
        try:
            # 1. Sign in with the API URL and a token.
            await page.goto(f"{page_origin}/index.html")
            await page.fill("#api-url", server.url)
            await page.fill("#token", token)
            await page.screenshot(path=ARTIFACTS / "1-sign-in.png")
            await page.click("#signin-button")

            # 2. The organization's KPIs equal the API's.
            await expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=10_000)
            kpis = (await api(DASHBOARD))["dashboard"]
            for name in ("activeCampaigns", "totalReach", "budgetUtilization"):
                await expect(page.locator(f'[data-kpi="{name}"]')).to_have_attribute("data-value", str(kpis[name]))
            for name in ("totalSpent", "totalBudget"):
                await expect(page.locator(f'[data-kpi="{name}"]')).to_have_attribute("data-value",
                                                                                    kpis[name]["amount"])
            spent_text = await page.locator('[data-kpi="totalSpent"]').inner_text()
            assert spent_text == "€0.05", spent_text  # readable money, in the organization's currency
            await page.screenshot(path=ARTIFACTS / "2-organization-kpis.png")

            # 3. Pick the campaign: its KPIs, budget and the daily chart equal the API's.
            await page.select_option("#campaign-select", campaign_id)
            c = (await api(CAMPAIGN, {"c": campaign_id}))["campaign"]
            await expect(page.locator('[data-ckpi="sent"]')).to_have_attribute("data-value",
                                                                               str(c["metrics"]["totals"]["sent"]))
            await expect(page.locator('[data-ckpi="reach"]')).to_have_attribute("data-value", str(c["reach"]))
            await expect(page.locator('[data-budget="spent"]')).to_have_attribute("data-value",
                                                                                  c["budget"]["spent"]["amount"])
            await expect(page.locator("#daily-chart")).to_have_attribute("data-sent", "5")
            await expect(page.locator('#channels tr[data-channel="EMAIL"]')).to_have_count(1)
            await page.screenshot(path=ARTIFACTS / "3-campaign.png")

            # 4. Events ingested: the page changes within 2 s (KPIs, budget, alert, stream).
            await ingest_sends(80)  # 85 × 0.01 of a 1.00 budget: the 80 % alert
            began = time.monotonic()  # the last event is committed: from here, 2 s at most
            await expect(page.locator('[data-ckpi="sent"]')).to_have_attribute("data-value", "85",
                                                                               timeout=LIVE_WITHIN_S * 1000)
            await expect(page.locator("#stream-count")).to_have_attribute("data-count", "80",
                                                                          timeout=LIVE_WITHIN_S * 1000)
            await expect(page.locator('[data-kpi="totalSpent"]')).to_have_attribute("data-value", "0.85",
                                                                                    timeout=LIVE_WITHIN_S * 1000)
            await expect(page.locator('#alerts li[data-threshold="80"]')).to_have_count(1,
                                                                                   timeout=LIVE_WITHIN_S * 1000)
            live_s = time.monotonic() - began
            assert live_s <= LIVE_WITHIN_S, live_s
            await expect(page.locator("#daily-chart")).to_have_attribute("data-sent", "85", timeout=5000)
            await page.screenshot(path=ARTIFACTS / "4-live-update.png")

            # 5. The API restarts while events keep coming: the page reconnects and its stream
            #    misses nothing and repeats nothing.
            ingester = asyncio.create_task(ingest_sends(30))
            await asyncio.sleep(0.3)
            await server.restart(signal.SIGTERM)
            await expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=15_000)
            await ingester
            await expect(page.locator("#stream-count")).to_have_attribute("data-count", "110", timeout=10_000)
            await expect(page.locator('[data-ckpi="sent"]')).to_have_attribute("data-value", "115", timeout=10_000)
            # The 100 % alert was raised around the restart: the page shows it all the same.
            await expect(page.locator('#alerts li[data-threshold="100"]')).to_have_count(1, timeout=5000)
            await asyncio.sleep(1.0)  # a duplicate would arrive now
            await expect(page.locator("#stream-count")).to_have_attribute("data-count", "110")
            cursors = await page.locator("#stream tbody tr").evaluate_all("rows => rows.map(r => r.dataset.cursor)")
            assert len(cursors) == len(set(cursors)) == 50
            await page.screenshot(path=ARTIFACTS / "5-after-restart.png", full_page=True)
        finally:
            await browser.close()
            await api.close()
    # The page made no console errors, apart from the refused connections of the restart itself.
    unexpected = [p for p in problems if "ERR_CONNECTION_REFUSED" not in p and "WebSocket" not in p]
    assert not unexpected, unexpected
    print(f"\npage showed all of it {live_s:.2f}s after the last of 80 events was ingested; restart: {server.timings}")
