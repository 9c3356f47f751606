"""Tenant isolation matrix (SPEC §1).

World (built once for the module, only through the public API):

    organization A                                   organization B
      zone Z1 ── center C1                             zone ZB ── center CB
      zone Z2 ── center C2
    users: A owner, A zone-Z1 MANAGER, A center-C1 ANALYST,  B owner
           A INTEGRATION (organization scope)

    campaigns (all LIVE, each with a budget, a send and a logged spend that
    raised a budget alert): camp_org (owned by A), camp_z1, camp_c1, camp_c2,
    camp_b (owned by B); drafts: draft_z1, draft_c1, draft_b.
    leads: lead_c1, lead_c1b (home C1), lead_c2 (home C2), lead_none (no home
    center: organization level), lead_b.

Reads and writes are tried across each boundary (other organization; same
organization outside the caller's scope). The answer must be the "not found"
answer (null, an empty list, a NOT_FOUND user error or rejected event), the
same JSON as for a well-formed id that never existed, and the foreign object
must be unchanged afterwards. Known product bugs are strict xfails.
"""

from __future__ import annotations

import base64
import itertools
import uuid
from dataclasses import dataclass, field
from decimal import Decimal

import pytest

from tests.conftest import GQL, Tenant, unique
from tests.helpers import at, create_campaign, ingest, upsert_leads

_keys = itertools.count(1)

# ---------------------------------------------------------------- world


A_OWNER, A_ZONE, A_ANALYST, A_INTEGRATION, B_OWNER = (
    "A_owner", "A_zone1_manager", "A_center1_analyst", "A_integration", "B_owner")

BUDGETS = {"camp_org": "100", "camp_z1": "20", "camp_c1": "10", "camp_c2": "40", "camp_b": "50"}

NODE_TYPES = {
    "org": "Organization", "zone": "Zone", "center": "Center", "camp": "Campaign", "draft": "Campaign",
    "lead": "Lead", "send": "Send", "spend": "SpendEntry", "alert": "BudgetAlert", "user": "User",
    "token": "ApiToken",
}


def type_of(key: str) -> str:
    return NODE_TYPES[key.split("_")[0]]


def made_up(type_name: str) -> str:
    """A well-formed global id of the right type that never existed."""
    return base64.b64encode(f"{type_name}:{1_900_000_000 + next(_keys)}".encode()).decode()


@dataclass
class World:
    clients: dict[str, GQL] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)
    external_ids: dict[str, str] = field(default_factory=dict)  # lead_* and send_* keys → externalId
    spend_amounts: dict[str, str] = field(default_factory=dict)  # spend_* → amount

    def gid(self, key: str) -> str:
        return self.ids[key]

    def key_of(self, gid: str) -> str | None:
        return next((k for k, v in self.ids.items() if v == gid), None)


A_KEYS = {
    "org_A", "zone_Z1", "zone_Z2", "center_C1", "center_C2",
    "camp_org", "camp_z1", "camp_c1", "camp_c2", "draft_z1", "draft_c1",
    "lead_c1", "lead_c1b", "lead_c2", "lead_none",
    "send_org", "send_z1", "send_c1", "send_c2",
    "spend_org", "spend_z1", "spend_c1", "spend_c2",
    "alert_org", "alert_z1", "alert_c1", "alert_c2",
    "user_A_owner", "user_A_zone", "user_A_analyst", "user_A_integration",
    "token_A_owner", "token_A_zone", "token_A_analyst", "token_A_integration",
}
B_KEYS = {"org_B", "zone_B", "center_B", "camp_b", "draft_b", "lead_b", "send_b", "spend_b", "alert_b",
          "user_B_owner", "token_B_owner"}

ZONE_VISIBLE = {"org_A", "zone_Z1", "center_C1", "camp_z1", "camp_c1", "draft_z1", "draft_c1",
                "lead_c1", "lead_c1b", "send_z1", "send_c1", "spend_z1", "spend_c1", "alert_z1", "alert_c1",
                "user_A_zone", "token_A_zone"}
ANALYST_VISIBLE = {"org_A", "center_C1", "camp_c1", "draft_c1", "lead_c1", "lead_c1b", "send_c1", "spend_c1",
                   "alert_c1", "user_A_analyst", "token_A_analyst"}

# viewer -> (visible keys, invisible keys). Keys in neither are not asserted here
# (e.g. whether a center-scoped user may see its own zone is not fixed by the spec).
VISIBILITY: dict[str, tuple[set[str], set[str]]] = {
    A_OWNER: (A_KEYS, B_KEYS),
    A_ZONE: (ZONE_VISIBLE, (A_KEYS - ZONE_VISIBLE) | B_KEYS),
    A_ANALYST: (ANALYST_VISIBLE, (A_KEYS - ANALYST_VISIBLE - {"zone_Z1"}) | B_KEYS),
    A_INTEGRATION: ({"org_A", "user_A_integration", "token_A_integration"}, B_KEYS),
    B_OWNER: (B_KEYS, A_KEYS),
}

# Units each scoped viewer may name; campaigns/leads listed to it must belong to these.
SCOPE_UNITS = {
    A_OWNER: {"org_A", "zone_Z1", "zone_Z2", "center_C1", "center_C2"},
    A_ZONE: {"zone_Z1", "center_C1"},
    A_ANALYST: {"center_C1"},
    B_OWNER: {"org_B", "zone_B", "center_B"},
}
UNIT_KEYS = {"org_A", "zone_Z1", "zone_Z2", "center_C1", "center_C2", "org_B", "zone_B", "center_B"}


async def _organization(http) -> Tenant:
    """Same as the conftest `tenant_factory`, but usable from a module-scoped fixture."""
    from app.tenancy.service import create_organization

    name = unique()
    issued = await create_organization(name, f"owner@{name}.test", "EUR", "UTC")
    gql = GQL(http, issued.token)
    org = await gql("{ viewer { organization { id } } }")
    return Tenant(gql, org["viewer"]["organization"]["id"], name)


async def _member(t: Tenant, role: str, scope: str | None) -> tuple[GQL, str, str]:
    d = await t.gql("mutation($i:TokenCreateInput!){ tokenCreate(input:$i){ token apiToken{ id } user{ id } "
                    "userErrors{ code message } } }",
                    {"i": {"email": f"{unique(role.lower())}@example.test", "role": role, "scopeUnitId": scope}})
    p = d["tokenCreate"]
    assert not p["userErrors"], p
    return t.gql.as_(p["token"]), p["user"]["id"], p["apiToken"]["id"]


async def _own_token(gql: GQL) -> tuple[str, str]:
    d = await gql("{ viewer { id email } tokens(first: 100) { edges { node { id userEmail } } } }")
    token = next(e["node"]["id"] for e in d["tokens"]["edges"] if e["node"]["userEmail"] == d["viewer"]["email"])
    return d["viewer"]["id"], token


async def _audience(gql: GQL, campaign_id: str, lead_ids: list[str]) -> None:
    d = await gql("mutation($c:ID!,$i:AudienceInput!){ audienceSet(campaignId:$c, input:$i){ userErrors{ code message } } }",
                  {"c": campaign_id, "i": {"leadIds": lead_ids}})
    assert not d["audienceSet"]["userErrors"], d


async def _launch(gql: GQL, campaign_id: str) -> None:
    d = await gql("mutation($id:ID!){ campaignLaunch(id:$id){ campaign{ status } userErrors{ code message } } }",
                  {"id": campaign_id})
    assert d["campaignLaunch"]["campaign"]["status"] == "LIVE", d


async def _spend(gql: GQL, campaign_id: str, amount: str) -> str:
    d = await gql("mutation($i:SpendLogInput!){ spendLog(input:$i){ entry{ id } alerts{ id } userErrors{ code message } } }",
                  {"i": {"campaignId": campaign_id, "amount": amount, "category": "printing"}})
    assert not d["spendLog"]["userErrors"], d
    assert len(d["spendLog"]["alerts"]) == 1, d  # 85 % of the budget: the 80 % alert
    return d["spendLog"]["entry"]["id"]


async def _sends(gql: GQL, campaign_id: str) -> list[dict]:
    d = await gql("query($id:ID!){ campaign(id:$id){ sends(first: 100){ edges{ node{ id externalId } } } } }",
                  {"id": campaign_id})
    return [e["node"] for e in d["campaign"]["sends"]["edges"]]


async def _alerts(gql: GQL, campaign_id: str) -> list[str]:
    d = await gql("query($id:ID!){ campaign(id:$id){ budget{ alerts{ id } } } }", {"id": campaign_id})
    return [a["id"] for a in d["campaign"]["budget"]["alerts"]]


@pytest.fixture(scope="module")
async def world(http) -> World:
    w = World()
    a, b = await _organization(http), await _organization(http)
    w.ids.update(org_A=a.org_id, org_B=b.org_id)
    w.ids["zone_Z1"], w.ids["zone_Z2"], w.ids["zone_B"] = await a.zone(), await a.zone(), await b.zone()
    w.ids["center_C1"] = await a.center(w.ids["zone_Z1"])
    w.ids["center_C2"] = await a.center(w.ids["zone_Z2"])
    w.ids["center_B"] = await b.center(w.ids["zone_B"])

    w.clients[A_OWNER], w.clients[B_OWNER] = a.gql, b.gql
    for name, role, scope, suffix in ((A_ZONE, "MANAGER", w.ids["zone_Z1"], "zone"),
                                      (A_ANALYST, "ANALYST", w.ids["center_C1"], "analyst"),
                                      (A_INTEGRATION, "INTEGRATION", None, "integration")):
        w.clients[name], w.ids[f"user_A_{suffix}"], w.ids[f"token_A_{suffix}"] = await _member(a, role, scope)
    w.ids["user_A_owner"], w.ids["token_A_owner"] = await _own_token(a.gql)
    w.ids["user_B_owner"], w.ids["token_B_owner"] = await _own_token(b.gql)

    # Leads.
    tag = uuid.uuid4().hex[:6]
    lead_specs = {"lead_c1": (a, "center_C1"), "lead_c1b": (a, "center_C1"), "lead_c2": (a, "center_C2"),
                  "lead_none": (a, None), "lead_b": (b, "center_B")}
    for key, (t, center) in lead_specs.items():
        ext = f"{key}-{tag}"
        lead = {"externalId": ext, "name": f"Lead {key}", "email": f"{ext}@example.test"}
        if center:
            lead["centerId"] = w.ids[center]
        [row] = await upsert_leads(t.gql, [lead])
        w.ids[key], w.external_ids[key] = row["id"], ext

    # Live campaigns with an audience, one delivered send, logged spend (85 % of budget) and an alert.
    camp_specs = {
        "camp_org": (a, "org_A", ["lead_c1", "lead_c1b", "lead_c2", "lead_none"], "lead_none"),
        "camp_z1": (a, "zone_Z1", ["lead_c1", "lead_c1b"], "lead_c1b"),
        "camp_c1": (a, "center_C1", ["lead_c1"], "lead_c1"),
        "camp_c2": (a, "center_C2", ["lead_c2"], "lead_c2"),
        "camp_b": (b, "org_B", ["lead_b"], "lead_b"),
    }
    for key, (t, owner, audience, recipient) in camp_specs.items():
        c = await create_campaign(t.gql, name=f"{key} {tag}", ownerUnitId=w.ids[owner], budget=BUDGETS[key])
        w.ids[key] = c["id"]
        await _audience(t.gql, c["id"], [w.ids[k] for k in audience])
        await _launch(t.gql, c["id"])
        suffix = key.split("_")[1]
        ext = f"msg-{suffix}-{tag}"
        r = await ingest(t.gql, [{"idempotencyKey": f"k-{ext}", "externalId": ext, "channel": "EMAIL",
                                  "type": "DELIVERED", "occurredAt": at(1), "campaignId": c["id"],
                                  "leadId": w.ids[recipient]}])
        assert r["accepted"] == 1 and not r["rejected"], r
        [send] = await _sends(t.gql, c["id"])
        w.ids[f"send_{suffix}"], w.external_ids[f"send_{suffix}"] = send["id"], ext
        amount = str(Decimal(BUDGETS[key]) * Decimal("0.85"))
        w.ids[f"spend_{suffix}"], w.spend_amounts[f"spend_{suffix}"] = await _spend(t.gql, c["id"], amount), amount
        [w.ids[f"alert_{suffix}"]] = await _alerts(t.gql, c["id"])

    # Drafts (for audience tests and role checks).
    w.ids["draft_z1"] = (await create_campaign(w.clients[A_ZONE], name=f"draft z1 {tag}"))["id"]
    w.ids["draft_c1"] = (await create_campaign(a.gql, name=f"draft c1 {tag}", ownerUnitId=w.ids["center_C1"]))["id"]
    await _audience(a.gql, w.ids["draft_c1"], [w.ids["lead_c1"]])
    w.ids["draft_b"] = (await create_campaign(b.gql, name=f"draft b {tag}"))["id"]
    assert set(w.ids) == A_KEYS | B_KEYS
    # made_up() ids have the same shape as real ones, so they are not refused earlier as malformed.
    for key, gid in w.ids.items():
        assert base64.b64decode(gid).decode().startswith(type_of(key) + ":"), key
    return w


def owner_of(key: str) -> str:
    return A_OWNER if key in A_KEYS else B_OWNER


# ---------------------------------------------------------------- helpers


async def body(gql: GQL, doc: str, variables: dict | None = None) -> dict:
    """The whole JSON answer; never a top-level error."""
    r = await gql.raw(doc, variables or {})
    assert r.status_code == 200, r.text
    data = r.json()
    assert "errors" not in data, data
    return data


async def aliased(gql: GQL, field_template: str, values: list[str | None]) -> dict:
    """Run `field_template` (with {v} for a quoted value) once per value, as aliases a0, a1, … of one query."""
    parts = [f"a{i}: " + field_template.replace("{v}", "null" if v is None else f'"{v}"') for i, v in enumerate(values)]
    return (await body(gql, "query { " + " ".join(parts) + " }"))["data"]


CAMPAIGN_SNAPSHOT = """query($id:ID!){ campaign(id:$id){ name status statusReason audienceSize reach controlSize
  budget{ allocated{ amount } spent{ amount } loggedSpend{ amount } spendEntries{ totalCount } }
  metrics{ totals{ generated sent delivered read clicked cost{ amount } } }
  sends(first: 100){ totalCount edges{ node{ id status readAt clickedAt events{ idempotencyKey } } } } } }"""


async def snapshot(w: World, key: str) -> dict:
    """A campaign as its own organization's owner sees it."""
    d = await w.clients[owner_of(key)](CAMPAIGN_SNAPSHOT, {"id": w.gid(key)})
    assert d["campaign"] is not None
    return d["campaign"]


def cases(pairs, bugs: dict | None = None):
    """pytest params named `a-b-…`, marking known product bugs as strict xfails."""
    bugs = bugs or {}
    return [pytest.param(*p, id="-".join(p), marks=[pytest.mark.xfail(strict=True, reason=bugs[p])] if p in bugs else [])
            for p in pairs]


def codes(payload: dict) -> list[str]:
    return [e["code"] for e in payload["userErrors"]]


# ---------------------------------------------------------------- node(id) and campaign(id)

@pytest.mark.parametrize("viewer", list(VISIBILITY))
async def test_node(world, viewer):
    """node(id) of every world object (all eleven Node types): the object when visible; null, exactly as for
    a made-up id of the same type, when not."""
    w, gql = world, world.clients[viewer]
    visible, invisible = VISIBILITY[viewer]
    keys = sorted(visible | invisible)
    assert {type_of(k) for k in keys} == set(NODE_TYPES.values())
    for start in range(0, len(keys), 25):  # stay under the alias limit
        chunk = keys[start:start + 25]
        got = await aliased(gql, "node(id: {v}) { id __typename }", [w.gid(k) for k in chunk])
        fakes = await aliased(gql, "node(id: {v}) { id __typename }", [made_up(type_of(k)) for k in chunk])
        for i, key in enumerate(chunk):
            if key in visible:
                assert got[f"a{i}"] == {"id": w.gid(key), "__typename": type_of(key)}, key
            else:
                assert got[f"a{i}"] is None and fakes[f"a{i}"] is None, key


CAMPAIGN_KEYS = sorted(k for k in A_KEYS | B_KEYS if k.startswith(("camp_", "draft_")))
LIST_VIEWERS = [A_OWNER, A_ZONE, A_ANALYST, B_OWNER]


@pytest.mark.parametrize("viewer", LIST_VIEWERS)
async def test_campaign_query(world, viewer):
    """campaign(id) answers null for every campaign outside the viewer's scope, like a made-up id."""
    gql = world.clients[viewer]
    got = await aliased(gql, "campaign(id: {v}) { id }", [world.gid(k) for k in CAMPAIGN_KEYS])
    fakes = await aliased(gql, "campaign(id: {v}) { id }", [made_up("Campaign") for _ in CAMPAIGN_KEYS])
    for i, key in enumerate(CAMPAIGN_KEYS):
        if key in VISIBILITY[viewer][0]:
            assert got[f"a{i}"] == {"id": world.gid(key)}, key
        else:
            assert got[f"a{i}"] is None and fakes[f"a{i}"] is None, key


# ---------------------------------------------------------------- lists


@pytest.mark.parametrize("viewer", LIST_VIEWERS)
async def test_campaigns_list_shows_exactly_the_scope(world, viewer):
    d = await world.clients[viewer]("{ campaigns(first: 500){ totalCount edges{ node{ id createdFrom{ id } } } } }")
    listed = [e["node"] for e in d["campaigns"]["edges"]]
    assert d["campaigns"]["totalCount"] == len(listed)
    ids = {c["id"] for c in listed}
    visible, invisible = VISIBILITY[viewer]
    assert {world.gid(k) for k in visible if k in CAMPAIGN_KEYS} <= ids
    assert not ids & {world.gid(k) for k in invisible}
    # Campaigns created by other tests of this module are inside the scope too.
    assert {c["createdFrom"]["id"] for c in listed} <= {world.gid(k) for k in SCOPE_UNITS[viewer]}


async def test_zone_user_sees_zone_and_center_campaigns_only(world):
    d = await world.clients[A_ZONE]("{ campaigns(first: 500){ edges{ node{ id } } } }")
    ids = {e["node"]["id"] for e in d["campaigns"]["edges"]}
    assert {world.gid("camp_z1"), world.gid("camp_c1")} <= ids
    assert world.gid("camp_c2") not in ids
    assert world.gid("camp_org") not in ids


OWNED = {"org_A": {"camp_org"}, "zone_Z1": {"camp_z1", "draft_z1"}, "zone_Z2": set(),
         "center_C1": {"camp_c1", "draft_c1"}, "center_C2": {"camp_c2"},
         "org_B": {"camp_b", "draft_b"}, "zone_B": set(), "center_B": set()}
OWNER_FILTER = "campaigns(first: 500, filter: { ownerUnitId: {v} }) { totalCount edges { node { id } } }"


@pytest.mark.parametrize("viewer", LIST_VIEWERS)
async def test_campaigns_filtered_by_owner_unit(world, viewer):
    """Exactly the unit's own campaigns for a visible unit; an empty list, as for a made-up unit, otherwise."""
    gql = world.clients[viewer]
    units = sorted(UNIT_KEYS)
    got = await aliased(gql, OWNER_FILTER, [world.gid(u) for u in units])
    fakes = await aliased(gql, OWNER_FILTER, [made_up(type_of(u)) for u in units])
    known = {world.gid(k): k for k in CAMPAIGN_KEYS}
    for i, unit in enumerate(units):
        listed = {known[e["node"]["id"]] for e in got[f"a{i}"]["edges"] if e["node"]["id"] in known}
        if unit in SCOPE_UNITS[viewer]:
            assert listed == OWNED[unit] & VISIBILITY[viewer][0], unit
        else:
            assert got[f"a{i}"] == fakes[f"a{i}"] == {"totalCount": 0, "edges": []}, unit


@pytest.mark.parametrize("viewer", LIST_VIEWERS)
async def test_leads_list_shows_exactly_the_scope(world, viewer):
    d = await world.clients[viewer]("{ leads(first: 500){ totalCount edges{ node{ id center{ id } } } } }")
    listed = [e["node"] for e in d["leads"]["edges"]]
    assert d["leads"]["totalCount"] == len(listed)
    ids = {lead["id"] for lead in listed}
    visible, invisible = VISIBILITY[viewer]
    assert {world.gid(k) for k in visible if k.startswith("lead_")} <= ids
    assert not ids & {world.gid(k) for k in invisible}
    if viewer in (A_ZONE, A_ANALYST):
        assert {lead["center"]["id"] if lead["center"] else None for lead in listed} <= {
            world.gid(k) for k in SCOPE_UNITS[viewer] if k.startswith("center_")}


@pytest.mark.parametrize("viewer", list(VISIBILITY))
async def test_users_tokens_and_units_lists_show_only_visible(world, viewer):
    d = await world.clients[viewer]("{ users(first: 500) { edges { node { id } } } "
                                    "tokens(first: 500) { edges { node { id } } } "
                                    "viewer { organization { zones { id } centers { id } } } }")
    visible, invisible = VISIBILITY[viewer]
    for listing, prefix in (("users", "user_"), ("tokens", "token_")):
        ids = {e["node"]["id"] for e in d[listing]["edges"]}
        assert {world.gid(k) for k in visible if k.startswith(prefix)} <= ids, listing
        assert not ids & {world.gid(k) for k in invisible}, listing
    org = d["viewer"]["organization"]
    zones, centers = {z["id"] for z in org["zones"]}, {c["id"] for c in org["centers"]}
    assert not (zones | centers) & {world.gid(k) for k in invisible}
    if viewer in SCOPE_UNITS:
        assert centers == {world.gid(k) for k in SCOPE_UNITS[viewer] if k.startswith("center_")}


LEADS_BY_CENTER = "leads(first: 500, filter: { centerIds: [{v}] }) { totalCount edges { node { id } } }"
FOREIGN_CENTERS = {A_OWNER: ["center_B"], A_ZONE: ["center_C2", "center_B"], A_ANALYST: ["center_C2", "center_B"],
                   B_OWNER: ["center_C1", "center_C2"]}


@pytest.mark.parametrize("viewer", LIST_VIEWERS)
async def test_leads_filtered_by_foreign_center_are_empty(world, viewer):
    gql = world.clients[viewer]
    centers = FOREIGN_CENTERS[viewer]
    got = await aliased(gql, LEADS_BY_CENTER, [world.gid(c) for c in centers])
    fakes = await aliased(gql, LEADS_BY_CENTER, [made_up("Center") for _ in centers])
    assert got == fakes == {f"a{i}": {"totalCount": 0, "edges": []} for i in range(len(centers))}


DASHBOARD = ("dashboard(scope: {v}) { scope { id kind } activeCampaigns totalReach totalSpent { amount currency } "
             "totalBudget { amount } budgetUtilization }")


@pytest.mark.parametrize("viewer", LIST_VIEWERS)
async def test_dashboard_of_foreign_unit_is_null(world, viewer):
    """Every unit outside the scope (for the C1 analyst, its own zone Z1 too: it is wider than C1)."""
    gql = world.clients[viewer]
    units = sorted(UNIT_KEYS - SCOPE_UNITS[viewer])
    got = await aliased(gql, DASHBOARD, [world.gid(u) for u in units])
    fakes = await aliased(gql, DASHBOARD, [made_up(type_of(u)) for u in units])
    assert got == fakes == {f"a{i}": None for i in range(len(units))}


FIGURES = "campaign(id: {v}) { status reach budget { spent { amount } allocated { amount } } }"


async def _expected_dashboard(w: World, keys: list[str]) -> dict:
    """Dashboard figures summed from the campaigns themselves, as their organization's owner sees them."""
    figures = await aliased(w.clients[owner_of(keys[0])], FIGURES, [w.gid(k) for k in keys])
    live = [c for c in figures.values() if c["status"] == "LIVE"]
    return {"activeCampaigns": len(live), "totalReach": sum(c["reach"] for c in live),
            "totalSpent": sum(Decimal(c["budget"]["spent"]["amount"]) for c in figures.values()),
            "totalBudget": sum(Decimal(c["budget"]["allocated"]["amount"]) for c in figures.values())}


def _dash(d: dict) -> dict:
    return {"activeCampaigns": d["activeCampaigns"], "totalReach": d["totalReach"],
            "totalSpent": Decimal(d["totalSpent"]["amount"]), "totalBudget": Decimal(d["totalBudget"]["amount"])}


@pytest.mark.parametrize("viewer", LIST_VIEWERS)
async def test_dashboard_counts_only_visible_campaigns(world, viewer):
    mine = sorted(k for k in VISIBILITY[viewer][0] if k in CAMPAIGN_KEYS)
    expected = await _expected_dashboard(world, mine)
    d = (await aliased(world.clients[viewer], DASHBOARD, [None]))["a0"]
    assert _dash(d) == expected
    if viewer in (A_ZONE, A_ANALYST):
        # Discriminating figures: the whole organization's differ in every KPI.
        whole = await _expected_dashboard(world, sorted(k for k in CAMPAIGN_KEYS if k in A_KEYS))
        assert all(expected[k] != whole[k] for k in expected), (expected, whole)
        # And they are what the owner sees for that unit.
        unit = "zone_Z1" if viewer == A_ZONE else "center_C1"
        owner_view = (await aliased(world.clients[A_OWNER], DASHBOARD, [world.gid(unit)]))["a0"]
        assert _dash(owner_view) == expected


ALERTS = "budgetAlerts(scope: {v}, first: 500) { totalCount edges { node { id } } }"


@pytest.mark.parametrize("viewer", LIST_VIEWERS)
async def test_budget_alerts_list_only_visible(world, viewer):
    d = (await aliased(world.clients[viewer], ALERTS, [None]))["a0"]
    ids = {e["node"]["id"] for e in d["edges"]}
    visible, invisible = VISIBILITY[viewer]
    assert ids == {world.gid(k) for k in visible if k.startswith("alert_")}
    assert not ids & {world.gid(k) for k in invisible}


@pytest.mark.parametrize("viewer", LIST_VIEWERS)
async def test_budget_alerts_of_foreign_unit_are_empty(world, viewer):
    gql = world.clients[viewer]
    units = sorted(UNIT_KEYS - SCOPE_UNITS[viewer])
    got = await aliased(gql, ALERTS, [world.gid(u) for u in units])
    fakes = await aliased(gql, ALERTS, [made_up(type_of(u)) for u in units])
    assert got == fakes == {f"a{i}": {"totalCount": 0, "edges": []} for i in range(len(units))}


# ---------------------------------------------------------------- mutations on a foreign campaign

ERR = "userErrors { field message code }"
CAMPAIGN_MUTATIONS = {
    "campaignUpdate": f'campaignUpdate(id: $id, input: {{ name: "hijacked", budget: "1" }}) {{ campaign {{ id }} {ERR} }}',
    "campaignLaunch": f"campaignLaunch(id: $id) {{ campaign {{ id }} {ERR} }}",
    "campaignPause": f"campaignPause(id: $id) {{ campaign {{ id }} {ERR} }}",
    "campaignResume": f"campaignResume(id: $id) {{ campaign {{ id }} {ERR} }}",
    "campaignComplete": f"campaignComplete(id: $id) {{ campaign {{ id }} {ERR} }}",
    "campaignCancel": f"campaignCancel(id: $id) {{ campaign {{ id }} {ERR} }}",
    "campaignClone": f'campaignClone(id: $id, name: "stolen copy") {{ campaign {{ id }} {ERR} }}',
    "audienceSet": f"audienceSet(campaignId: $id, input: {{ leadIds: [] }}) {{ campaign {{ id }} {ERR} }}",
    "spendLog": (f'spendLog(input: {{ campaignId: $id, amount: "5", category: "x" }}) '
                 f"{{ entry {{ id }} campaign {{ id }} alerts {{ id }} {ERR} }}"),
}


def mutation_doc(*names: str) -> str:
    return "mutation($id: ID!) { " + " ".join(f"{n}: {CAMPAIGN_MUTATIONS[n]}" for n in names) + " }"


ALL_CAMPAIGN_MUTATIONS = mutation_doc(*CAMPAIGN_MUTATIONS)


@pytest.mark.parametrize("actor,target", cases([
    (A_ZONE, "camp_c2"), (A_ZONE, "camp_org"), (A_ZONE, "camp_b"), (A_OWNER, "camp_b"), (A_OWNER, "draft_b"),
    (B_OWNER, "camp_c1"), (B_OWNER, "draft_c1"),
]))
async def test_mutations_on_foreign_campaign_are_not_found(world, actor, target):
    """campaignUpdate/Launch/Pause/Resume/Complete/Cancel/Clone, audienceSet and spendLog on a foreign campaign."""
    gql = world.clients[actor]
    before = await snapshot(world, target)
    got = await body(gql, ALL_CAMPAIGN_MUTATIONS, {"id": world.gid(target)})
    for name in CAMPAIGN_MUTATIONS:
        assert codes(got["data"][name]) == ["NOT_FOUND"], (name, got["data"][name])
    assert got == await body(gql, ALL_CAMPAIGN_MUTATIONS, {"id": made_up("Campaign")})
    assert await snapshot(world, target) == before
    for owner in (A_OWNER, B_OWNER):  # nothing was created either (clone)
        names = await world.clients[owner]('{ campaigns(first: 500, filter: { text: "stolen copy" }) { totalCount } }')
        assert names["campaigns"]["totalCount"] == 0


# ---------------------------------------------------------------- audienceSet with foreign leads / centers

AUDIENCE_DOC = f"mutation($id: ID!, $i: AudienceInput!) {{ r: audienceSet(campaignId: $id, input: $i) {{ campaign {{ id audienceSize }} {ERR} }} }}"


def _replace(obj, old: str, new: str):
    if isinstance(obj, str):
        return obj.replace(old, new)
    if isinstance(obj, list):
        return [_replace(x, old, new) for x in obj]
    if isinstance(obj, dict):
        return {k: _replace(v, old, new) for k, v in obj.items()}
    return obj


@pytest.mark.parametrize("actor,draft,lead", cases([
    (A_ZONE, "draft_z1", "lead_c2"), (A_ZONE, "draft_z1", "lead_none"), (A_ZONE, "draft_z1", "lead_b"),
    (A_OWNER, "draft_c1", "lead_b"), (B_OWNER, "draft_b", "lead_c1"), (B_OWNER, "draft_b", "lead_none"),
]))
async def test_audience_with_foreign_lead_is_not_found(world, actor, draft, lead):
    gql = world.clients[actor]
    before = await snapshot(world, draft)
    by_id = await body(gql, AUDIENCE_DOC, {"id": world.gid(draft), "i": {"leadIds": [world.gid(lead)]}})
    assert codes(by_id["data"]["r"]) == ["NOT_FOUND"]
    assert by_id == await body(gql, AUDIENCE_DOC, {"id": world.gid(draft), "i": {"leadIds": [made_up("Lead")]}})

    ext = world.external_ids[lead]
    by_ext = await body(gql, AUDIENCE_DOC, {"id": world.gid(draft), "i": {"leadExternalIds": [ext]}})
    assert codes(by_ext["data"]["r"]) == ["NOT_FOUND"]
    fake_ext = f"never-{uuid.uuid4().hex[:8]}"
    fake = await body(gql, AUDIENCE_DOC, {"id": world.gid(draft), "i": {"leadExternalIds": [fake_ext]}})
    assert by_ext == _replace(fake, fake_ext, ext)  # the message may echo the external id given
    assert await snapshot(world, draft) == before


@pytest.mark.parametrize("actor,draft,center", cases([
    (A_ZONE, "draft_z1", "center_C2"), (A_ZONE, "draft_z1", "center_B"), (A_OWNER, "draft_c1", "center_B"),
    (B_OWNER, "draft_b", "center_C1"),
]))
async def test_audience_filter_with_foreign_center_is_not_found(world, actor, draft, center):
    gql = world.clients[actor]
    before = await snapshot(world, draft)
    got = await body(gql, AUDIENCE_DOC, {"id": world.gid(draft), "i": {"filter": {"centerIds": [world.gid(center)]}}})
    assert codes(got["data"]["r"]) == ["NOT_FOUND"]
    assert got == await body(gql, AUDIENCE_DOC, {"id": world.gid(draft),
                                                 "i": {"filter": {"centerIds": [made_up("Center")]}}})
    assert await snapshot(world, draft) == before


# ---------------------------------------------------------------- spendLog reversing a foreign entry

REVERSE_DOC = f"mutation($i: SpendLogInput!) {{ r: spendLog(input: $i) {{ entry {{ id }} campaign {{ id }} alerts {{ id }} {ERR} }} }}"


@pytest.mark.parametrize("actor,campaign,entry", cases([
    (A_ZONE, "camp_z1", "spend_c2"), (A_ZONE, "camp_z1", "spend_org"), (A_ZONE, "camp_c1", "spend_b"),
    (A_OWNER, "camp_org", "spend_b"), (B_OWNER, "camp_b", "spend_c1"), (B_OWNER, "camp_b", "spend_org"),
]))
async def test_spend_reversal_of_foreign_entry_is_not_found(world, actor, campaign, entry):
    gql = world.clients[actor]
    entry_campaign = "camp_" + entry.split("_")[1]
    before = [await snapshot(world, campaign), await snapshot(world, entry_campaign)]
    amount = str(-Decimal(world.spend_amounts[entry]))
    inp = {"campaignId": world.gid(campaign), "amount": amount, "category": "correction", "reverses": world.gid(entry)}
    got = await body(gql, REVERSE_DOC, {"i": inp})
    assert codes(got["data"]["r"]) == ["NOT_FOUND"]
    assert got == await body(gql, REVERSE_DOC, {"i": {**inp, "reverses": made_up("SpendEntry")}})
    assert [await snapshot(world, campaign), await snapshot(world, entry_campaign)] == before


# ---------------------------------------------------------------- sendEventsIngest across boundaries


def _event(ext: str | None = None, **kw) -> dict:
    return {"idempotencyKey": f"k-{uuid.uuid4().hex}", "externalId": ext or f"x-{uuid.uuid4().hex[:10]}",
            "channel": "EMAIL", "type": "SENT", "occurredAt": at(5), **kw}


INGEST_DOC = ("mutation($e: [SendEventInput!]!) { r: sendEventsIngest(events: $e) { accepted duplicates "
              "rejected { index code message } userErrors { code message } } }")


@pytest.mark.parametrize("actor,campaign,lead", cases([
    (A_ZONE, "camp_c2", "lead_c1"), (A_ZONE, "camp_org", "lead_c1"), (A_ZONE, "camp_b", "lead_c1"),
    (A_INTEGRATION, "camp_b", "lead_c1"), (A_OWNER, "camp_b", "lead_c1"), (B_OWNER, "camp_c1", "lead_b"),
]))
async def test_ingest_naming_foreign_campaign_is_rejected_not_found(world, actor, campaign, lead):
    gql = world.clients[actor]
    before = await snapshot(world, campaign)
    got = await body(gql, INGEST_DOC, {"e": [_event(campaignId=world.gid(campaign), leadId=world.gid(lead))]})
    assert got["data"]["r"]["accepted"] == 0
    assert [r["code"] for r in got["data"]["r"]["rejected"]] == ["NOT_FOUND"]
    assert got == await body(gql, INGEST_DOC, {"e": [_event(campaignId=made_up("Campaign"), leadId=world.gid(lead))]})
    assert await snapshot(world, campaign) == before


@pytest.mark.parametrize("actor,campaign,lead", cases([
    (A_ZONE, "camp_c1", "lead_c2"), (A_ZONE, "camp_z1", "lead_none"), (A_ZONE, "camp_z1", "lead_b"),
    (A_INTEGRATION, "camp_c1", "lead_b"), (A_OWNER, "camp_c1", "lead_b"), (B_OWNER, "camp_b", "lead_c1"),
]))
async def test_ingest_naming_foreign_lead_is_rejected_not_found(world, actor, campaign, lead):
    gql = world.clients[actor]
    before = await snapshot(world, campaign)
    got = await body(gql, INGEST_DOC, {"e": [_event(campaignId=world.gid(campaign), leadId=world.gid(lead))]})
    assert got["data"]["r"]["accepted"] == 0
    assert [r["code"] for r in got["data"]["r"]["rejected"]] == ["NOT_FOUND"], got
    assert got == await body(gql, INGEST_DOC, {"e": [_event(campaignId=world.gid(campaign), leadId=made_up("Lead"))]})
    by_ext = await body(gql, INGEST_DOC, {"e": [_event(campaignId=world.gid(campaign),
                                                       leadExternalId=world.external_ids[lead])]})
    assert by_ext == got
    assert await snapshot(world, campaign) == before


@pytest.mark.parametrize("actor,send", cases([
    (A_ZONE, "send_b"), (A_INTEGRATION, "send_b"), (A_OWNER, "send_b"), (B_OWNER, "send_c1"), (B_OWNER, "send_org"),
]))
async def test_ingest_on_send_of_other_organization_answers_like_unknown_send(world, actor, send):
    """An event naming only a provider message id: another organization's send looks exactly unknown."""
    gql = world.clients[actor]
    campaign = "camp_" + send.split("_")[1]
    before = await snapshot(world, campaign)
    got = await body(gql, INGEST_DOC, {"e": [_event(world.external_ids[send], type="CLICKED")]})
    assert got["data"]["r"]["accepted"] == 0, got
    assert got == await body(gql, INGEST_DOC, {"e": [_event(type="CLICKED")]})
    assert await snapshot(world, campaign) == before




# externalId is unique per organization, so inside one organization the answer cannot be exactly the one
# for an unknown externalId; what the spec asks for is a NOT_FOUND rejection that changes nothing.
@pytest.mark.parametrize("actor,send", cases([(A_ZONE, "send_c2"), (A_ZONE, "send_org")]))
async def test_ingest_on_send_outside_scope_is_rejected_not_found(world, actor, send):
    gql = world.clients[actor]
    campaign = "camp_" + send.split("_")[1]
    before = await snapshot(world, campaign)
    got = await body(gql, INGEST_DOC, {"e": [_event(world.external_ids[send], type="CLICKED")]})
    assert await snapshot(world, campaign) == before
    assert got["data"]["r"]["accepted"] == 0, got
    assert [(r["index"], r["code"]) for r in got["data"]["r"]["rejected"]] == [(0, "NOT_FOUND")], got


@pytest.mark.parametrize("actor,send", cases([(A_ZONE, "send_c2"), (A_ZONE, "send_org")]))
async def test_ingest_on_send_outside_scope_naming_own_campaign_is_rejected(world, actor, send):
    gql = world.clients[actor]
    campaign = "camp_" + send.split("_")[1]
    before = await snapshot(world, campaign)
    events = [_event(world.external_ids[send], type="CLICKED", campaignId=world.gid("camp_c1"),
                     leadId=world.gid("lead_c1"))]
    r = await gql.raw(INGEST_DOC, {"e": events})
    assert await snapshot(world, campaign) == before
    got = r.json()
    assert "errors" not in got, got
    assert got["data"]["r"]["accepted"] == 0, got
    assert [(r["index"], r["code"]) for r in got["data"]["r"]["rejected"]] == [(0, "NOT_FOUND")], got


# ---------------------------------------------------------------- leadsUpsert with a foreign center

UPSERT_DOC = f"mutation($l: [LeadInput!]!) {{ r: leadsUpsert(leads: $l) {{ leads {{ id }} {ERR} }} }}"
LEADS_SEARCH = "query($s: String) { leads(filter: { search: $s }) { totalCount } }"


@pytest.mark.parametrize("actor,center", cases([
    (A_ZONE, "center_C2"), (A_ZONE, "center_B"), (A_OWNER, "center_B"), (B_OWNER, "center_C1"),
    (A_INTEGRATION, "center_B"),
]))
async def test_leads_upsert_with_foreign_center_is_not_found(world, actor, center):
    gql = world.clients[actor]
    ext = f"intruder-{uuid.uuid4().hex[:8]}"
    got = await body(gql, UPSERT_DOC, {"l": [{"externalId": ext, "name": "x", "centerId": world.gid(center)}]})
    assert got["data"]["r"]["leads"] == []
    assert codes(got["data"]["r"]) == ["NOT_FOUND"]
    assert got == await body(gql, UPSERT_DOC, {"l": [{"externalId": ext, "name": "x", "centerId": made_up("Center")}]})
    for owner in (A_OWNER, B_OWNER):  # nothing was created anywhere
        assert (await world.clients[owner](LEADS_SEARCH, {"s": ext}))["leads"]["totalCount"] == 0


# ---------------------------------------------------------------- tokens, centers, campaign owner units

REVOKE_DOC = f"mutation($id: ID!) {{ r: tokenRevoke(id: $id) {{ apiToken {{ id revokedAt }} {ERR} }} }}"


@pytest.mark.parametrize("actor,token", cases([
    (A_OWNER, "token_B_owner"), (B_OWNER, "token_A_owner"), (B_OWNER, "token_A_zone"),
    (A_ZONE, "token_B_owner"), (A_ZONE, "token_A_owner"), (A_ANALYST, "token_A_zone"),
    (A_INTEGRATION, "token_A_owner"),
]))
async def test_revoking_foreign_token_is_not_found(world, actor, token):
    gql = world.clients[actor]
    got = await body(gql, REVOKE_DOC, {"id": world.gid(token)})
    holder = {"token_A_owner": A_OWNER, "token_B_owner": B_OWNER, "token_A_zone": A_ZONE}[token]
    assert (await world.clients[holder]("{ viewer { id } }"))["viewer"]["id"]  # still a working token
    assert got == await body(gql, REVOKE_DOC, {"id": made_up("ApiToken")})
    assert codes(got["data"]["r"]) == ["NOT_FOUND"]


CENTER_DOC = f"mutation($z: ID!, $n: String!) {{ r: centerCreate(zoneId: $z, name: $n) {{ center {{ id }} {ERR} }} }}"
CENTERS = "{ viewer { organization { centers { name } } } }"


@pytest.mark.parametrize("actor,zone", cases([(A_OWNER, "zone_B"), (B_OWNER, "zone_Z1"), (B_OWNER, "zone_Z2")]))
async def test_center_in_foreign_zone_is_not_found(world, actor, zone):
    gql = world.clients[actor]
    name = unique("intruder-center")
    got = await body(gql, CENTER_DOC, {"z": world.gid(zone), "n": name})
    assert codes(got["data"]["r"]) == ["NOT_FOUND"]
    assert got == await body(gql, CENTER_DOC, {"z": made_up("Zone"), "n": name})
    for owner in (A_OWNER, B_OWNER):
        centers = (await world.clients[owner](CENTERS))["viewer"]["organization"]["centers"]
        assert name not in {c["name"] for c in centers}


CREATE_DOC = f"mutation($i: CampaignCreateInput!) {{ r: campaignCreate(input: $i) {{ campaign {{ id }} {ERR} }} }}"


@pytest.mark.parametrize("actor,unit", cases([
    (A_ZONE, "center_C2"), (A_ZONE, "zone_Z2"), (A_ZONE, "org_A"), (A_ZONE, "center_B"), (A_OWNER, "zone_B"),
    (A_OWNER, "org_B"), (B_OWNER, "center_C1"), (B_OWNER, "org_A"),
]))
async def test_campaign_create_with_foreign_owner_unit_is_not_found(world, actor, unit):
    gql = world.clients[actor]
    name = unique("intruder-campaign")
    inp = {"name": name, "channels": [{"channel": "EMAIL"}], "ownerUnitId": world.gid(unit)}
    got = await body(gql, CREATE_DOC, {"i": inp})
    assert codes(got["data"]["r"]) == ["NOT_FOUND"]
    assert got == await body(gql, CREATE_DOC, {"i": {**inp, "ownerUnitId": made_up(type_of(unit))}})
    for owner in (A_OWNER, B_OWNER):
        found = await world.clients[owner]("query($t: String) { campaigns(filter: { text: $t }) { totalCount } }",
                                           {"t": name})
        assert found["campaigns"]["totalCount"] == 0


TOKEN_CREATE_DOC = f"mutation($i: TokenCreateInput!) {{ r: tokenCreate(input: $i) {{ token {ERR} }} }}"


@pytest.mark.parametrize("actor,unit", cases([(A_OWNER, "zone_B"), (A_OWNER, "center_B"), (B_OWNER, "center_C1")]))
async def test_member_with_foreign_scope_is_not_found(world, actor, unit):
    gql = world.clients[actor]
    inp = {"email": f"{unique('m')}@example.test", "role": "ANALYST", "scopeUnitId": world.gid(unit)}
    got = await body(gql, TOKEN_CREATE_DOC, {"i": inp})
    assert got["data"]["r"]["token"] is None
    assert codes(got["data"]["r"]) == ["NOT_FOUND"]
    assert got == await body(gql, TOKEN_CREATE_DOC, {"i": {**inp, "scopeUnitId": made_up(type_of(unit))}})


# ---------------------------------------------------------------- role rules


async def test_analyst_cannot_create_campaigns(world):
    got = await body(world.clients[A_ANALYST], CREATE_DOC,
                     {"i": {"name": unique("analyst"), "channels": [{"channel": "EMAIL"}]}})
    assert got["data"]["r"]["campaign"] is None
    assert codes(got["data"]["r"]) == ["FORBIDDEN"]


@pytest.mark.parametrize("key,mutations", [
    ("draft_c1", ["campaignLaunch", "campaignCancel", "audienceSet", "campaignUpdate"]),
    ("camp_c1", ["campaignPause", "campaignComplete", "campaignCancel", "campaignUpdate", "campaignClone", "spendLog"]),
])
async def test_analyst_cannot_run_campaigns(world, key, mutations):
    before = await snapshot(world, key)
    got = await body(world.clients[A_ANALYST], mutation_doc(*mutations), {"id": world.gid(key)})
    for name in mutations:
        assert codes(got["data"][name]) == ["FORBIDDEN"], name
    assert await snapshot(world, key) == before


async def test_analyst_cannot_ingest_or_upsert_leads(world):
    gql = world.clients[A_ANALYST]
    got = await body(gql, INGEST_DOC, {"e": [_event(campaignId=world.gid("camp_c1"), leadId=world.gid("lead_c1"))]})
    assert got["data"]["r"]["accepted"] == 0
    assert codes(got["data"]["r"]) == ["FORBIDDEN"]
    got = await body(gql, UPSERT_DOC, {"l": [{"externalId": unique("a"), "centerId": world.gid("center_C1")}]})
    assert codes(got["data"]["r"]) == ["FORBIDDEN"]


async def test_analyst_reads_its_scope(world):
    d = await world.clients[A_ANALYST]("query($id: ID!) { campaign(id: $id) { id reach sends { totalCount } } }",
                                       {"id": world.gid("camp_c1")})
    assert d["campaign"]["id"] == world.gid("camp_c1") and d["campaign"]["reach"] == 1
    assert d["campaign"]["sends"]["totalCount"] >= 1


async def test_integration_can_ingest(world):
    gql = world.clients[A_INTEGRATION]
    before = await snapshot(world, "camp_c1")
    got = await body(gql, INGEST_DOC, {"e": [_event(campaignId=world.gid("camp_c1"), leadId=world.gid("lead_c1"))]})
    assert got["data"]["r"]["accepted"] == 1 and not got["data"]["r"]["rejected"], got
    after = await snapshot(world, "camp_c1")
    assert after["metrics"]["totals"]["generated"] == before["metrics"]["totals"]["generated"] + 1


async def test_integration_cannot_run_campaigns(world):
    gql = world.clients[A_INTEGRATION]
    before = await snapshot(world, "camp_c1")
    names = ["campaignPause", "campaignUpdate", "spendLog", "campaignClone"]
    got = await body(gql, mutation_doc(*names), {"id": world.gid("camp_c1")})
    for name in names:
        assert codes(got["data"][name]) == ["FORBIDDEN"], name
    assert await snapshot(world, "camp_c1") == before
    created = await body(gql, CREATE_DOC, {"i": {"name": unique("integration"), "channels": [{"channel": "EMAIL"}]}})
    assert codes(created["data"]["r"]) == ["FORBIDDEN"]


async def test_zone_manager_creates_inside_its_scope(world):
    gql = world.clients[A_ZONE]
    c = await create_campaign(gql, name=unique("zone-made"), ownerUnitId=world.gid("center_C1"))
    d = await gql("query($id: ID!) { campaign(id: $id) { createdFrom { id kind } status } }", {"id": c["id"]})
    assert d["campaign"] == {"createdFrom": {"id": world.gid("center_C1"), "kind": "CENTER"}, "status": "DRAFT"}
    default = await create_campaign(gql, name=unique("zone-default"))
    d = await gql("query($id: ID!) { campaign(id: $id) { createdFrom { id kind } } }", {"id": default["id"]})
    assert d["campaign"]["createdFrom"] == {"id": world.gid("zone_Z1"), "kind": "ZONE"}


async def test_non_owners_cannot_create_centers(world):
    for actor in (A_ZONE, A_ANALYST, A_INTEGRATION):
        gql = world.clients[actor]
        got = await body(gql, CENTER_DOC, {"z": world.gid("zone_Z2"), "n": unique("c")})
        assert codes(got["data"]["r"]) == ["FORBIDDEN"], actor
        assert got == await body(gql, CENTER_DOC, {"z": made_up("Zone"), "n": unique("c")})


# ---------------------------------------------------------------- owners, members and tokens (issue 10, item 1)

MEMBER_DOC = ("mutation($id: ID!, $i: MemberUpdateInput!) { r: memberUpdate(id: $id, input: $i) { user { id role "
              "scope { id kind } canExport changes { changedById before { role scopeUnitId } after { role scopeUnitId } } } "
              f"{ERR} }} }}")
TOKEN_CREATE_FULL = ("mutation($i: TokenCreateInput!) { r: tokenCreate(input: $i) { token user { id role scope { id } } "
                     f"{ERR} }} }}")
TOKENS_AND_USERS = "{ viewer { id } tokens(first: 100) { edges { node { id } } } users(first: 100) { edges { node { id } } } }"


@pytest.mark.parametrize("unit", ["zone_Z1", "center_C1"])
async def test_owner_with_zone_or_center_scope_is_refused(world, unit):
    """Owners are organization-wide: tokenCreate with role OWNER and a narrower scope is a user error."""
    got = await body(world.clients[A_OWNER], TOKEN_CREATE_FULL,
                     {"i": {"email": f"{unique('o')}@example.test", "role": "OWNER", "scopeUnitId": world.gid(unit)}})
    assert got["data"]["r"]["token"] is None
    assert codes(got["data"]["r"]) == ["INVALID"]


async def test_token_create_never_changes_an_existing_member(world):
    """A token for an existing email neither demotes nor re-scopes that member (nor authenticates as a changed one)."""
    gql = world.clients[A_OWNER]
    owner_email = (await gql("{ viewer { email } }"))["viewer"]["email"]
    got = await body(gql, TOKEN_CREATE_FULL, {"i": {"email": owner_email, "role": "ANALYST",
                                                     "scopeUnitId": world.gid("center_C2")}})
    assert got["data"]["r"]["token"] is None and codes(got["data"]["r"]) == ["MEMBER_EXISTS"]
    me = await gql("{ viewer { role scope { kind } } }")
    assert me["viewer"] == {"role": "OWNER", "scope": {"kind": "ORGANIZATION"}}
    # The same grant again is simply a second token for the same member.
    again = await body(gql, TOKEN_CREATE_FULL, {"i": {"email": owner_email, "role": "OWNER"}})
    assert again["data"]["r"]["user"]["id"] == world.gid("user_A_owner"), again
    second = world.clients[A_OWNER].as_(again["data"]["r"]["token"])
    assert (await second("{ viewer { id role } }"))["viewer"] == {"id": world.gid("user_A_owner"), "role": "OWNER"}


async def _legacy_scoped_owner(world, unit_key: str) -> tuple[GQL, str]:
    """An OWNER with a zone scope, as rows written before owners had to be organization-wide may hold
    (the API no longer creates one): a manager turned owner directly in the database."""
    from models.tenancy import User

    gql, user_id, _ = await _member(Tenant(world.clients[A_OWNER], world.gid("org_A"), ""), "MANAGER",
                                    world.gid(unit_key))
    pk = int(base64.b64decode(user_id).decode().split(":")[1])
    await User.filter(id=pk).update(role="OWNER")
    return gql, user_id


async def test_scoped_owner_lists_revokes_and_creates_only_inside_its_scope(world):
    gql, me = await _legacy_scoped_owner(world, "zone_Z1")
    d = await gql(TOKENS_AND_USERS)
    tokens = {e["node"]["id"] for e in d["tokens"]["edges"]}
    users = {e["node"]["id"] for e in d["users"]["edges"]}
    assert world.gid("token_A_zone") in tokens and world.gid("token_A_analyst") in tokens
    for outside in ("token_A_owner", "token_A_integration"):
        assert world.gid(outside) not in tokens
    assert world.gid("user_A_owner") not in users and world.gid("user_A_integration") not in users
    assert world.gid("user_A_analyst") in users and me in users
    # Revoking the org-wide owner's token answers like a missing token; it keeps working.
    got = await body(gql, REVOKE_DOC, {"id": world.gid("token_A_owner")})
    assert codes(got["data"]["r"]) == ["NOT_FOUND"]
    assert got == await body(gql, REVOKE_DOC, {"id": made_up("ApiToken")})
    assert (await world.clients[A_OWNER]("{ viewer { id } }"))["viewer"]["id"]
    # Units: no zone at all, no center in another zone; a center in its own zone is fine.
    z = await body(gql, "mutation($n: String!) { r: zoneCreate(name: $n) { zone { id } " + ERR + " } }",
                   {"n": unique("zone")})
    assert codes(z["data"]["r"]) == ["FORBIDDEN"]
    c = await body(gql, CENTER_DOC, {"z": world.gid("zone_Z2"), "n": unique("c")})
    assert codes(c["data"]["r"]) == ["NOT_FOUND"]
    assert c == await body(gql, CENTER_DOC, {"z": made_up("Zone"), "n": unique("c")})
    ok = await body(gql, CENTER_DOC, {"z": world.gid("zone_Z1"), "n": unique("c")})
    assert ok["data"]["r"]["center"]["id"] and not ok["data"]["r"]["userErrors"]
    # No owner made by it, no change to the org-wide owner, no token for it.
    made = await body(gql, TOKEN_CREATE_FULL, {"i": {"email": f"{unique('o')}@example.test", "role": "OWNER"}})
    assert codes(made["data"]["r"]) == ["INVALID"]
    demote = await body(gql, MEMBER_DOC, {"id": world.gid("user_A_owner"), "i": {"role": "ANALYST"}})
    assert codes(demote["data"]["r"]) == ["NOT_FOUND"]
    owner_email = (await world.clients[A_OWNER]("{ viewer { email } }"))["viewer"]["email"]
    steal = await body(gql, TOKEN_CREATE_FULL, {"i": {"email": owner_email, "role": "OWNER"}})
    assert steal["data"]["r"]["token"] is None and codes(steal["data"]["r"]) in (["INVALID"], ["NOT_FOUND"])
    assert (await world.clients[A_OWNER]("{ viewer { role scope { kind } } }"))["viewer"] == {
        "role": "OWNER", "scope": {"kind": "ORGANIZATION"}}


async def test_member_update_changes_role_and_scope_and_is_recorded(world):
    owner = world.clients[A_OWNER]
    gql, member, _ = await _member(Tenant(owner, world.gid("org_A"), ""), "ANALYST", world.gid("center_C1"))
    got = await body(owner, MEMBER_DOC, {"id": member, "i": {"role": "MANAGER", "scopeUnitId": world.gid("zone_Z2")}})
    r = got["data"]["r"]
    assert not r["userErrors"], r
    assert r["user"]["role"] == "MANAGER" and r["user"]["scope"] == {"id": world.gid("zone_Z2"), "kind": "ZONE"}
    assert r["user"]["changes"] == [{"changedById": world.gid("user_A_owner"),
                                     "before": {"role": "ANALYST", "scopeUnitId": world.gid("center_C1")},
                                     "after": {"role": "MANAGER", "scopeUnitId": world.gid("zone_Z2")}}]
    # The member's token now acts with the new grant.
    d = await gql("query($id: ID!) { campaign(id: $id) { id } }", {"id": world.gid("camp_c2")})
    assert d["campaign"]["id"] == world.gid("camp_c2")
    # An owner only organization-wide.
    bad = await body(owner, MEMBER_DOC, {"id": member, "i": {"role": "OWNER"}})
    assert codes(bad["data"]["r"]) == ["INVALID"]


@pytest.mark.parametrize("actor", [A_ZONE, A_ANALYST, A_INTEGRATION, B_OWNER])
async def test_member_update_by_non_owner_or_foreign_owner_changes_nothing(world, actor):
    got = await body(world.clients[actor], MEMBER_DOC, {"id": world.gid("user_A_analyst"), "i": {"role": "MANAGER"}})
    assert got["data"]["r"]["user"] is None
    assert codes(got["data"]["r"]) == (["NOT_FOUND"] if actor == B_OWNER else ["FORBIDDEN"])
    d = await world.clients[A_ANALYST]("{ viewer { role } }")
    assert d["viewer"]["role"] == "ANALYST"


async def test_the_last_owner_cannot_be_demoted(tenant_factory):
    t = await tenant_factory()
    me = (await t.gql("{ viewer { id } }"))["viewer"]["id"]
    got = await body(t.gql, MEMBER_DOC, {"id": me, "i": {"role": "MANAGER"}})
    assert codes(got["data"]["r"]) == ["LAST_OWNER"]
    assert (await t.gql("{ viewer { role } }"))["viewer"]["role"] == "OWNER"


# ---------------------------------------------------------------- leads through sends and streams (item 2)


@pytest.mark.parametrize("actor,campaign,lead", cases([
    (A_INTEGRATION, "camp_c1", "lead_c2"), (A_INTEGRATION, "camp_c2", "lead_c1"), (A_OWNER, "camp_c1", "lead_none"),
    (A_ZONE, "camp_z1", "lead_c1b"),  # lead_c1b is a recipient of camp_z1: accepted (control row below)
]))
async def test_send_lead_must_be_a_recipient_of_its_campaign(world, actor, campaign, lead):
    before = await snapshot(world, campaign)
    got = await body(world.clients[actor], INGEST_DOC, {"e": [_event(campaignId=world.gid(campaign),
                                                                      leadId=world.gid(lead))]})
    r = got["data"]["r"]
    if lead == "lead_c1b":
        assert r["accepted"] == 1 and not r["rejected"], r
        return
    assert r["accepted"] == 0 and [x["code"] for x in r["rejected"]] == ["NOT_RECIPIENT"], r
    assert await snapshot(world, campaign) == before


RECIPIENTS_DOC = """query($id: ID!) { campaign(id: $id) { sends(first: 100) { edges { node { id recipient { id name email phone } } } }
  stats { recipients(first: 100) { edges { node { lead { id name email } } } } } } }"""


async def test_leads_outside_scope_do_not_leak_through_sends_or_stats(world):
    """A recipient of a center-C1 campaign that later moves home to center C2: the center-C1 analyst still sees
    the campaign and its sends, but that lead only as null — as node(id) of it is."""
    owner, analyst = world.clients[A_OWNER], world.clients[A_ANALYST]
    ext = unique("mover")
    [mover] = await upsert_leads(owner, [{"externalId": ext, "name": "Mover", "email": f"{ext}@example.test",
                                          "centerId": world.gid("center_C1")}])
    c = await create_campaign(owner, name=unique("mixed"), ownerUnitId=world.gid("center_C1"))
    await _audience(owner, c["id"], [world.gid("lead_c1"), mover["id"]])
    await _launch(owner, c["id"])
    for lead in (world.gid("lead_c1"), mover["id"]):
        r = await ingest(owner, [_event(campaignId=c["id"], leadId=lead)])
        assert r["accepted"] == 1, r
    await upsert_leads(owner, [{"externalId": ext, "centerId": world.gid("center_C2")}])
    assert (await analyst("query($id: ID!) { node(id: $id) { id } }", {"id": mover["id"]}))["node"] is None
    d = await analyst(RECIPIENTS_DOC, {"id": c["id"]})
    seen = [e["node"]["recipient"] for e in d["campaign"]["sends"]["edges"]]
    assert len(seen) == 2 and None in seen
    assert [x["id"] for x in seen if x] == [world.gid("lead_c1")]
    stats = [e["node"]["lead"] for e in d["campaign"]["stats"]["recipients"]["edges"]]
    assert {x["id"] for x in stats if x} == {world.gid("lead_c1")} and None in stats
    # The owner still sees both.
    d = await owner(RECIPIENTS_DOC, {"id": c["id"]})
    assert {e["node"]["recipient"]["id"] for e in d["campaign"]["sends"]["edges"]} == {world.gid("lead_c1"), mover["id"]}


# ---------------------------------------------------------------- lead moves (item 3)

LEAD_CENTER = "query($id: ID!) { node(id: $id) { ... on Lead { center { id } } } }"


async def test_scoped_user_cannot_move_a_lead_out_of_its_scope(world):
    """A zone-Z1 manager: centerId null (organization level) or a center of another zone is refused, and the
    lead stays where it was; a move inside the zone is fine."""
    gql = world.clients[A_ZONE]
    ext = unique("z1-lead")
    [lead] = await upsert_leads(gql, [{"externalId": ext, "centerId": world.gid("center_C1")}])
    got = await body(gql, UPSERT_DOC, {"l": [{"externalId": ext, "centerId": None}]})
    assert codes(got["data"]["r"]) == ["SCOPE_OUTSIDE"] and got["data"]["r"]["leads"] == []
    got = await body(gql, UPSERT_DOC, {"l": [{"externalId": ext, "centerId": world.gid("center_C2")}]})
    assert codes(got["data"]["r"]) == ["NOT_FOUND"]
    d = await world.clients[A_OWNER](LEAD_CENTER, {"id": lead["id"]})
    assert d["node"]["center"]["id"] == world.gid("center_C1")
    assert (await gql(LEAD_CENTER, {"id": lead["id"]}))["node"]["center"]["id"] == world.gid("center_C1")


@pytest.mark.parametrize("actor", [A_ZONE])
async def test_scoped_user_cannot_create_a_lead_without_center(world, actor):
    gql = world.clients[actor]
    ext = unique("homeless")
    got = await body(gql, UPSERT_DOC, {"l": [{"externalId": ext, "centerId": None}]})
    assert codes(got["data"]["r"]) == ["SCOPE_OUTSIDE"]
    got = await body(gql, UPSERT_DOC, {"l": [{"externalId": ext}]})
    assert codes(got["data"]["r"]) == ["INVALID"]
    found = await world.clients[A_OWNER](LEADS_SEARCH, {"s": ext})
    assert found["leads"]["totalCount"] == 0


async def test_center_scoped_integration_creates_leads_in_its_center(world):
    owner = Tenant(world.clients[A_OWNER], world.gid("org_A"), "")
    gql, _, _ = await _member(owner, "INTEGRATION", world.gid("center_C1"))
    ext = unique("c1-int")
    got = await body(gql, UPSERT_DOC, {"l": [{"externalId": ext, "centerId": None}]})
    assert codes(got["data"]["r"]) == ["SCOPE_OUTSIDE"]
    [lead] = await upsert_leads(gql, [{"externalId": ext}])
    d = await world.clients[A_OWNER](LEAD_CENTER, {"id": lead["id"]})
    assert d["node"]["center"]["id"] == world.gid("center_C1")
