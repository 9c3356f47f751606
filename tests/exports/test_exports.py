"""Protected exports through the API (SPEC §11): the file opens only with its password and holds
the API's own figures; refusals, single use, expiry and the sweeper; on every storage backend."""

from __future__ import annotations

import asyncio
import io
import zipfile
from datetime import date, datetime, timedelta
from urllib.parse import urlsplit

import msoffcrypto
import pytest
from msoffcrypto.exceptions import InvalidKeyError

from tests.exports.conftest import PASSWORD, build_exports, decrypt, sheet_dicts, stored_files
from tests.analytics.test_attribution_and_lift import GOALS, ev, goal
from tests.helpers import create_campaign, ingest, make_leads, mutate

CREATE = """mutation($c:ID!, $r:String!, $p:String!){ exportCreate(campaignId:$c, reason:$r, password:$p){
  export{ id status progress } downloadUrl userErrors{ field message code } } }"""
HISTORY = """query($c:ID){ exports(campaignId:$c, first: 100){ totalCount edges{ node{ id status refusal reason
  campaignName requestedByEmail requestedBy{ email } campaign{ id } progress rowsDone rowsTotal
  rowCounts{ campaign campaignStat campaignUser user } linkUsed downloadedAt downloadIp downloadUserAgent
  fileDeleted expiresAt createdAt refusedAttempts{ code ip userAgent at } } } } }"""
STATS = """query($id:ID!){ campaign(id:$id){ id name status type startAt endAt createdAt
  stats(period: LIFETIME){ totals{ sent viewed clicked goals revenue{ amount } }
    daily{ day sent viewed clicked goals revenue{ amount } }
    recipients(first: 500){ edges{ node{ group lead{ id externalId name email } sentAt viewedAt clickedAt goalAt } } } } } }"""
CANCEL = "mutation($id:ID!){ exportCancel(id:$id){ export{ status fileDeleted } userErrors{ code message } } }"


def when(value):
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


async def create(gql, campaign_id, reason="quarterly audit", password=PASSWORD) -> dict:
    return (await gql(CREATE, {"c": campaign_id, "r": reason, "p": password}))["exportCreate"]


def link(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


async def history(gql, campaign_id=None) -> list[dict]:
    return [e["node"] for e in (await gql(HISTORY, {"c": campaign_id}))["exports"]["edges"]]


async def engaged_campaign(gql, type_="SCHEDULED"):
    """A launched campaign with sends, reads, clicks and goals over several days."""
    leads = await make_leads(gql, 6)
    c = await create_campaign(gql, controlGroupPercent=30, goal={"type": "SALE"}, type=type_,
                              channels=[{"channel": "EMAIL", "unitCost": "0"}])
    await gql("mutation($c:ID!,$i:AudienceInput!){ audienceSet(campaignId:$c, input:$i){ userErrors{ code } } }",
              {"c": c["id"], "i": {"leadIds": [lead["id"] for lead in leads]}})
    assert not (await mutate(gql, "campaignLaunch", c["id"]))["userErrors"]
    d = (await gql(STATS, {"id": c["id"]}))["campaign"]
    groups = {e["node"]["lead"]["id"]: e["node"]["group"] for e in d["stats"]["recipients"]["edges"]}
    treatment = [lead for lead in leads if groups[lead["id"]] == "TREATMENT"]
    base = datetime.now().astimezone().replace(microsecond=0) + timedelta(minutes=1)
    day, hour = timedelta(days=1), timedelta(hours=1)
    events = []
    for i, lead in enumerate(treatment):
        ext = f"{c['id']}-m{i}"
        events.append(ev(f"{ext}-s", ext, "SENT", base + i * day, c, lead))
        if i % 2 == 0:
            events.append(ev(f"{ext}-o", ext, "OPENED", base + i * day + 2 * hour))
        if i % 4 == 0:
            events.append(ev(f"{ext}-c", ext, "CLICKED", base + i * day + 3 * hour))
    r = await ingest(gql, events)
    assert r["accepted"] == len(events), r
    g = await gql(GOALS, {"e": [goal(f"{c['id']}-g0", treatment[0], base + 4 * hour, "120.50")]})
    assert g["goalEventsIngest"]["accepted"] == 1
    return c


async def test_workbook_opens_only_with_its_password_and_holds_the_api_figures(tenant, http, settings, store):
    gql = tenant.gql
    c = await engaged_campaign(gql)
    created = await create(gql, c["id"])
    assert not created["userErrors"], created
    assert created["export"]["status"] == "PENDING" and created["downloadUrl"]
    assert PASSWORD not in str(created)
    assert await build_exports(settings) >= 1
    [entry] = await history(gql, c["id"])
    assert entry["status"] == "READY" and entry["progress"] == 1.0 and entry["fileDeleted"] is False

    response = await http.get(link(created["downloadUrl"]), headers={"User-Agent": "pytest-export/1"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert "attachment" in response.headers["content-disposition"] and ".xlsx" in response.headers["content-disposition"]
    raw = response.content

    # Not a zip (nothing readable without the password); a wrong password does not open it.
    assert not zipfile.is_zipfile(io.BytesIO(raw))
    assert msoffcrypto.OfficeFile(io.BytesIO(raw)).is_encrypted()
    with pytest.raises(InvalidKeyError):
        decrypt(raw, "Wrong-password-123")
    book = decrypt(raw)
    assert book.sheetnames == ["Campaign", "CampaignStat", "CampaignUser", "User"]

    api = (await gql(STATS, {"id": c["id"]}))["campaign"]
    totals = api["stats"]["totals"]
    assert totals["sent"] > 0 and totals["viewed"] > 0 and totals["clicked"] > 0 and totals["goals"] == 1
    [row] = sheet_dicts(book, "Campaign")
    assert (row["id"], row["name"], row["state"], row["type"]) == (api["id"], api["name"], api["status"], api["type"])
    assert (row["sent"], row["view"], row["click"], row["goal"]) == (
        totals["sent"], totals["viewed"], totals["clicked"], totals["goals"])
    assert row["revenue"] == totals["revenue"]["amount"] == "120.50"
    assert when(row["createdAt"]) == when(api["createdAt"]) and when(row["startAt"]) == when(api["startAt"])

    stats = sheet_dicts(book, "CampaignStat")
    days = [date.fromisoformat(s["date"]) for s in stats]
    assert days == [days[0] + timedelta(days=i) for i in range(len(days))], "one row per day, no gaps"
    assert len(days) >= len(api["stats"]["daily"]) and len(days) >= 4
    active = [{"day": s["date"], "sent": s["sent"], "viewed": s["view"], "clicked": s["click"], "goals": s["goal"],
               "revenue": {"amount": s["revenue"]}} for s in stats if s["sent"] or s["view"] or s["click"] or s["goal"]]
    assert active == api["stats"]["daily"]
    for key, col in (("sent", "sent"), ("viewed", "view"), ("clicked", "click"), ("goals", "goal")):
        assert sum(s[col] for s in stats) == totals[key]

    recipients = {e["node"]["lead"]["id"]: e["node"] for e in api["stats"]["recipients"]["edges"]}
    sheet = sheet_dicts(book, "CampaignUser")
    assert len(sheet) == len(recipients) == 6
    for r in sheet:
        node = recipients[r["userId"]]
        assert r["campaignId"] == c["id"] and r["group"] == node["group"]
        for col, key in (("sentAt", "sentAt"), ("viewedAt", "viewedAt"), ("clickedAt", "clickedAt"),
                         ("goalAt", "goalAt")):
            assert when(r[col]) == when(node[key]), (col, r, node)
    assert sum(1 for r in sheet if r["sentAt"]) == totals["sent"]
    users = sheet_dicts(book, "User")
    assert {(u["id"], u["externalId"], u["name"], u["email"]) for u in users} == {
        (n["lead"]["id"], n["lead"]["externalId"], n["lead"]["name"], n["lead"]["email"]) for n in recipients.values()}

    [entry] = await history(gql, c["id"])
    assert entry["status"] == "DOWNLOADED" and entry["linkUsed"] and entry["downloadIp"]
    assert entry["downloadUserAgent"] == "pytest-export/1" and entry["fileDeleted"] is True
    assert entry["rowCounts"] == {"campaign": 1, "campaignStat": len(stats), "campaignUser": 6, "user": 6}
    assert entry["reason"] == "quarterly audit" and entry["requestedByEmail"].startswith("owner@")
    if store == "directory":
        assert stored_files(settings) == [] or all(f"export-{entry['id']}" not in f for f in stored_files(settings))

    # Single use: the second download is refused, recorded, and gets no data.
    again = await http.get(link(created["downloadUrl"]), headers={"User-Agent": "second/1"})
    assert again.status_code == 410 and again.json()["errors"][0]["extensions"]["code"] == "LINK_USED"
    assert b"PK" not in again.content
    [entry] = await history(gql, c["id"])
    assert [(a["code"], a["userAgent"]) for a in entry["refusedAttempts"]] == [("LINK_USED", "second/1")]

    # A one-time (SCHEDULED) campaign is downloaded once: a new request is refused and recorded.
    second = await create(gql, c["id"])
    assert second["userErrors"][0]["code"] == "ALREADY_DOWNLOADED" and second["downloadUrl"] is None
    assert [e["refusal"] for e in await history(gql, c["id"])] == ["ALREADY_DOWNLOADED", None]


async def test_always_on_campaign_exports_again_and_large_objects_are_deleted(tenant, http, settings, store):
    gql = tenant.gql
    c = await engaged_campaign(gql, "ALWAYS_ON")
    for _ in range(2):
        created = await create(gql, c["id"])
        assert not created["userErrors"], created
        await build_exports(settings)
        response = await http.get(link(created["downloadUrl"]))
        assert response.status_code == 200
        assert sheet_dicts(decrypt(response.content), "Campaign")[0]["id"] == c["id"]
    entries = await history(gql, c["id"])
    assert [e["status"] for e in entries] == ["DOWNLOADED", "DOWNLOADED"] and all(e["fileDeleted"] for e in entries)
    if store == "postgres":
        from app.db import fetch
        from models.exports import Export

        keys = [int(e.file_key) for e in await Export.filter(campaign_id=int(_pk(c["id"])))]
        left = await fetch("SELECT oid FROM pg_largeobject_metadata WHERE oid = ANY(?)", [keys])
        assert left == []


def _pk(gid: str) -> str:
    import base64

    return base64.b64decode(gid).decode().split(":")[1]


async def test_refusals_are_user_errors_and_recorded(tenant, tenant_factory, settings):
    gql = tenant.gql
    zone_a, zone_b = await tenant.zone(), await tenant.zone()
    in_a = await create_campaign(gql, ownerUnitId=zone_a)
    in_b = await create_campaign(gql, ownerUnitId=zone_b)
    analyst = await tenant.member("ANALYST", zone_a)
    manager_no_right = await tenant.member("MANAGER", zone_a)
    exporter_a = await tenant.member("MANAGER", zone_a, can_export=True)
    stranger = await tenant_factory()

    assert (await create(analyst, in_a["id"]))["userErrors"][0]["code"] == "FORBIDDEN"
    assert (await create(manager_no_right, in_a["id"]))["userErrors"][0]["code"] == "FORBIDDEN"
    assert (await create(exporter_a, in_b["id"]))["userErrors"][0]["code"] == "NOT_FOUND"  # other scope
    assert (await create(stranger.gql, in_a["id"]))["userErrors"][0]["code"] == "NOT_FOUND"  # other organization
    assert (await create(exporter_a, "bm9wZTox"))["userErrors"][0]["code"] == "NOT_FOUND"
    weak = await create(exporter_a, in_a["id"], password="short1")
    assert weak["userErrors"][0]["code"] == "WEAK_PASSWORD" and weak["userErrors"][0]["field"] == ["password"]
    for bad in ("onlyletterslongenough", "1111111111111", " Leading-space-1", "aaaaaaaaaaaa1"):
        assert (await create(exporter_a, in_a["id"], password=bad))["userErrors"][0]["code"] == "WEAK_PASSWORD", bad
    assert (await create(exporter_a, in_a["id"], reason="  "))["userErrors"][0]["code"] == "INVALID"
    ok = await create(exporter_a, in_a["id"])
    assert not ok["userErrors"]

    owner_view = await history(gql)
    refused = sorted((e["refusal"], e["requestedByEmail"].split("-")[0]) for e in owner_view if e["status"] == "REFUSED")
    assert refused == [("FORBIDDEN", "analyst"), ("FORBIDDEN", "manager"), ("NOT_FOUND", "manager"),
                       ("NOT_FOUND", "manager")]
    assert all(e["campaign"] is None for e in owner_view if e["refusal"] == "NOT_FOUND")  # nothing leaks
    # The other organization's refused attempt is in its own history, not in ours.
    [theirs] = await history(stranger.gql)
    assert theirs["refusal"] == "NOT_FOUND" and theirs["campaignName"] == ""
    # Export-right members see their scope's exports (and their own attempts); others only their own.
    exporter_view = await history(exporter_a)
    assert {e["status"] for e in exporter_view} == {"PENDING", "REFUSED"}
    assert all(e["requestedByEmail"].startswith("manager") for e in exporter_view)
    assert [e["refusal"] for e in await history(analyst)] == ["FORBIDDEN"]
    # The password never comes back, nor is it stored anywhere in the row.
    from models.exports import Export

    rows = await Export.filter(organization_id=int(_pk(tenant.org_id)))
    assert rows and all(PASSWORD not in str(row.__dict__) for row in rows)
    # Unauthenticated: a top-level error, not a 500.
    anon = await gql.http.post("/graphql", json={"query": CREATE, "variables": {"c": in_a["id"], "r": "x", "p": "y"}})
    assert anon.status_code == 200 and anon.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    await gql(CANCEL, {"id": ok["export"]["id"]})


async def test_wrong_token_expiry_sweeper_and_cancel(tenant, http, settings, store):
    from app.exports.service import sweep

    gql = tenant.gql
    c = await engaged_campaign(gql, "ALWAYS_ON")
    created = await create(gql, c["id"])
    url = link(created["downloadUrl"])
    early = await http.get(url)
    assert early.status_code == 409 and early.json()["errors"][0]["extensions"]["code"] == "NOT_READY"
    ttl = settings.export_link_ttl_s
    settings.export_link_ttl_s = 1.0
    try:
        await build_exports(settings)
    finally:
        settings.export_link_ttl_s = ttl
    wrong = await http.get(url.replace("token=", "token=x"))
    assert wrong.status_code == 403 and wrong.json()["errors"][0]["extensions"]["code"] == "WRONG_TOKEN"
    no_token = await http.get(url.split("?")[0])
    assert no_token.status_code == 403
    for bogus in ("/exports/99999999999999999999999/download?token=x", "/exports/0/download?token=x"):
        assert (await http.get(bogus)).status_code == 404
    await asyncio.sleep(1.2)
    expired = await http.get(url)
    assert expired.status_code == 410 and expired.json()["errors"][0]["extensions"]["code"] == "LINK_EXPIRED"
    [entry] = await history(gql, c["id"])
    assert entry["status"] == "READY" and entry["fileDeleted"] is False  # the sweeper has not run yet
    result = await sweep(settings)
    assert result["expired"] >= 1 and result["deleted"] >= 1
    [entry] = await history(gql, c["id"])
    assert entry["status"] == "EXPIRED" and entry["fileDeleted"] is True and not entry["linkUsed"]
    assert [a["code"] for a in entry["refusedAttempts"]] == ["NOT_READY", "WRONG_TOKEN", "WRONG_TOKEN", "LINK_EXPIRED"]
    assert entry["refusedAttempts"][0]["ip"] and entry["refusedAttempts"][0]["userAgent"]
    assert all(f"export-{_pk(entry['id'])}-" not in f for f in stored_files(settings))
    if store == "postgres":
        from app.db import fetch
        from models.exports import Export

        row = await Export.get(id=int(_pk(entry["id"])))
        assert await fetch("SELECT oid FROM pg_largeobject_metadata WHERE oid = ?", [int(row.file_key)]) == []

    # Cancel: before the job runs, the job skips it and the link is refused.
    queued = await create(gql, c["id"])
    cancelled = (await gql(CANCEL, {"id": queued["export"]["id"]}))["exportCancel"]
    assert cancelled["export"]["status"] == "CANCELLED" and not cancelled["userErrors"]
    await build_exports(settings)
    again = (await gql(CANCEL, {"id": queued["export"]["id"]}))["exportCancel"]
    assert again["userErrors"][0]["code"] == "ILLEGAL_TRANSITION"
    revoked = await http.get(link(queued["downloadUrl"]))
    assert revoked.status_code == 410 and revoked.json()["errors"][0]["extensions"]["code"] == "LINK_REVOKED"
    # Cancel a READY export: its file is deleted at once.
    ready = await create(gql, c["id"])
    await build_exports(settings)
    done = (await gql(CANCEL, {"id": ready["export"]["id"]}))["exportCancel"]
    assert done["export"] == {"status": "CANCELLED", "fileDeleted": True}
    assert (await http.get(link(ready["downloadUrl"]))).status_code == 410


async def test_progress_subscription_follows_the_job(tenant, live_server, settings):
    from tests.wsclient import connect

    gql = tenant.gql
    c = await engaged_campaign(gql, "ALWAYS_ON")
    created = await create(gql, c["id"])
    ws = await connect(live_server, gql.token)
    try:
        await ws.subscribe("p", "subscription($id:ID!){ exportProgress(id:$id){ id status progress rowsDone } }",
                           {"id": created["export"]["id"]})
        first = await ws.next("p")
        assert first["exportProgress"]["status"] == "PENDING"
        await build_exports(settings)
        last = await ws.until("p", lambda d: d["exportProgress"]["status"] == "READY")
        assert last["exportProgress"]["progress"] == 1.0 and last["exportProgress"]["rowsDone"] > 0
        assert (await ws.message("p"))["type"] == "complete"
        # another organization cannot follow it
        await ws.subscribe("q", "subscription($id:ID!){ exportProgress(id:$id){ id } }", {"id": "RXhwb3J0Ojk5OTk5OTk="})
        msg = await ws.message("q")
        assert msg["type"] == "error" or msg["payload"].get("errors")
    finally:
        await ws.close()
