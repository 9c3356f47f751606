"""Issue 15, fifth pass: a campaign's send log whose nodes select only fields of `SEND_NEEDS` reads only
the columns those fields need into partial rows and builds its Send objects with only the selected
plain values (graph/campaigns/types.py `sends_shape`, graph/delivery/types.py `send_builder`), and
every connection encodes its cursors only when they are read (graph/core `page_of`). Each answers
byte for byte what the general path answers — full rows, `Send.of`, every cursor encoded
(`page_of_general`) — for every Send field alone and many combinations (fragments, aliases,
directives, pageInfo, cursors, totalCount, paging, filters, several campaigns, two logs of one
campaign); no field that is not selected is ever read; and a wrong needs-map entry is caught."""

from __future__ import annotations

import pytest

from tests.campaigns.test_fast_reads import _busy_campaign
from tests.helpers import create_campaign, ingest, launched_campaign

SUB = {"recipient": "{ id name email }", "cost": "{ amount currency }",
       "events": "{ type occurredAt receivedAt idempotencyKey cost { amount currency } reason machine }"}


def _field(name: str) -> str:
    return f"{name} {SUB.get(name, '')}".strip()


def _every_field() -> str:
    from graph.delivery.types import SEND_NEEDS

    return " ".join(_field(n) for n in SEND_NEEDS)


FRAGMENTS = {
    "F": "fragment F on Send { id sentAt recipient { name } }",
    "G": "fragment G on SendConnection { totalCount edges { node { id cost { amount } ...F } } }",
    "H": "fragment H on SendEdge { cursor node { status } }",
}


def _shapes() -> list[str]:
    """Selections of a `sends` connection."""
    return [
        "edges { node { id channel status externalId queuedAt sentAt } }",  # bench.peer read (b)
        f"edges {{ node {{ {_every_field()} }} }}",
        f"totalCount pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }} "
        f"edges {{ cursor node {{ __typename {_every_field()} }} }}",
        "totalCount",
        "edges { cursor }",
        "edges { node { __typename } }",
        "pageInfo { hasNextPage hasPreviousPage startCursor endCursor }",
        "pageInfo { hasNextPage } edges { node { id } }",
        "pageInfo { endCursor } edges { node { status } }",
        "pageInfo { startCursor } edges { cursor node { id status } }",
        "__typename edges { __typename node { __typename id } } pageInfo { __typename hasNextPage }",
        "edges { n: node { s: status st: status c: channel } c1: cursor c2: cursor } p: pageInfo { e: endCursor }",
        "edges { node { ...F } }",
        "...G",
        "edges { ...H node { id } }",
        "edges { node { ... on Send { status failureReason } ... on Node { id } ... { readAt } } }",
        "edges { node { id readAt @skip(if: true) clickedAt @include(if: false) } }",
        "edges { node { id readAt @include(if: $yes) sentAt @skip(if: $no) ... @include(if: $yes) { status } } }",
        "edges { node { ...F @skip(if: $no) } }",
        "edges @include(if: false) { node { id bounceType } } totalCount",
        "edges { node { campaignId } }",
        "edges { node { id events { type } } }",
        "edges { node { recipient { id } cost { currency } } }",
        "edges { node { deliveredAt failedAt bouncedAt repliedAt unsubscribedAt credits skipReason } }",
        "a: edges { node { id } } b: edges { node { channel } }",
    ]


def _arguments(cut: str) -> list[str]:
    return ["first: 50", "first: 3", f'first: 2, after: "{cut}"', f'first: 50, after: "{cut}"', "first: 0",
            "first: 50, filter: { channel: SMS }", "first: 50, filter: { status: DELIVERED }",
            "first: 2, filter: { channel: EMAIL, status: SENT }", 'first: 3, filter: { recipient: "example" }']


def _documents(selection: str, args: str) -> list[tuple[str, bool]]:
    """(document, whether it uses $id) reading `sends(args) { selection }`: one campaign, the list of
    campaigns (the ROW_NUMBER() window), and two logs of one campaign in one request."""
    used = " ".join(text for name, text in FRAGMENTS.items() if f"...{name}" in selection
                    or (name == "F" and "...G" in selection))
    flags = "".join(f", ${v}: Boolean! = {d}" for v, d in (("yes", "true"), ("no", "false")) if f"${v}" in selection)
    return [
        (f"{used} query($id: ID!{flags}) {{ campaign(id: $id) {{ sends({args}) {{ {selection} }} }} }}", True),
        (f"{used} query{f'({flags[2:]})' if flags else ''} {{ campaigns(first: 10) {{ edges {{ node {{ id "
         f"sends({args}) {{ {selection} }} }} }} }} }}", False),
        (f"{used} query($id: ID!{flags}) {{ campaign(id: $id) {{ a: sends({args}) {{ {selection} }} "
         f"b: sends(first: 4) {{ edges {{ node {{ id credits }} }} }} }} }}", True),
    ]


async def _log(gql) -> dict:
    """Campaigns with sends holding a value in every column the log shows (statuses, reasons, bounce
    types, skips, read/click/reply/unsubscribe times, costs, credits), several events per send, and
    campaigns with few or no sends."""
    from app import db
    from graph.core import decode_id

    busy, leads = await _busy_campaign(gql)
    more = []
    for i, lead in enumerate(leads):
        base = {"externalId": f"{busy['id']}-x{i}", "channel": ("EMAIL", "SMS")[i % 2], "campaignId": busy["id"],
                "leadId": lead["id"]}
        for k, kind in enumerate(("REPLIED", "UNSUBSCRIBED", "CLICKED")[: i % 4]):
            more.append({**base, "idempotencyKey": f"{busy['id']}-m{i}-{k}", "type": kind,
                         "occurredAt": f"2026-01-06T1{k}:0{i}:00Z"})
        if i % 3 == 0:
            more.append({**base, "idempotencyKey": f"{busy['id']}-c{i}", "type": "DELIVERED", "cost": "0.0123",
                         "credits": 2 + i, "occurredAt": "2026-01-05T11:00:00Z"})
    r = await ingest(gql, more)
    assert not r["rejected"], r
    other, _ = await _busy_campaign(gql, n_leads=3)
    await create_campaign(gql)  # no sends at all
    await launched_campaign(gql, n_leads=2)  # launched, no sends
    ids = [decode_id(busy["id"], "Campaign")]
    rows = await db.fetch(f"SELECT id, status FROM \"send\" WHERE campaign_id = ? ORDER BY id", ids)
    bounced = [r["id"] for r in rows if r["status"] == "BOUNCED"]
    await db.execute("UPDATE \"send\" SET bounce_type = ? WHERE id = ?", ["HARD", bounced[0]])
    await db.execute("UPDATE \"send\" SET status = ?, skip_reason = ?, sent_at = NULL WHERE id = ?",
                     ["SKIPPED", "NO_ADDRESS", rows[-1]["id"]])
    return {"busy": busy["id"], "other": other["id"]}


@pytest.fixture
def paths(monkeypatch):
    """`paths.general()`: the send log on full rows and `Send.of`, every cursor encoded (the general
    path); `paths.partial()`: as it is. `paths.reads` lists what the send log fetched: ("partial",
    names) or ("full", None)."""
    from app import db
    from graph.campaigns import queries, types
    from graph.core import page_of_general

    reads = []
    fetch_partial, fetch_light = db.fetch_partial, db.fetch_light

    async def partial(model, names, query, params=()):
        if model.__name__ == "Send":
            reads.append(("partial", tuple(names)))
        return await fetch_partial(model, names, query, params)

    async def light(model, query, params=()):
        if model.__name__ == "Send":
            reads.append(("full", None))
        return await fetch_light(model, query, params)

    monkeypatch.setattr(db, "fetch_partial", partial)
    monkeypatch.setattr(db, "fetch_light", light)

    class Paths:
        def __init__(self):
            self.reads = reads
            self.patch = None

        def general(self):
            self.patch = monkeypatch.context()
            m = self.patch.__enter__()
            m.setattr(types, "sends_shape", lambda info: None)
            m.setattr(types, "page_of", page_of_general)
            m.setattr(queries, "page_of", page_of_general)

        def partial(self):
            if self.patch is not None:
                self.patch.__exit__(None, None, None)
                self.patch = None

    yield Paths()


async def _both(gql, paths, document: str, variables: dict | None) -> tuple[bytes, list]:
    paths.partial()
    paths.reads.clear()
    fast = await gql.raw(document, variables)
    reads = list(paths.reads)
    paths.general()
    try:
        slow = await gql.raw(document, variables)
    finally:
        paths.partial()
    assert fast.status_code == slow.status_code == 200
    assert fast.content == slow.content, (document, fast.content, slow.content)
    return fast.content, reads


async def test_every_shape_answers_what_the_general_path_answers(tenant, paths):
    from app.delivery.sends import partial_names

    gql = tenant.gql
    made = await _log(gql)
    whole = await gql("query($id: ID!) { campaign(id: $id) { sends(first: 50) { edges { cursor } } } }",
                      {"id": made["busy"]})
    cut = whole["campaign"]["sends"]["edges"][2]["cursor"]
    # Organization-wide members, one after the other (~3,000 requests: more than one token's rate limit).
    tokens = [gql, *[await tenant.member("ANALYST") for _ in range(11)]]
    seen = {"partial": 0, "nodes": 0, "requests": 0}
    for selection in _shapes():
        for args in _arguments(cut):
            for document, with_id in _documents(selection, args):
                for campaign in (made["busy"], made["other"]) if with_id else (None,):
                    client = tokens[seen["requests"] % len(tokens)]
                    seen["requests"] += 1
                    answer, reads = await _both(client, paths, document, {"id": campaign} if with_id else None)
                    assert b'"errors"' not in answer, (document, answer)
                    seen["nodes"] += answer.count(b'"node"')
                    if "first: 0" in args or "recipient" in args:  # no read; the recipient filter reads models
                        assert reads == ([("partial", partial_names(("credits",)))] if "b: sends" in document
                                         else []), (document, reads)
                    else:  # one batch (two logs of one campaign and filter included), partial rows
                        assert reads and all(kind == "partial" for kind, _ in reads), (document, reads)
                        seen["partial"] += 1
    assert seen["partial"] > 300 and seen["nodes"] > 2000, seen


async def test_the_rows_hold_only_what_the_selection_needs(tenant, paths):
    """The statement's columns: `id`, `campaign_id` and the selected fields' needs, nothing more —
    seven of 31 for bench.peer's read (b) — and the union when two logs of a request share a batch;
    in the table's column order whatever the selection's order (one statement text per set)."""
    from app.delivery.sends import partial_names
    from models.sends import Send

    order = list(Send._meta.fields_db_projection)
    assert len(order) == 31

    def canonical(names):
        assert partial_names(names) == tuple(sorted(names, key=order.index))
        return partial_names(names)

    gql = tenant.gql
    made = await _log(gql)
    cases = [
        ("edges { node { id channel status externalId queuedAt sentAt } }",
         ("id", "campaign_id", "channel", "external_id", "status", "queued_at", "sent_at")),
        ("totalCount edges { cursor }", ("id", "campaign_id")),
        ("edges { node { __typename id campaignId } }", ("id", "campaign_id")),
        ("edges { node { recipient { id } } }", ("id", "campaign_id", "lead_id")),
        ("edges { node { cost { amount } } }", ("id", "organization_id", "campaign_id", "cost_micros")),
        ("edges { node { events { type } } }", ("id", "organization_id", "campaign_id")),
        ("edges { node { ... on Send { readAt } } }", ("id", "campaign_id", "read_at")),
        ("edges { node { readAt @skip(if: true) } }", ("id", "campaign_id", "read_at")),
    ]
    for selection, names in cases:
        paths.reads.clear()
        await gql(f"query($id: ID!) {{ campaign(id: $id) {{ sends(first: 5) {{ {selection} }} }} }}",
                  {"id": made["busy"]})
        assert paths.reads == [("partial", canonical(names))], selection
    paths.reads.clear()
    await gql("query($id: ID!) { campaign(id: $id) { a: sends(first: 5) { edges { node { status } } } "
              "b: sends(first: 5) { edges { node { sentAt } } } } }", {"id": made["busy"]})
    assert paths.reads == [("partial", canonical(("id", "campaign_id", "status", "sent_at")))]
    paths.reads.clear()
    await gql("query($id: ID!) { campaign(id: $id) { a: sends(first: 5) { edges { node { status } } } "
              "b: sends(first: 5, filter: { recipient: \"example\" }) { edges { node { id } } } } }", {"id": made["busy"]})
    assert paths.reads == [("partial", canonical(("id", "campaign_id", "status")))]


async def test_no_field_outside_the_selection_is_read(tenant, paths, monkeypatch):
    """The plain attributes `send_builder` leaves out are never read: objects that raise on reading
    any plain attribute they were not given answer every shape exactly as the general path does (a
    read would be an error in the answer). And such objects do raise (the check can fail)."""
    from graph.campaigns import types
    from graph.delivery.types import Send, send_plain_fields

    plain = frozenset(send_plain_fields().values())

    class Strict(Send):
        def __getattribute__(self, name):
            if name in plain and name not in object.__getattribute__(self, "__dict__"):
                raise AttributeError(f"{name} was not selected")
            return object.__getattribute__(self, name)

    builder = types.send_builder

    def strict(attributes):
        build = builder(attributes)

        def of(m):
            send = build(m)
            send.__class__ = Strict
            return send
        return of

    monkeypatch.setattr(types, "send_builder", strict)
    gql = tenant.gql
    made = await _log(gql)
    for selection in _shapes():
        document, _ = _documents(selection, "first: 50")[0]
        answer, reads = await _both(gql, paths, document, {"id": made["busy"]})
        assert b'"errors"' not in answer and reads and reads[0][0] == "partial", (selection, answer)
    # The check can fail: a resolver reading a field it was not given raises.
    sent_at = strict(("id",))(type("Row", (), {"id": 1})())
    with pytest.raises(AttributeError):
        sent_at.sent_at  # noqa: B018


async def test_every_field_alone_and_a_wrong_needs_entry_is_caught(tenant, paths, monkeypatch):
    """Every field of Send selected alone (so that no other field's columns make up for a missing
    one) answers what the general path answers; and with any attribute of its needs-map entry
    dropped (beyond `id` and `campaign_id`, which every row holds), its answer changes — the map
    cannot be wrong without a test failing. `SEND_NEEDS` names every field of the type."""
    from graph.campaigns import types
    from graph.delivery.types import SEND_NEEDS, SEND_ROW_ALWAYS
    from graph.schema import schema

    assert set(SEND_NEEDS) == {*schema._schema.type_map["Send"].fields, "__typename"}
    gql = tenant.gql
    made = await _log(gql)
    checked = 0
    for name in SEND_NEEDS:
        document = f"query($id: ID!) {{ campaign(id: $id) {{ sends(first: 50) {{ edges {{ node {{ {_field(name)} }} }} }} }} }}"
        right, reads = await _both(gql, paths, document, {"id": made["busy"]})
        assert b'"errors"' not in right and right.count(b'"node"') == 8 and reads[0][0] == "partial", name
        for dropped in SEND_NEEDS[name]:
            if dropped in SEND_ROW_ALWAYS:
                continue
            with monkeypatch.context() as m:
                m.setitem(SEND_NEEDS, name, tuple(a for a in SEND_NEEDS[name] if a != dropped))
                m.setattr(types, "_SHAPES", {})
                wrong = (await gql.raw(document, {"id": made["busy"]})).content
            assert wrong != right and b'"errors"' in wrong, (name, dropped, wrong)
            checked += 1
    assert checked >= 20


async def test_partial_rows_hold_what_the_light_rows_hold(tenant):
    """`send_pages` with `names`: the same sends, in the same pages, as without (one campaign and
    several, paged and filtered), each partial row holding exactly the asked attributes (and `id`,
    `campaign_id`) with the light row's values, types and UTC offsets, and nothing else."""
    from app.delivery.sends import send_pages
    from graph.core import decode_id
    from models.sends import Send

    gql = tenant.gql
    made = await _log(gql)
    ids = [decode_id(made[k], "Campaign") for k in ("busy", "other")]
    every = tuple(Send._meta.fields_db_projection)
    for names in (("status",), ("sent_at", "channel", "external_id"), ("lead_id", "cost_micros", "organization_id"),
                  every, ()):
        for campaigns in ([ids[0]], ids):
            for args in ((50,), (3,), (50, None, "SMS"), (2, None, None, "DELIVERED")):
                full = await send_pages(campaigns, *args)
                partial = await send_pages(campaigns, *args, names=names)
                assert list(full) == list(partial) and full
                for cid in full:
                    assert [r.id for r in full[cid]] == [r.id for r in partial[cid]]
                    for a, b in zip(full[cid], partial[cid]):
                        held = set(type(b).__slots__)
                        assert held == {"id", "campaign_id", *names}
                        for name in held:
                            x, y = getattr(a, name), getattr(b, name)
                            assert (x, type(x)) == (y, type(y)), name
                            if hasattr(x, "utcoffset") and x is not None:
                                assert x.isoformat() == y.isoformat(), name
                        for name in set(every) - held:
                            with pytest.raises(AttributeError):
                                getattr(b, name)
