"""Exports: files go to a throwaway directory; the job and the sweeper are driven explicitly (as
tests/sender drives the sender), on the directory store and, on PostgreSQL, on large objects."""

from __future__ import annotations

import io
import os
import tempfile

import msoffcrypto
import openpyxl
import pytest

from tests.conftest import PG_URL

PASSWORD = "Corr3ct-Horse-Battery"
STORES = ["directory", "postgres"] if PG_URL else ["directory"]


@pytest.fixture(scope="session", autouse=True)
def _export_dir(settings):
    with tempfile.TemporaryDirectory() as tmp:
        settings.export_dir = tmp
        yield tmp


@pytest.fixture(params=STORES)
def store(request, settings):
    """Run the test on each storage backend available."""
    before = settings.export_storage
    settings.export_storage = request.param
    yield request.param
    settings.export_storage = before


async def build_exports(settings) -> int:
    """Run the export job until no export is queued (what the background worker does)."""
    from app.exports.jobs import ExportRunner

    runner = ExportRunner(settings)
    n = 0
    while await runner.run_one():
        n += 1
    return n


def decrypt(raw: bytes, password: str = PASSWORD) -> openpyxl.Workbook:
    office = msoffcrypto.OfficeFile(io.BytesIO(raw))
    office.load_key(password=password)
    plain = io.BytesIO()
    office.decrypt(plain, verify_integrity=True)
    return openpyxl.load_workbook(plain, read_only=True)


def sheet_dicts(book, name: str) -> list[dict]:
    rows = list(book[name].iter_rows(values_only=True))
    header = rows[0]
    return [dict(zip(header, r)) for r in rows[1:]]


def stored_files(settings) -> list[str]:
    return [f for f in os.listdir(settings.export_dir) if f.endswith(".xlsx")] if os.path.isdir(settings.export_dir) else []
