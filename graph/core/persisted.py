"""Persisted documents: Apollo's automatic persisted queries (APQ) and trusted documents.

APQ (the protocol of Apollo Client's persisted-query link, also spoken by urql and Relay):
a request may carry `extensions.persistedQuery = {"version": 1, "sha256Hash": H}`.

- hash only: the document registered under H runs; unknown → a GraphQL error
  `PersistedQueryNotFound` with `extensions.code = PERSISTED_QUERY_NOT_FOUND` (HTTP 200), and the
  client retries with the full document;
- hash + document: sha256(document) must equal H (else `PERSISTED_QUERY_HASH_MISMATCH`), then the
  document is registered and runs.

GET works the same (`?extensions={"persistedQuery":…}&variables=…`), so hashed queries are
cacheable by a CDN. The store is Redis in production (`PULSE_BROADCAST_URL=redis://…`; keys
`<PULSE_CHANNEL_PREFIX>pulse:apq:<hash>`, expiring after `PULSE_APQ_TTL_S`), shared by every
instance, with a bounded in-process LRU in front; in memory on the embedded default (bounded LRU
of `PULSE_APQ_CACHE_SIZE` documents).

Trusted documents (`PULSE_TRUSTED_DOCUMENTS=path[,path…]`): only the operations listed in the
manifests run; anything else is refused with `OPERATION_NOT_TRUSTED` (APQ registration is off).
A manifest is either graphql-codegen's `persisted-documents.json` (`{"<sha256>": "<document>"}`)
or Apollo's `persisted-query-manifest.json` (`{"operations": [{"id", "body", …}]}`); a mobile
build generates it from its operations and ships it with the server release (docs/api.md).
`pulse documents register FILE… --manifest PATH` builds or extends such a manifest from .graphql
files, checking each document against the schema.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import OrderedDict
from pathlib import Path
from typing import Any

log = logging.getLogger("pulse.documents")

NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
NOT_FOUND_MESSAGE = "PersistedQueryNotFound"


class DocumentRefusal(Exception):
    """A refused request, answered as GraphQL JSON: {"errors": [{message, extensions: {code}}]}."""

    def __init__(self, status: int, message: str, code: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers or {}


def sha256(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


def load_manifest(path: str | Path) -> dict[str, str]:
    """{hash: document} from a graphql-codegen or Apollo manifest; hashes are checked."""
    raw = json.loads(Path(path).read_text())
    if isinstance(raw, dict) and isinstance(raw.get("operations"), list):
        pairs = [(op["id"], op["body"]) for op in raw["operations"]]
    elif isinstance(raw, dict):
        pairs = list(raw.items())
    else:
        raise ValueError(f"{path}: not a persisted-documents manifest")
    documents = {}
    for key, body in pairs:
        digest = key.removeprefix("sha256:")
        if not isinstance(body, str) or sha256(body) != digest:
            raise ValueError(f"{path}: the document of {key} does not hash to it (sha256 of the exact text)")
        documents[digest] = body
    return documents


class _LRU:
    def __init__(self, size: int) -> None:
        self.size, self.items = size, OrderedDict()

    def get(self, key: str) -> str | None:
        value = self.items.get(key)
        if value is not None:
            self.items.move_to_end(key)
        return value

    def put(self, key: str, value: str) -> None:
        self.items[key] = value
        self.items.move_to_end(key)
        while len(self.items) > self.size:
            self.items.popitem(last=False)


class DocumentStore:
    """Where APQ documents live: a bounded LRU, backed by Redis when one is configured."""

    def __init__(self, redis_url: str | None = None, *, prefix: str = "", size: int = 1000, ttl_s: int = 7 * 86400,
                 trusted: dict[str, str] | None = None) -> None:
        self.local = _LRU(size)
        self.redis_url, self.prefix, self.ttl_s = redis_url, prefix, ttl_s
        self.trusted = trusted
        self._redis: Any = None

    def _client(self):
        if self._redis is None and self.redis_url:
            import redis.asyncio as aioredis

            self._redis = aioredis.from_url(self.redis_url, socket_connect_timeout=2, socket_timeout=2)
        return self._redis

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    def _key(self, digest: str) -> str:
        return f"{self.prefix}pulse:apq:{digest}"

    async def get(self, digest: str) -> str | None:
        if self.trusted is not None:
            return self.trusted.get(digest)
        document = self.local.get(digest)
        if document is None and (client := self._client()) is not None:
            try:
                value = await client.get(self._key(digest))
            except Exception:  # noqa: BLE001 - a cache: the client sends the document again
                log.warning("persisted query lookup failed", exc_info=True)
                value = None
            if value is not None:
                document = value.decode()
                self.local.put(digest, document)
        return document

    async def put(self, digest: str, document: str) -> None:
        self.local.put(digest, document)
        if (client := self._client()) is not None:
            try:
                await client.set(self._key(digest), document, ex=self.ttl_s)
            except Exception:  # noqa: BLE001
                log.warning("persisted query registration failed", exc_info=True)

    async def resolve(self, query: Any, extensions: Any) -> str | None:
        """The document to run for a request (raises DocumentRefusal)."""
        persisted = extensions.get("persistedQuery") if isinstance(extensions, dict) else None
        digest = None
        if persisted is not None:
            if not isinstance(persisted, dict) or persisted.get("version", 1) != 1 \
                    or not isinstance(persisted.get("sha256Hash"), str):
                raise DocumentRefusal(400, "extensions.persistedQuery must be {version: 1, sha256Hash: String}",
                                      "PERSISTED_QUERY_INVALID")
            digest = persisted["sha256Hash"].lower()
        if digest is None:
            if self.trusted is not None and isinstance(query, str):
                if sha256(query) not in self.trusted:
                    raise DocumentRefusal(400, "only registered operations run on this server (trusted documents)",
                                          "OPERATION_NOT_TRUSTED")
            return query
        if isinstance(query, str) and query:
            if sha256(query) != digest:
                raise DocumentRefusal(400, "provided sha256Hash does not match the query", "PERSISTED_QUERY_HASH_MISMATCH")
            if self.trusted is not None:
                if digest not in self.trusted:
                    raise DocumentRefusal(400, "only registered operations run on this server (trusted documents)",
                                          "OPERATION_NOT_TRUSTED")
                return query
            await self.put(digest, query)
            return query
        document = await self.get(digest)
        if document is None:
            raise DocumentRefusal(200, NOT_FOUND_MESSAGE, NOT_FOUND)
        return document
