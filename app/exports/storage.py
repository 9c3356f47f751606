"""Where encrypted export files live until they are downloaded or expire.

An adapter stores a finished file under a key, streams it back in chunks, and deletes it:
- `DirectoryStore`: a directory. The embedded default (`PULSE_EXPORT_DIR`, local disk); in
  production a directory every API instance mounts (NFS, a shared volume) works the same way.
- `PostgresLargeObjectStore`: PostgreSQL large objects (`PULSE_EXPORT_STORAGE=postgres`): every
  instance that reaches the database can serve the file; nothing else to share.
An object-store adapter (S3 and the like) implements the same three methods.
"""

from __future__ import annotations

import asyncio
import os
import re
from typing import AsyncIterator, Protocol

from app.db import conn, is_postgres

CHUNK = 256 * 1024
_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")


class ExportStore(Protocol):
    name: str

    async def put(self, key: str, path: str) -> str:
        """Store the file at `path`; returns the key to fetch it with."""

    def open(self, key: str) -> AsyncIterator[bytes]:
        """The stored bytes, in chunks."""

    async def delete(self, key: str) -> None:
        """Remove it (no error when already gone)."""


class DirectoryStore:
    name = "directory"

    def __init__(self, directory: str) -> None:
        self.directory = os.path.abspath(directory)

    def _path(self, key: str) -> str:
        if not _KEY.match(key):
            raise ValueError("bad storage key")
        return os.path.join(self.directory, key)

    async def put(self, key: str, path: str) -> str:
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        target = self._path(key)
        await asyncio.to_thread(_move, path, target)
        return key

    async def open(self, key: str) -> AsyncIterator[bytes]:
        with open(self._path(key), "rb") as f:
            while True:
                chunk = await asyncio.to_thread(f.read, CHUNK)
                if not chunk:
                    return
                yield chunk

    async def delete(self, key: str) -> None:
        try:
            os.unlink(self._path(key))
        except FileNotFoundError:
            pass


def _move(src: str, dst: str) -> None:
    import shutil

    shutil.move(src, dst + ".part")
    os.chmod(dst + ".part", 0o600)
    os.replace(dst + ".part", dst)


class PostgresLargeObjectStore:
    """Files as PostgreSQL large objects; the key is the object's oid."""

    name = "postgres"

    async def put(self, key: str, path: str) -> str:
        db = conn()
        async with db.acquire_connection() as c:
            async with c.transaction():
                oid = await c.fetchval("SELECT lo_create(0)")
                fd = await c.fetchval("SELECT lo_open($1, 131072)", oid)  # INV_WRITE
                with open(path, "rb") as f:
                    while True:
                        chunk = await asyncio.to_thread(f.read, CHUNK)
                        if not chunk:
                            break
                        await c.execute("SELECT lowrite($1, $2)", fd, chunk)
                await c.execute("SELECT lo_close($1)", fd)
        os.unlink(path)
        return str(oid)

    async def open(self, key: str) -> AsyncIterator[bytes]:
        oid = int(key)
        db = conn()
        async with db.acquire_connection() as c:
            async with c.transaction():
                fd = await c.fetchval("SELECT lo_open($1, 262144)", oid)  # INV_READ
                while True:
                    chunk = await c.fetchval("SELECT loread($1, $2)", fd, CHUNK)
                    if not chunk:
                        break
                    yield bytes(chunk)
                await c.execute("SELECT lo_close($1)", fd)

    async def delete(self, key: str) -> None:
        oid = int(key)
        db = conn()
        async with db.acquire_connection() as c:
            await c.execute("SELECT lo_unlink(oid) FROM pg_largeobject_metadata WHERE oid = $1", oid)


def store_for(settings, name: str | None = None) -> ExportStore:
    """The configured store (or the one a file was written to)."""
    name = name or settings.export_storage
    if name == "postgres":
        if not is_postgres():
            raise RuntimeError("PULSE_EXPORT_STORAGE=postgres needs a PostgreSQL database")
        return PostgresLargeObjectStore()
    return DirectoryStore(settings.export_dir)
