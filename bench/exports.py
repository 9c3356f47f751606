"""`python -m bench.exports [--small 10000] [--big 1000000] [--storage postgres|directory]`

Peak memory and time of one protected export (SPEC §11), for a small and a big campaign side by
side. Each size gets a throwaway PostgreSQL database seeded in bulk (leads, recipients, sends with
reads and clicks, day rollups); each export runs in a fresh child process — the real job
(`ExportRunner.run_one`: stream from the database in chunks, XlsxWriter constant memory, streamed
ECMA-376 encryption, store) — which reports its own RSS before the export and its peak during it (VmHWM, reset
right before the export starts). Memory
must not grow with the row count: the ratio of the RSS growth big/small is the figure to read.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone

from bench import harness as h


def _status_mb(field: str) -> float:
    """VmRSS / VmHWM of this process (ru_maxrss would carry the parent's peak across fork + exec)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak() -> None:
    """Start the peak (VmHWM) over from the current RSS (Linux: clear_refs 5)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


async def seed(url: str, n: int) -> int:
    from app import db
    from app.db import insert_rows
    from app.settings import Settings
    from models.campaigns import Campaign
    from models.enums import CampaignStatus, CampaignType
    from models.tenancy import Organization

    await db.init_db(Settings(database_url=url), migrate=True)
    try:
        org = await Organization.create(name=f"bench-{n}", currency="EUR", timezone="UTC")
        t0 = datetime(2026, 10, 1, 9, tzinfo=timezone.utc)
        c = await Campaign.create(organization_id=org.id, name=f"Export bench {n}", type=CampaignType.ALWAYS_ON,
                                  status=CampaignStatus.COMPLETED, start_at=t0, live_since=t0, launched_at=t0,
                                  ended_at=t0 + timedelta(days=29), audience_size=n, reach=n)
        step = 50_000
        for start in range(0, n, step):
            ids = range(start, min(n, start + step))
            leads = await insert_rows("lead", {
                "organization_id": "int4", "external_id": "text", "name": "text", "email": "text",
                "email_verified": "bool", "phone": "text", "tags": "jsonb", "tags_text": "text",
                "unsubscribed": "jsonb", "created_at": "timestamptz", "updated_at": "timestamptz"},
                [(org.id, f"ext-{i}", f"Recipient {i}", f"r{i}@example.test", i % 3 == 0, f"+3361{i:08d}",
                  '["vip"]' if i % 10 == 0 else "[]", ",vip," if i % 10 == 0 else "", "[]", t0, t0) for i in ids],
                returning="id, external_id")
            lead_ids = {r["external_id"]: r["id"] for r in leads}
            rows_r, rows_s = [], []
            for i in ids:
                lid = lead_ids[f"ext-{i}"]
                sent = t0 + timedelta(days=i % 28, minutes=i % 600)
                rows_r.append((c.id, lid, "TREATMENT", t0))
                rows_s.append((org.id, c.id, lid, "EMAIL", 0, sent.date(), f"m-{i}", "DELIVERED", True, 0, 0, sent,
                               sent, sent + timedelta(minutes=1), sent + timedelta(hours=2) if i % 2 == 0 else None,
                               sent + timedelta(hours=3) if i % 5 == 0 else None, False, 0, 0, sent))
            await insert_rows("recipient", {"campaign_id": "int4", "lead_id": "int4", '"group"': "text",
                                            "added_at": "timestamptz"}, rows_r)
            await insert_rows("send", {
                "organization_id": "int4", "campaign_id": "int4", "lead_id": "int4", "channel": "text",
                "center_key": "int4", "day": "date", "external_id": "text", "status": "text", "was_sent": "bool",
                "cost_micros": "int8", "credits": "int4", "queued_at": "timestamptz", "sent_at": "timestamptz",
                "delivered_at": "timestamptz", "read_at": "timestamptz", "clicked_at": "timestamptz",
                "system": "bool", "reserved_micros": "int8", "dispatch_attempts": "int4", "updated_at": "timestamptz"},
                rows_s)
        # The day rollup as the live path keeps it (reads within the view window; clicks of counted reads).
        days: dict = {}
        for i in range(n):
            day = (t0 + timedelta(days=i % 28, minutes=i % 600)).date()
            d = days.setdefault(day, [0, 0, 0])
            d[0] += 1
            d[1] += i % 2 == 0
            d[2] += i % 10 == 0
        await insert_rows("campaign_day_stat", {
            "organization_id": "int4", "campaign_id": "int4", "day": "date", "sent": "int4", "viewed": "int4",
            "clicked": "int4", "goals": "int4", "revenue_micros": "int8"},
            [(org.id, c.id, day, *v, 0, 0) for day, v in sorted(days.items())])
        return c.id
    finally:
        await db.close_db()


async def child(url: str, campaign_id: int, storage: str, export_dir: str) -> dict:
    """One export, measured from inside the process that runs it."""
    import orjson

    from app import db
    from app.exports.crypto import derive_key_material
    from app.exports.jobs import ExportRunner
    from app.settings import Settings
    from models.campaigns import Campaign
    from models.exports import Export

    settings = Settings(database_url=url, export_storage=storage, export_dir=export_dir)
    await db.init_db(settings)
    try:
        campaign = await Campaign.get(id=campaign_id)
        material = await asyncio.to_thread(derive_key_material, "Bench-password-123")
        export = await Export.create(organization_id=campaign.organization_id, campaign_id=campaign.id,
                                     campaign_name=campaign.name, campaign_type=campaign.type.value,
                                     reason="bench", key_material=orjson.dumps(material).decode(), token_hash="x" * 64)
        _reset_peak()
        before = _status_mb("VmRSS")
        started = time.perf_counter()
        assert await ExportRunner(settings).run_one()
        elapsed = time.perf_counter() - started
        done = await Export.get(id=export.id)
        assert done.status == "READY", (done.status, done.error)
        store = __import__("app.exports.storage", fromlist=["store_for"]).store_for(settings, done.storage)
        await store.delete(done.file_key)
        return {"rows": done.rows_done, "seconds": elapsed, "rss_before_mb": before, "rss_peak_mb": _status_mb("VmHWM"),
                "file_mb": done.file_size / 1e6, "recipients": done.recipient_rows}
    finally:
        await db.close_db()


async def run_size(n: int, storage: str) -> dict:
    url, name = await h.create_database()
    try:
        t = time.perf_counter()
        campaign_id = await seed(url, n)
        seeded = time.perf_counter() - t
        with tempfile.TemporaryDirectory() as tmp:
            out = subprocess.run([sys.executable, "-m", "bench.exports", "--child", url, str(campaign_id), storage, tmp],
                                 capture_output=True, text=True, timeout=3600)
        if out.returncode != 0:
            raise RuntimeError(out.stderr[-3000:])
        result = json.loads(out.stdout.strip().splitlines()[-1])
        result["seed_seconds"] = seeded
        return result
    finally:
        await h.drop_database(name)


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.exports")
    p.add_argument("--small", type=int, default=10_000)
    p.add_argument("--big", type=int, default=1_000_000)
    p.add_argument("--storage", default="postgres", choices=["postgres", "directory"])
    p.add_argument("--child", nargs=4, metavar=("URL", "CAMPAIGN", "STORAGE", "DIR"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        url, cid, storage, tmp = args.child
        print(json.dumps(asyncio.run(child(url, int(cid), storage, tmp))))
        return
    results = {}
    for n in (args.small, args.big):
        results[n] = asyncio.run(run_size(n, args.storage))
        print(f"  {n:>9,} recipients done: {results[n]}", file=sys.stderr)
    s, b = results[args.small], results[args.big]
    print(f"\nProtected export (PostgreSQL, {args.storage} store), one child process per run\n")
    print(f"{'':28}{args.small:>14,}{args.big:>14,}{'big/small':>12}")
    rows = [("recipients", "recipients", "{:,.0f}"), ("rows (4 sheets)", "rows", "{:,.0f}"),
            ("export time (s)", "seconds", "{:.1f}"), ("encrypted file (MB)", "file_mb", "{:.1f}"),
            ("RSS before export (MB)", "rss_before_mb", "{:.0f}"), ("peak RSS (MB)", "rss_peak_mb", "{:.0f}")]
    for label, key, fmt in rows:
        print(f"{label:28}{fmt.format(s[key]):>14}{fmt.format(b[key]):>14}{b[key] / s[key] if s[key] else 0:>11.2f}x")
    grow_s, grow_b = s["rss_peak_mb"] - s["rss_before_mb"], b["rss_peak_mb"] - b["rss_before_mb"]
    print(f"{'RSS growth during export (MB)':28}{grow_s:>14.0f}{grow_b:>14.0f}"
          f"{(grow_b / grow_s) if grow_s > 0 else 0:>11.2f}x")
    print(f"{'rows per second':28}{s['rows'] / s['seconds']:>14,.0f}{b['rows'] / b['seconds']:>14,.0f}")


if __name__ == "__main__":
    main()
