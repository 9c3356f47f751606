"""Apollo automatic persisted queries (APQ) and trusted documents, over HTTP as Apollo's
persisted-query link speaks them (POST and GET)."""

import hashlib
import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from graph.core.persisted import DocumentStore, load_manifest
from tests.conftest import REDIS_URL


def _ext(digest: str) -> dict:
    return {"persistedQuery": {"version": 1, "sha256Hash": digest}}


def _doc() -> tuple[str, str]:
    query = f"query Apq{uuid.uuid4().hex[:8]} {{ viewer {{ organization {{ id }} }} }}"
    return query, hashlib.sha256(query.encode()).hexdigest()


async def test_hash_only_unknown_then_registered_then_hash_only(tenant, app):
    http, auth = tenant.gql.http, {"Authorization": f"Bearer {tenant.gql.token}"}
    query, digest = _doc()
    # 1. the link sends the hash only: not found, with the code and message the link retries on
    r = await http.post("/graphql", json={"extensions": _ext(digest)}, headers=auth)
    assert r.status_code == 200, r.text
    assert r.json()["errors"] == [{"message": "PersistedQueryNotFound", "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"}}]
    # 2. it retries with the document: registered and run
    r = await http.post("/graphql", json={"query": query, "extensions": _ext(digest)}, headers=auth)
    assert r.json() == {"data": {"viewer": {"organization": {"id": tenant.org_id}}}}
    # 3. from now on the hash alone runs it, over GET too (cacheable)
    r = await http.post("/graphql", json={"extensions": _ext(digest)}, headers=auth)
    assert r.json()["data"]["viewer"]["organization"]["id"] == tenant.org_id
    r = await http.get("/graphql", params={"extensions": json.dumps(_ext(digest)), "variables": "{}"},
                       headers={**auth, "accept": "*/*"})
    assert r.status_code == 200 and r.json()["data"]["viewer"]["organization"]["id"] == tenant.org_id
    if REDIS_URL:  # shared by every instance: another process (empty local cache) finds it in Redis
        documents = app.state.graphql.documents
        other = DocumentStore(REDIS_URL, prefix=app.state.settings.channel_prefix)
        try:
            assert await other.get(digest) == query
        finally:
            await other.close()
        documents.local.items.clear()
        r = await http.post("/graphql", json={"extensions": _ext(digest)}, headers=auth)
        assert r.json()["data"]["viewer"]["organization"]["id"] == tenant.org_id


async def test_registration_verifies_the_hash(anon):
    query, digest = _doc()
    r = await anon.http.post("/graphql", json={"query": "{ __typename }", "extensions": _ext(digest)})
    assert r.status_code == 400
    assert r.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_HASH_MISMATCH"
    r = await anon.http.post("/graphql", json={"extensions": _ext(digest)})  # nothing was registered
    assert r.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    r = await anon.http.post("/graphql", json={"extensions": {"persistedQuery": {"version": 2, "sha256Hash": 3}}})
    assert r.status_code == 400 and r.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_INVALID"


async def test_memory_store_is_bounded():
    store = DocumentStore(size=3)
    for i in range(10):
        q = f"{{ a{i}: __typename }}"
        await store.resolve(q, _ext(hashlib.sha256(q.encode()).hexdigest()))
    assert len(store.local.items) == 3


async def test_trusted_documents_run_only_registered_operations(tenant, app, tmp_path):
    http, auth = tenant.gql.http, {"Authorization": f"Bearer {tenant.gql.token}"}
    query, digest = _doc()
    manifest = tmp_path / "persisted-documents.json"  # graphql-codegen's format: {hash: document}
    manifest.write_text(json.dumps({f"sha256:{digest}": query}))
    view = app.state.graphql
    saved, view.documents = view.documents, DocumentStore(trusted=load_manifest(manifest))
    try:
        r = await http.post("/graphql", json={"extensions": _ext(digest)}, headers=auth)
        assert r.json()["data"]["viewer"]["organization"]["id"] == tenant.org_id
        r = await http.post("/graphql", json={"query": query}, headers=auth)  # the same text also runs
        assert r.json()["data"]["viewer"]["organization"]["id"] == tenant.org_id
        other = "{ viewer { id } }"
        r = await http.post("/graphql", json={"query": other}, headers=auth)
        assert r.status_code == 400 and r.json()["errors"][0]["extensions"]["code"] == "OPERATION_NOT_TRUSTED"
        # APQ cannot register new documents in this mode
        r = await http.post("/graphql", json={"query": other, "extensions": _ext(hashlib.sha256(other.encode()).hexdigest())},
                            headers=auth)
        assert r.status_code == 400 and r.json()["errors"][0]["extensions"]["code"] == "OPERATION_NOT_TRUSTED"
    finally:
        view.documents = saved


def test_manifest_with_a_wrong_hash_is_refused(tmp_path):
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"operations": [{"id": "0" * 64, "body": "{ __typename }", "name": "X", "type": "query"}]}))
    with pytest.raises(ValueError):
        load_manifest(path)


def test_cli_registers_documents_into_a_manifest(tmp_path):
    source = tmp_path / "ops.graphql"
    source.write_text("query Me { viewer { id } }\n\nquery Org { viewer { organization { id name } } }\n")
    manifest = tmp_path / "persisted-documents.json"
    pulse = Path(os.environ.get("VIRTUAL_ENV", Path(__file__).resolve().parents[2] / ".venv")) / "bin" / "pulse"
    cmd = [str(pulse)] if pulse.exists() else [shutil.which("pulse") or "pulse"]
    out = subprocess.run([*cmd, "documents", "register", str(source), "--manifest", str(manifest)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    documents = load_manifest(manifest)  # one .graphql file = one document (its exact text)
    assert documents == {hashlib.sha256(source.read_bytes()).hexdigest(): source.read_text()}
    codegen = tmp_path / "codegen.json"
    codegen.write_text(json.dumps({hashlib.sha256(b"{ viewer { id } }").hexdigest(): "{ viewer { id } }"}))
    out = subprocess.run([*cmd, "documents", "register", str(codegen), "--manifest", str(manifest)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert len(load_manifest(manifest)) == 2
    bad = tmp_path / "bad.graphql"
    bad.write_text("query Bad { nope }")
    out = subprocess.run([*cmd, "documents", "register", str(bad), "--manifest", str(manifest)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "nope" in (out.stderr + out.stdout)
    assert len(load_manifest(manifest)) == 2
