"""The export job: claim a queued export, write its workbook, encrypt it, store it, publish the link.

Runs in every `pulse worker` (production) and inside the API process when the worker is
embedded (the SQLite default). Workers claim a job with a conditional update and hold a lease
they renew after every chunk; a job whose worker died is taken over when the lease runs out
(three tries). The job checks after every chunk whether it was cancelled.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import tempfile
import uuid
from datetime import timedelta

import orjson

from app.exports import service
from app.exports.crypto import encrypt_file
from app.exports.storage import store_for
from app.exports.workbook import write_workbook
from models.exports import Export

log = logging.getLogger("pulse.exports")


class Cancelled(Exception):
    pass


class ExportRunner:
    def __init__(self, settings) -> None:
        self.settings = settings
        self.owner = f"{socket.gethostname()[:40]}-{os.getpid()}-{uuid.uuid4().hex[:6]}"

    async def claim(self) -> Export | None:
        t = service.now()
        for candidate in await Export.filter(status="PENDING").order_by("id").limit(5) or \
                await Export.filter(status="RUNNING", lease_until__lt=t, attempts__lt=3).order_by("id").limit(5):
            taken = await Export.filter(id=candidate.id, status=candidate.status, attempts=candidate.attempts).update(
                status="RUNNING", lease_owner=self.owner, lease_until=t + timedelta(seconds=self.settings.export_lease_s),
                attempts=candidate.attempts + 1, started_at=candidate.started_at or t)
            if taken:
                return await Export.get(id=candidate.id)
        return None

    async def run_one(self) -> bool:
        """Build one queued export, if there is one. Returns whether there was."""
        export = await self.claim()
        if export is None:
            return False
        try:
            await self._build(export)
        except Cancelled:
            log.info("export %s cancelled while running", export.id)
        except Exception as exc:  # noqa: BLE001 - the job fails, the worker goes on
            log.exception("export %s failed", export.id)
            await Export.filter(id=export.id, lease_owner=self.owner, status="RUNNING").update(
                status="FAILED", error=f"{type(exc).__name__}", key_material=None, finished_at=service.now())
        return True

    async def _build(self, export: Export) -> None:
        s = self.settings
        material = orjson.loads(export.key_material) if export.key_material else None
        if material is None or export.campaign_id is None:
            raise RuntimeError("export without key material or campaign")
        workdir = os.path.join(os.path.abspath(s.export_dir), "tmp")
        os.makedirs(workdir, mode=0o700, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=f"export-{export.id}-", dir=workdir)
        try:
            plain = os.path.join(tmp, "plain.xlsx")
            encrypted = os.path.join(tmp, "encrypted.xlsx")

            async def progress(done: int, total: int) -> None:
                kept = await Export.filter(id=export.id, status="RUNNING", lease_owner=self.owner).update(
                    rows_done=done, rows_total=total, progress=min(0.95, 0.95 * done / max(total, 1)),
                    lease_until=service.now() + timedelta(seconds=s.export_lease_s))
                if not kept:
                    raise Cancelled()

            counts = await write_workbook(export.campaign_id, plain, tmp, progress)
            size = await asyncio.to_thread(encrypt_file, plain, encrypted, material)
            os.unlink(plain)  # the plain workbook never outlives this step
            store = store_for(s)
            key = await store.put(f"export-{export.id}-{uuid.uuid4().hex}.xlsx", encrypted)
            t = service.now()
            done = await Export.filter(id=export.id, status="RUNNING", lease_owner=self.owner).update(
                status="READY", progress=1.0, rows_done=counts.rows, rows_total=counts.rows,
                campaign_rows=counts.campaign, stat_rows=counts.stat, recipient_rows=counts.recipient,
                user_rows=counts.user, key_material=None, storage=store.name, file_key=key, file_size=size,
                finished_at=t, expires_at=t + timedelta(seconds=s.export_link_ttl_s), lease_owner=None)
            if not done:  # cancelled (or taken over) meanwhile: the file is nobody's
                await store.delete(key)
                raise Cancelled()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    async def run(self, stop: asyncio.Event) -> None:
        last_sweep = 0.0
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            worked = False
            try:
                if loop.time() - last_sweep > max(5.0, self.settings.export_poll_s):
                    await service.sweep(self.settings)
                    last_sweep = loop.time()
                worked = await self.run_one()
            except Exception:  # noqa: BLE001 - keep going
                log.warning("export round failed", exc_info=True)
            if not worked:
                try:
                    await asyncio.wait_for(stop.wait(), timeout=self.settings.export_poll_s)
                except asyncio.TimeoutError:
                    pass
