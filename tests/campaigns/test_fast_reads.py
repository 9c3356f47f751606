"""Issue 15 item 2: the hot reads served by fixed SQL (`campaign(id)`, `node(id)` of a Campaign or a
Send, the unfiltered `campaigns` list, a campaign's send log without a recipient filter) answer
exactly what the ORM reads answer — every field — and apply the same scope: a center-scoped member
never reads another center's campaign or its sends through them."""

from __future__ import annotations

import pytest

from tests.helpers import create_campaign, ingest, launched_campaign, make_leads, mutate

CAMPAIGN = """id name description type status statusReason audienceSize reach controlSize controlGroupPercent
  goal { type key } attribution { viewWindowHours goalWindowHours goalAfterViewWindowHours }
  startAt endAt createdAt updatedAt launchedAt clonedFromId createdFrom { id kind name }
  channels { channel enabled unitCost { amount currency } creditsPerMessage provider }
  metrics { totals { channel generated pending sent delivered failed bounced read clicked skipped
                     skippedByReason { reason count } cost { amount currency } credits deliveryRate }
            byChannel { channel generated sent delivered failed bounced read clicked cost { amount } } }
  budget { allocated { amount } spent { amount } remaining { amount } }
  sendQueue { ready oldestReadyAt }"""

SEND = """id channel status credits queuedAt sentAt deliveredAt failedAt failureReason skipReason bouncedAt
  bounceType readAt clickedAt repliedAt unsubscribedAt externalId campaignId cost { amount currency }
  recipient { id name }"""

SENDS = f"""query($id: ID!, $m: Int, $a: String, $f: SendFilter) {{ campaign(id: $id) {{
  sends(first: $m, after: $a, filter: $f) {{ totalCount pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }}
    edges {{ cursor node {{ {SEND} }} }} }} }} }}"""


async def _busy_campaign(gql, n_leads: int = 8) -> tuple[dict, list[dict]]:
    campaign, leads = await launched_campaign(gql, n_leads=n_leads)
    kinds = ("SENT", "DELIVERED", "OPENED", "CLICKED", "FAILED", "BOUNCED", "DELIVERED", "SENT")
    events = []
    for i, lead in enumerate(leads):
        e = {"idempotencyKey": f"{campaign['id']}-{i}", "externalId": f"{campaign['id']}-x{i}",
             "channel": ("EMAIL", "SMS")[i % 2], "type": kinds[i % len(kinds)],
             "occurredAt": f"2026-01-05T10:0{i % 10}:00Z", "campaignId": campaign["id"], "leadId": lead["id"]}
        if e["type"] in ("BOUNCED", "FAILED"):
            e["reason"] = "mailbox full"
        events.append(e)
    r = await ingest(gql, events)
    assert not r["rejected"], r
    return campaign, leads


async def test_fixed_sql_reads_answer_what_the_orm_reads_answer(tenant):
    gql = tenant.gql
    await create_campaign(gql, description="a draft", controlGroupPercent=10)
    busy, _leads = await _busy_campaign(gql)
    other, _ = await _busy_campaign(gql, n_leads=3)

    by_id = await gql(f"query($id: ID!) {{ campaign(id: $id) {{ {CAMPAIGN} }} }}", {"id": busy["id"]})
    by_node = await gql(f"query($id: ID!) {{ node(id: $id) {{ ... on Campaign {{ {CAMPAIGN} }} }} }}", {"id": busy["id"]})
    plain = await gql(f"{{ campaigns(first: 10) {{ totalCount pageInfo {{ hasNextPage endCursor }} "
                      f"edges {{ cursor node {{ {CAMPAIGN} }} }} }} }}")
    # An (empty) filter takes the ORM queryset path.
    orm = await gql(f"{{ campaigns(first: 10, filter: {{}}) {{ totalCount pageInfo {{ hasNextPage endCursor }} "
                    f"edges {{ cursor node {{ {CAMPAIGN} }} }} }} }}")
    assert plain == orm
    assert by_id["campaign"] == by_node["node"] == next(
        e["node"] for e in orm["campaigns"]["edges"] if e["node"]["id"] == busy["id"])
    assert by_id["campaign"]["metrics"]["totals"]["sent"] > 0
    # Metrics read for the whole page at once (when selected, through fragments too) = one by one.
    spread = await gql("fragment M on Campaign { metrics { totals { sent delivered } byChannel { channel sent } } } "
                       "{ campaigns(first: 10) { edges { node { id ... on Campaign { ...M } } } } }")
    assert [e["node"]["metrics"] for e in spread["campaigns"]["edges"]] == [
        {"totals": {k: e["node"]["metrics"]["totals"][k] for k in ("sent", "delivered")},
         "byChannel": [{"channel": c["channel"], "sent": c["sent"]} for c in e["node"]["metrics"]["byChannel"]]}
        for e in orm["campaigns"]["edges"]]
    # Pages of the list: the same through both paths.
    first = await gql("{ campaigns(first: 1) { pageInfo { endCursor } edges { node { id } } } }")
    after = first["campaigns"]["pageInfo"]["endCursor"]
    pages = [await gql(f"query($a: String, $n: Int) {{ {q} {{ pageInfo {{ hasNextPage hasPreviousPage }} "
                       "edges { node { id name } } } }", {"a": after, "n": n})
             for q in ("campaigns(first: $n, after: $a)", "campaigns(first: $n, after: $a, filter: {})") for n in (1, 2)]
    assert pages[0] == pages[2] and pages[1] == pages[3]
    assert [e["node"]["id"] for e in pages[0]["campaigns"]["edges"]] == [busy["id"]]
    assert pages[0]["campaigns"]["pageInfo"] == {"hasNextPage": True, "hasPreviousPage": True}
    assert pages[1]["campaigns"]["pageInfo"] == {"hasNextPage": False, "hasPreviousPage": True}

    # The send log: without a recipient filter (fixed SQL) and with one that matches every
    # recipient (the ORM path), every field of every send, with paging and status filters.
    everyone = "example.test"
    for variables in ({"m": 50}, {"m": 3}, {"m": 0}, {"m": 50, "f": {"status": "DELIVERED"}},
                      {"m": 50, "f": {"channel": "SMS"}}, {"m": 2, "f": {"channel": "EMAIL", "status": "SENT"}}):
        fast = await gql(SENDS, {"id": busy["id"], **variables})
        slow = await gql(SENDS, {"id": busy["id"], **variables,
                                 "f": {**variables.get("f", {}), "recipient": everyone}})
        assert fast == slow, variables
    whole = (await gql(SENDS, {"id": busy["id"], "m": 50}))["campaign"]["sends"]
    assert whole["totalCount"] == 8 and {e["node"]["status"] for e in whole["edges"]} >= {"BOUNCED", "FAILED"}
    cut = whole["edges"][2]["cursor"]
    fast = await gql(SENDS, {"id": busy["id"], "m": 50, "a": cut})
    slow = await gql(SENDS, {"id": busy["id"], "m": 50, "a": cut, "f": {"recipient": everyone}})
    assert fast == slow and len(fast["campaign"]["sends"]["edges"]) == 5
    # node(id) of a send: the same object as in the log.
    for edge in whole["edges"]:
        node = await gql(f"query($id: ID!) {{ node(id: $id) {{ ... on Send {{ {SEND} }} }} }}", {"id": edge["node"]["id"]})
        assert node["node"] == edge["node"]
    # Several campaigns' logs at once (one batched statement) equal each campaign's own.
    nested = await gql(f"{{ campaigns(first: 5) {{ edges {{ node {{ id sends(first: 3) {{ edges {{ node {{ {SEND} }} }} }} "
                       "} } } }")
    for edge in nested["campaigns"]["edges"]:
        alone = await gql(SENDS, {"id": edge["node"]["id"], "m": 3})
        assert edge["node"]["sends"]["edges"] == [{"node": e["node"]} for e in alone["campaign"]["sends"]["edges"]]
    assert any(e["node"]["id"] == other["id"] and e["node"]["sends"]["edges"] for e in nested["campaigns"]["edges"])


async def test_a_center_scoped_member_never_reads_another_centers_campaign_or_sends(tenant):
    owner = tenant.gql
    zone = await tenant.zone()
    center_a, center_b = await tenant.center(zone), await tenant.center(zone)
    campaigns = {}
    for name, center in (("a", center_a), ("b", center_b)):
        campaign = await create_campaign(owner, ownerUnitId=center)
        leads = await make_leads(owner, 2, centerId=center)
        d = await owner("mutation($c:ID!,$i:AudienceInput!){ audienceSet(campaignId:$c, input:$i){ userErrors{ code } } }",
                        {"c": campaign["id"], "i": {"leadIds": [lead["id"] for lead in leads]}})
        assert not d["audienceSet"]["userErrors"], d
        assert not (await mutate(owner, "campaignLaunch", campaign["id"]))["userErrors"]
        r = await ingest(owner, [{"idempotencyKey": f"{name}-{i}", "externalId": f"{name}-{i}", "channel": "EMAIL",
                                  "type": "SENT", "occurredAt": "2026-01-05T10:00:00Z", "campaignId": campaign["id"],
                                  "leadId": lead["id"]} for i, lead in enumerate(leads)])
        assert not r["rejected"], r
        sends = await owner(SENDS, {"id": campaign["id"], "m": 10})
        campaigns[name] = (campaign["id"], [e["node"]["id"] for e in sends["campaign"]["sends"]["edges"]])
        assert len(campaigns[name][1]) == 2

    for role in ("ANALYST", "MANAGER"):
        member = await tenant.member(role, scope=center_b)
        mine, theirs = campaigns["b"], campaigns["a"]
        # campaign(id) and node(id): the other center's campaign is missing, this one's is there.
        assert (await member("query($id: ID!) { campaign(id: $id) { id } }", {"id": theirs[0]}))["campaign"] is None
        assert (await member("query($id: ID!) { node(id: $id) { id } }", {"id": theirs[0]}))["node"] is None
        assert (await member("query($id: ID!) { campaign(id: $id) { id } }", {"id": mine[0]}))["campaign"] == {"id": mine[0]}
        # Its sends: not through the campaign (null), nor one by one through node(id).
        assert (await member(SENDS, {"id": theirs[0], "m": 10}))["campaign"] is None
        for send_id in theirs[1]:
            assert (await member("query($id: ID!) { node(id: $id) { id } }", {"id": send_id}))["node"] is None
        for send_id in mine[1]:
            assert (await member("query($id: ID!) { node(id: $id) { id } }", {"id": send_id}))["node"] == {"id": send_id}
        # The list (fixed SQL) and its count: only this center's campaign.
        listed = await member("{ campaigns(first: 50) { totalCount edges { node { id sends(first: 5) { edges { node { id } } } } } } }")
        assert [e["node"]["id"] for e in listed["campaigns"]["edges"]] == [mine[0]]
        assert listed["campaigns"]["totalCount"] == 1
        assert sorted(e["node"]["id"] for e in listed["campaigns"]["edges"][0]["node"]["sends"]["edges"]) == sorted(mine[1])

    # The zone sees both centers' campaigns; another organization sees neither.
    zoned = await tenant.member("ANALYST", scope=zone)
    listed = await zoned("{ campaigns(first: 50) { edges { node { id } } } }")
    assert {e["node"]["id"] for e in listed["campaigns"]["edges"]} == {campaigns["a"][0], campaigns["b"][0]}


async def test_light_send_rows_hold_what_the_models_hold(tenant):
    """The send log's rows are `db.light_row_type(Send)` objects (no Tortoise model per send): every
    attribute equals the model's — value, type and UTC offset — nulls, enums, booleans, dates and
    datetimes included, on the dialect the suite runs on."""
    from app import db
    from models.sends import Send

    await _busy_campaign(tenant.gql)
    await _busy_campaign(tenant.gql, n_leads=3)
    models = await Send.all().order_by("-id")
    rows = await db.fetch_light(Send, f'SELECT {db.select_columns(Send, "s")} FROM "send" s ORDER BY s.id DESC')
    assert len(rows) == len(models) >= 11
    names = list(Send._meta.fields_db_projection)
    seen_null = set()
    for model, row in zip(models, rows):
        assert row.pk == model.pk
        for name in names:
            a, b = getattr(model, name), getattr(row, name)
            assert (a, type(a)) == (b, type(b)), name
            if a is None:
                seen_null.add(name)
            elif hasattr(a, "utcoffset"):
                assert a.utcoffset() == b.utcoffset() and a.isoformat() == b.isoformat(), name
    # Both nulls and values were compared for the datetimes the log shows.
    assert {"sent_at", "failed_at", "bounced_at"} <= seen_null
    assert any(getattr(r, "sent_at") is not None for r in rows)


async def test_fixed_sql_models_are_the_models_a_queryset_builds(tenant):
    """`db.fetch_models` builds its models with generated code instead of `_init_from_db`: each model
    holds exactly what a queryset's model holds (the instance's whole `__dict__`, in the same order,
    same values, types and UTC offsets), for campaigns (drafts and launched, nulls and values) and
    sends, and behaves as one (saved state, pk, a field update saved and read back)."""
    from app import db
    from models.campaigns import Campaign
    from models.sends import Send

    await create_campaign(tenant.gql, description="a draft", controlGroupPercent=10)
    await _busy_campaign(tenant.gql)
    for model, alias in ((Campaign, "c"), (Send, "s")):
        want = await model.all().order_by("-id")
        got = await db.fetch_models(model, f'SELECT {db.select_columns(model, alias)} FROM "{model._meta.db_table}" '
                                           f'{alias} ORDER BY {alias}.id DESC')
        assert len(got) == len(want) >= 2
        for a, b in zip(want, got):
            assert type(a) is type(b) and list(vars(a)) == list(vars(b))
            for key, value in vars(a).items():
                other = vars(b)[key]
                assert (value, type(value)) == (other, type(other)), (model.__name__, key)
                if hasattr(value, "utcoffset") and value is not None:
                    assert value.isoformat() == other.isoformat(), (model.__name__, key)
    campaign = (await db.fetch_models(Campaign, f'SELECT {db.select_columns(Campaign, "c")} FROM "campaign" c '
                                                f'ORDER BY c.id LIMIT 1'))[0]
    campaign.description = "changed through a fixed-SQL model"
    await campaign.save(update_fields=["description"])
    assert (await Campaign.get(id=campaign.pk)).description == "changed through a fixed-SQL model"


async def test_send_objects_are_what_the_dataclass_builds(tenant):
    """`Send.of` gives the GraphQL Send its attributes at once: the same attributes, in the same
    order, as the dataclass's own __init__ (`Send.built`), for light rows and models, with and
    without the prefetched recipient and currency; the dataclass has no __post_init__ to skip."""
    import dataclasses

    from app import db
    from graph.delivery.types import Send
    from models.sends import Send as SendModel

    await _busy_campaign(tenant.gql)
    rows = await db.fetch_light(SendModel, f'SELECT {db.select_columns(SendModel, "s")} FROM "send" s')
    models = await SendModel.all()
    assert rows and models and not hasattr(Send, "__post_init__")
    assert [f.name for f in dataclasses.fields(Send) if f.init] == list(vars(Send.of(rows[0])))
    for m in [*rows, *models]:
        for private in ({}, {"lead_": "a lead", "currency_": "EUR"}):
            fast, reference = Send.of(m, **private), Send.built(m, **private)
            assert type(fast) is type(reference) and list(vars(fast).items()) == list(vars(reference).items())


async def test_partial_send_objects_are_what_the_dataclass_builds(tenant):
    """`send_builder(attributes)` (the send log's objects when its selection reads only some plain
    fields: graph/campaigns/types.py `sends_shape`) gives the GraphQL Send exactly what `Send.built`
    gives, restricted to those attributes (and `m`, `lead_`, `currency_`), in the same order — every
    plain attribute: what `Send.of` gives — from light rows, models and partial rows."""
    from app import db
    from graph.delivery.types import Send, send_builder, send_plain_fields
    from models.sends import Send as SendModel

    await _busy_campaign(tenant.gql)
    rows = await db.fetch_light(SendModel, f'SELECT {db.select_columns(SendModel, "s")} FROM "send" s ORDER BY s.id')
    models = await SendModel.all().order_by("id")
    plain = tuple(send_plain_fields().values())
    assert len(plain) == 17 and "id" in plain and "queued_at" in plain
    everything = send_builder(tuple(sorted(plain)))
    sets = [(), ("id",), ("status",), ("sent_at", "channel", "id"), plain[::2], plain[1::3], plain]
    for m in [*rows, *models]:
        reference = Send.built(m)
        assert list(vars(everything(m)).items()) == list(vars(Send.of(m)).items()) == list(vars(reference).items())
        for attributes in sets:
            built = send_builder(tuple(sorted(attributes)))(m)
            assert type(built) is Send
            assert list(vars(built).items()) == [(k, v) for k, v in vars(reference).items()
                                                 if k in attributes or k in ("m", "lead_", "currency_")], attributes
    names = ("id", "campaign_id", "status", "sent_at", "external_id")
    partial = await db.fetch_partial(SendModel, names, f'SELECT {db.select_columns_of(SendModel, "s", names)} '
                                                       'FROM "send" s ORDER BY s.id')
    assert len(partial) == len(rows) >= 8
    for p, row in zip(partial, rows):
        built = send_builder(("external_id", "id", "sent_at", "status"))(p)
        want = [(k, p if k == "m" else v) for k, v in vars(Send.built(row)).items()
                if k in ("id", "m", "lead_", "currency_", "status", "sent_at", "external_id")]
        assert list(vars(built).items()) == want
    with pytest.raises(ValueError):
        send_builder(("recipient",))  # not a plain field
