"""Issue 15 item 2, fourth pass: the `campaigns` list whose nodes select only `metrics.totals` reads
the page and the totals in one statement (`kpis.campaigns_page_with_totals`: counters summed per
campaign in SQL), and a list whose nodes select only plain fields holds light rows instead of models.
Both answer byte for byte what the general path answers — the queryset list (`filter: {}`), whose
metrics are the per-channel rows folded in Python (`kpis.metrics_for`) — for every selection shape,
and a center-scoped member sees only its own campaigns through them."""

from __future__ import annotations

from datetime import date

import pytest

from tests.helpers import create_campaign

TOTALS = ("channel generated pending sent delivered failed bounced read clicked replied unsubscribed skipped "
          "skippedByReason { reason count } cost { amount currency } credits bounceRate failureRate deliveryRate "
          "readRate clickRate")
CAMPAIGN = """id name description type status statusReason audienceSize reach controlSize controlGroupPercent
  goal { type key } attribution { viewWindowHours goalWindowHours goalAfterViewWindowHours }
  startAt endAt createdAt updatedAt launchedAt clonedFromId"""

# (selection of the list, whether it reads the totals with the page, whether its rows are light)
SHAPES = [
    ("edges { node { id name metrics { totals { sent delivered } } } }", True, True),
    (f"edges {{ node {{ id metrics {{ totals {{ {TOTALS} }} }} }} }}", True, True),
    ("edges { node { metrics { totals { skipped skippedByReason { reason count } } } } }", True, True),
    (f"totalCount pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }} edges {{ cursor node {{ "
     f"{CAMPAIGN} metrics {{ __typename totals {{ __typename sent cost {{ amount }} }} }} }} }}", True, True),
    # metrics with other, non-plain fields: totals with the page, models
    ("edges { node { id metrics { totals { sent } } budget { allocated { amount } } } }", True, False),
    ("edges { node { id metrics { totals { delivered } } insights { code } } }", True, False),
    # byChannel anywhere under metrics: the general metrics read
    (f"edges {{ node {{ id metrics {{ totals {{ sent }} byChannel {{ {TOTALS} }} }} }} }}", False, True),
    ("edges { node { id metrics { byChannel { channel sent } } } }", False, True),
    ("edges { node { a: metrics { totals { sent } } b: metrics { byChannel { channel delivered } } } }", False, True),
    ("edges { node { id ...M } }", False, True),  # fragment M selects byChannel
    ("edges { node { id ...T } }", True, True),  # fragment T: totals only
    ("edges { node { ... on Campaign { id metrics { totals { sent read } } } } }", True, True),
    ("edges { ... on CampaignEdge { node { ...T ... on Node { id } } } }", True, True),
    ("edges { node { ...T metrics { byChannel { channel } } } }", False, True),
    ("edges { node { id metrics @skip(if: true) { totals { sent } } } }", True, True),
    ("edges { node { id metrics @include(if: false) { byChannel { sent } } metrics { totals { sent } } } }",
     False, True),
    # no metrics: light rows when only plain fields are selected
    (f"edges {{ node {{ {CAMPAIGN} }} }}", False, True),
    ("edges { node { id name createdFrom { id kind name } channels { channel enabled unitCost { amount } } "
     "sendQueue { ready oldestReadyAt } sends(first: 2) { totalCount edges { node { id status } } } } }", False, True),
    ("edges { node { id budget { spent { amount } } } }", False, False),
    ("edges { cursor } pageInfo { hasNextPage }", False, True),
]
FRAGMENTS = {"M": "fragment M on Campaign { metrics { totals { sent } byChannel { channel sent skipped } } }",
             "T": "fragment T on Campaign { metrics { totals { sent delivered skippedByReason { reason count } } } }"}


async def _counters(campaign_ids: list[int], seed: int) -> None:
    """Counter rows straight into the rollups: several per (campaign, channel) — days, centers — with
    every counter non-zero and different, and skips over two channels and reasons (so a counter
    summed in the wrong place, dropped or mixed up changes an answer)."""
    from app import db
    from models.campaigns import Campaign
    from models.stats import COUNTER_FIELDS

    orgs = {c.id: c.organization_id for c in await Campaign.filter(id__in=campaign_ids)}
    types = {"campaign_id": "int4", "organization_id": "int4", "channel": "text", "center_key": "int4", "day": "date",
             **{f: "int8" for f in COUNTER_FIELDS}}
    rows, skips = [], []
    for n, cid in enumerate(campaign_ids):
        for k, (channel, center, day) in enumerate((("EMAIL", 0, 1), ("EMAIL", 3, 2), ("SMS", 0, 1), ("PUSH", 5, 3))):
            if n % 3 == 2 and channel == "PUSH":
                continue
            values = [seed * 1000 + n * 100 + k * 17 + i * 3 + 1 for i in range(len(COUNTER_FIELDS))]
            rows.append([cid, orgs[cid], channel, center, db.param_date(date(2026, 1, day)), *values])
        for channel, reason, day, n_skipped in (("EMAIL", "NO_ADDRESS", 1, 3 + n), ("SMS", "NO_ADDRESS", 1, 2),
                                                 ("SMS", "UNSUBSCRIBED", 2, 1 + seed), ("EMAIL", "UNSUBSCRIBED", 2, 0)):
            skips.append([orgs[cid], cid, channel, reason, db.param_date(date(2026, 1, day)), n_skipped])
    await db.insert_rows("send_counter", types, rows)
    await db.insert_rows("skip_counter", {"organization_id": "int4", "campaign_id": "int4", "channel": "text",
                                          "reason": "text", "day": "date", "skipped": "int8"}, skips)


async def _campaigns(gql, n: int, **overrides) -> list[str]:
    made = [await create_campaign(gql, **overrides) for _ in range(n)]
    return [c["id"] for c in made]


def _document(selection: str, args: str) -> str:
    fragments = " ".join(text for name, text in FRAGMENTS.items() if f"...{name}" in selection)
    return f"{fragments} {{ campaigns({args}) {{ {selection} }} }}"


@pytest.fixture
def spy(monkeypatch):
    """Which path each `campaigns` list took: totals with the page, light rows."""
    from app.campaigns import service
    from app.reporting import kpis
    from graph.campaigns import queries

    seen = []
    with_totals, page = kpis.campaigns_page_with_totals, service.visible_campaigns_page

    async def page_with_totals(*args, names=None, skips=False):
        seen.append(("totals", names is not None, skips))
        return await with_totals(*args, names=names, skips=skips)

    async def plain_page(*args, names=None):
        seen.append(("page", names is not None, None))
        return await page(*args, names=names)

    monkeypatch.setattr(queries.kpis, "campaigns_page_with_totals", page_with_totals)
    monkeypatch.setattr(queries, "visible_campaigns_page", plain_page)
    return seen


async def _same(gql, selection: str, args: str) -> bytes:
    fast = await gql.raw(_document(selection, args))
    slow = await gql.raw(_document(selection, f"{args}, filter: {{}}"))
    assert fast.status_code == slow.status_code == 200
    assert b'"errors"' not in fast.content, fast.content
    assert fast.content == slow.content, (selection, fast.content, slow.content)
    return fast.content


async def test_every_selection_shape_answers_what_the_general_path_answers(tenant, spy):
    from graph.core import decode_id

    gql = tenant.gql
    ids = await _campaigns(gql, 5)
    await _counters([decode_id(i, "Campaign") for i in ids[1:]], seed=1)  # the first has no counters at all
    for selection, totals, light in SHAPES:
        for args in ("first: 10", "first: 3", "first: 2, after: $a"):
            spy.clear()
            if "$a" in args:
                cursor = (await gql("{ campaigns(first: 1) { pageInfo { endCursor } } }"))["campaigns"]["pageInfo"]
                args = args.replace("$a", f'"{cursor["endCursor"]}"')
                spy.clear()
            answer = await _same(gql, selection, args)
            skips = totals and "skippedByReason" in selection + (FRAGMENTS["T"] if "...T" in selection else "")
            assert spy == [("totals" if totals else "page", light, skips if totals else None)], (selection, spy)
            if b'"sent":' in answer and args == "first: 10":
                assert b'"sent":0' in answer  # the campaign without counters
    # The sums are really there (not zeros on both sides): the newest campaign's totals are the sum of
    # its rows, read back through campaign(id) (metrics_for, one campaign).
    one = await gql(f"query($id: ID!) {{ campaign(id: $id) {{ metrics {{ totals {{ {TOTALS} }} }} }} }}", {"id": ids[-1]})
    listed = await gql(f"{{ campaigns(first: 1) {{ edges {{ node {{ metrics {{ totals {{ {TOTALS} }} }} }} }} }} }}")
    assert listed["campaigns"]["edges"][0]["node"]["metrics"] == one["campaign"]["metrics"]
    totals = one["campaign"]["metrics"]["totals"]
    assert totals["sent"] > 0 and totals["skippedByReason"] == [{"reason": "NO_ADDRESS", "count": 8},
                                                                {"reason": "UNSUBSCRIBED", "count": 2}]
    assert len({totals[k] for k in ("generated", "pending", "sent", "delivered", "failed", "bounced", "read",
                                    "clicked", "replied", "unsubscribed", "skipped", "credits")}) == 12


async def test_totals_with_the_page_are_the_totals_metrics_for_folds(tenant):
    """The domain function itself: for every campaign of the page, `campaigns_page_with_totals`'s totals
    equal `metrics_for`'s (the whole Metrics: every counter and the skips per reason), models and partial
    rows hold the same values (partial rows nothing else), and the page is `visible_campaigns_page`'s."""
    from app.campaigns.service import visible_campaigns_page
    from app.reporting import kpis
    from app.tenancy.access import authenticate
    from graph.core import decode_id
    from models.campaigns import Campaign

    ids = [decode_id(i, "Campaign") for i in await _campaigns(tenant.gql, 4)]
    await _counters(ids[:3], seed=2)
    principal = await authenticate(tenant.gql.token)
    general = await kpis.metrics_for(ids)
    page = await visible_campaigns_page(principal, 10)
    every = tuple(Campaign._meta.fields_db_projection)
    for names in (None, every, ("id", "organization_id"), ("name", "id", "start_at", "status", "organization_id")):
        for skips in (False, True):
            rows, found = await kpis.campaigns_page_with_totals(principal, 10, None, names=names, skips=skips)
            assert [r.id for r in rows] == [m.id for m in page] == sorted(ids, reverse=True)
            assert rows == await visible_campaigns_page(principal, 10, names=names) if names is None else True
            for row, model in zip(rows, page):
                assert isinstance(row, Campaign) == (names is None)
                for name in names or every:
                    a, b = getattr(row, name), getattr(model, name)
                    assert (a, type(a)) == (b, type(b)), name
                if names is not None:
                    for other in set(every) - set(names):
                        with pytest.raises(AttributeError):
                            getattr(row, other)
                want = general[row.id].totals
                if not skips:
                    want.__dict__ = {**want.__dict__, "skipped_by_reason": {}}
                assert found[row.id].totals == want and found[row.id].by_channel is None
                assert list(vars(found[row.id].totals)) == list(vars(want))
                if skips and row.id in ids[:3]:
                    assert found[row.id].totals.skipped_by_reason
                general = await kpis.metrics_for(ids)
    rows, found = await kpis.campaigns_page_with_totals(principal, 2, ids[2])
    assert [r.id for r in rows] == [ids[1], ids[0]] and set(found) == {ids[0], ids[1]}


async def test_each_light_field_alone_answers_what_the_models_answer(tenant, spy):
    """Every field that partial rows serve (`LIGHT_FIELDS`), selected alone (so that no other field's
    attributes make up for a missing one), with and without the totals, answers what the models answer;
    launched, cloned, goal-holding and center-owned campaigns included."""
    from graph.campaigns.types import LIGHT_FIELDS
    from tests.helpers import launched_campaign

    gql = tenant.gql
    zone = await tenant.zone()
    center = await tenant.center(zone)
    await _campaigns(gql, 1, ownerUnitId=center, startAt="2031-01-01T10:00:00Z", endAt="2031-02-01T10:00:00Z",
                     goal={"type": "LEAD", "key": "signup"})
    launched, _leads = await launched_campaign(gql, n_leads=2)
    await gql("mutation($id: ID!) { campaignPause(id: $id) { userErrors { code } } }", {"id": launched["id"]})
    cloned = await gql("mutation($id: ID!) { campaignClone(id: $id) { campaign { id } userErrors { code } } }",
                       {"id": launched["id"]})
    assert cloned["campaignClone"]["campaign"], cloned
    sub = {"goal": "{ type key }", "attribution": "{ viewWindowHours goalWindowHours goalAfterViewWindowHours }",
           "metrics": "{ totals { sent } }", "createdFrom": "{ __typename id kind name }",
           "channels": "{ channel enabled unitCost { amount currency } creditsPerMessage provider }",
           "sendQueue": "{ ready oldestReadyAt }", "sends": "(first: 1) { totalCount edges { node { id } } }"}
    for name in LIGHT_FIELDS:
        for extra in ("", " metrics { totals { delivered } }"):
            spy.clear()
            answer = await _same(gql, f"edges {{ node {{ {name} {sub.get(name, '')}{extra} }} }}", "first: 10")
            assert spy[0][1] is True, name  # partial rows
            assert answer.count(b'"node"') >= 3, (name, answer)
    assert b'"PAUSED"' in await _same(gql, "edges { node { status statusReason clonedFromId } }", "first: 10")


async def test_a_center_scoped_member_sees_only_its_campaigns_through_the_fast_paths(tenant, spy):
    from graph.core import decode_id

    owner = tenant.gql
    zone = await tenant.zone()
    center_a, center_b = await tenant.center(zone), await tenant.center(zone)
    mine = await _campaigns(owner, 2, ownerUnitId=center_b)
    theirs = await _campaigns(owner, 2, ownerUnitId=center_a)
    await _counters([decode_id(i, "Campaign") for i in mine + theirs], seed=3)
    for role in ("ANALYST", "MANAGER"):
        member = await tenant.member(role, scope=center_b)
        for selection, _totals, _light in SHAPES:
            if "budget" in selection or "insights" in selection:
                continue
            answer = await _same(member, selection, "first: 50")
            for other in theirs:
                assert other.encode() not in answer
        listed = await member("{ campaigns(first: 50) { edges { node { id metrics { totals { sent } } } } } }")
        assert [e["node"]["id"] for e in listed["campaigns"]["edges"]] == mine[::-1]
    assert ("totals", True, False) in spy and ("page", True, None) in spy


async def test_campaign_objects_are_what_the_dataclass_builds(tenant):
    """`Campaign.of` gives the GraphQL Campaign its attributes at once: the same attributes, in the same
    order, as the dataclass's own __init__ (`Campaign.built`), for light rows and models."""
    import dataclasses

    from app import db
    from graph.campaigns.types import Campaign
    from models.campaigns import Campaign as CampaignModel

    await _campaigns(tenant.gql, 2)
    query = f'SELECT {db.select_columns(CampaignModel, "c")} FROM "campaign" c'
    rows, models = await db.fetch_light(CampaignModel, query), await db.fetch_models(CampaignModel, query)
    assert rows and models and not hasattr(Campaign, "__post_init__")
    assert [f.name for f in dataclasses.fields(Campaign) if f.init and f.name in vars(Campaign.built(rows[0]))] \
        == list(vars(Campaign.of(rows[0])))
    partial = await db.fetch_partial(CampaignModel, ("id", "organization_id"),
                                     f'SELECT {db.select_columns_of(CampaignModel, "c", ("id", "organization_id"))} '
                                     'FROM "campaign" c')
    for m in [*rows, *models, *partial]:
        fast, reference = Campaign.of(m), Campaign.built(m)
        assert type(fast) is type(reference) and list(vars(fast).items()) == list(vars(reference).items())


async def test_metrics_objects_are_what_the_dataclasses_build(tenant):
    """`_campaign_metrics` builds the GraphQL CampaignMetrics and ChannelMetrics with their attributes
    given at once: the same attributes, in the same order, as their dataclasses' own __init__, with
    per-channel metrics and without (totals read with the page)."""
    from app.reporting import kpis
    from graph.campaigns.types import _campaign_metrics, _campaign_metrics_built
    from graph.core import decode_id

    ids = [decode_id(i, "Campaign") for i in await _campaigns(tenant.gql, 2)]
    await _counters(ids, seed=4)
    found = await kpis.metrics_for(ids)
    cases = [*found.values(), *(kpis.CampaignMetrics(m.totals, None) for m in found.values())]
    assert any(c.by_channel for c in cases) and any(c.by_channel is None for c in cases)

    def attributes(obj):
        if isinstance(obj, list):
            return [attributes(x) for x in obj]
        if hasattr(obj, "__dict__") and type(obj).__module__.startswith("graph."):
            return type(obj), [(k, attributes(v)) for k, v in vars(obj).items()]
        return obj

    for data in cases:
        assert attributes(_campaign_metrics(data, "EUR")) == attributes(_campaign_metrics_built(data, "EUR"))
