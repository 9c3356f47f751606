"""Campaign state machine, launch checks, locking, clone, control group and resume (SPEC §2, §3).

Everything goes through the public GraphQL API. One organization serves the
whole module; every test makes its own campaigns (and tags its own leads).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from tests.conftest import GQL, unique
from tests.helpers import CAMPAIGN_FIELDS, at, create_campaign, ingest, make_leads, upsert_leads

ERR = "userErrors { field message code }"
ACTIONS = {"launch": "campaignLaunch", "pause": "campaignPause", "resume": "campaignResume",
           "complete": "campaignComplete", "cancel": "campaignCancel"}
STATUSES = ["DRAFT", "SCHEDULED", "LIVE", "PAUSED", "COMPLETED", "CANCELLED"]

# (from, action) -> to. Every other (status, action) pair is illegal.
LEGAL = {
    ("DRAFT", "launch"): "LIVE",  # SCHEDULED instead when startAt is in the future (test below)
    ("LIVE", "pause"): "PAUSED",
    ("PAUSED", "resume"): "LIVE",
    ("LIVE", "complete"): "COMPLETED",
    ("PAUSED", "complete"): "COMPLETED",
    ("DRAFT", "cancel"): "CANCELLED",
    ("SCHEDULED", "cancel"): "CANCELLED",
    ("LIVE", "cancel"): "CANCELLED",
    ("PAUSED", "cancel"): "CANCELLED",
}
ILLEGAL = [(s, a) for s in STATUSES for a in ACTIONS if (s, a) not in LEGAL]


def iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def future(days: float = 30) -> str:
    return iso(datetime.now(timezone.utc) + timedelta(days=days))


async def body(gql: GQL, doc: str, variables: dict | None = None) -> dict:
    """The whole answer's data; a top-level error fails the test."""
    r = await gql.raw(doc, variables or {})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert "errors" not in answer, answer
    return answer["data"]


@pytest.fixture(scope="module")
async def org(http) -> GQL:
    """One organization for the module (same as the conftest tenant_factory, module-scoped)."""
    from app.tenancy.service import create_organization

    name = unique()
    issued = await create_organization(name, f"owner@{name}.test", "EUR", "UTC")
    return GQL(http, issued.token)


@pytest.fixture(scope="module")
async def pool(org) -> list[dict]:
    """Leads to use as explicit audiences."""
    return await make_leads(org, 5, prefix=f"pool-{uuid.uuid4().hex[:6]}")


async def act(gql: GQL, action: str, campaign_id: str) -> dict:
    name = ACTIONS[action]
    d = await body(gql, f"mutation($id: ID!) {{ {name}(id: $id) {{ campaign {{ id status statusReason reach }} {ERR} }} }}",
                   {"id": campaign_id})
    return d[name]


async def read(gql: GQL, campaign_id: str, fields: str = "status statusReason") -> dict:
    return (await body(gql, f"query($id: ID!) {{ campaign(id: $id) {{ {fields} }} }}", {"id": campaign_id}))["campaign"]


async def set_audience(gql: GQL, campaign_id: str, **audience) -> dict:
    d = await body(gql, f"mutation($c: ID!, $i: AudienceInput!) {{ audienceSet(campaignId: $c, input: $i) "
                        f"{{ campaign {{ audienceSize }} {ERR} }} }}", {"c": campaign_id, "i": audience})
    assert not d["audienceSet"]["userErrors"], d
    return d["audienceSet"]["campaign"]


async def campaign_in(gql: GQL, pool: list[dict], status: str) -> str:
    """A fresh campaign (audience: the pool) brought to `status` through legal actions."""
    overrides = {"startAt": future()} if status == "SCHEDULED" else {}
    campaign = await create_campaign(gql, **overrides)
    cid = campaign["id"]
    await set_audience(gql, cid, leadIds=[lead["id"] for lead in pool])
    steps = {"DRAFT": [], "SCHEDULED": ["launch"], "LIVE": ["launch"], "PAUSED": ["launch", "pause"],
             "COMPLETED": ["launch", "complete"], "CANCELLED": ["cancel"]}[status]
    for step in steps:
        r = await act(gql, step, cid)
        assert not r["userErrors"], r
    assert (await read(gql, cid))["status"] == status
    return cid


@pytest.fixture(scope="module")
def reusable(org, pool):
    """A campaign in a given status, shared by tests whose action must leave it unchanged.

    A cached campaign is reused only while it is still in that status (a test that found a bug may have
    moved it); otherwise a new one is made."""
    cache: dict[str, str] = {}

    async def get(status: str) -> str:
        cid = cache.get(status)
        if cid is None or (await read(org, cid))["status"] != status:
            cid = cache[status] = await campaign_in(org, pool, status)
        return cid

    return get


# ---------------------------------------------------------------- transitions


@pytest.mark.parametrize("start,action", sorted(LEGAL), ids=[f"{s}-{a}" for s, a in sorted(LEGAL)])
async def test_legal_transition(org, pool, start, action):
    cid = await campaign_in(org, pool, start)
    r = await act(org, action, cid)
    target = LEGAL[(start, action)]
    assert r["userErrors"] == []
    assert r["campaign"]["status"] == target
    after = await read(org, cid)
    assert after["status"] == target
    assert after["statusReason"] == ("MANUAL" if target == "PAUSED" else None)


async def test_launch_with_future_start_is_scheduled(org, pool):
    campaign = await create_campaign(org, startAt=future(10), endAt=future(20))
    await set_audience(org, campaign["id"], leadIds=[lead["id"] for lead in pool])
    r = await act(org, "launch", campaign["id"])
    assert r["userErrors"] == [] and r["campaign"]["status"] == "SCHEDULED"
    c = await read(org, campaign["id"], "status reach audienceSize")
    assert c == {"status": "SCHEDULED", "reach": len(pool), "audienceSize": len(pool)}


async def test_launch_with_past_start_goes_live(org, pool):
    campaign = await create_campaign(org, startAt=iso(datetime.now(timezone.utc) - timedelta(hours=1)))
    await set_audience(org, campaign["id"], leadIds=[pool[0]["id"]])
    r = await act(org, "launch", campaign["id"])
    assert r["userErrors"] == [] and r["campaign"]["status"] == "LIVE"


async def test_pause_resume_round_trip(org, pool):
    cid = await campaign_in(org, pool, "LIVE")
    for _ in range(2):
        assert (await act(org, "pause", cid))["campaign"]["status"] == "PAUSED"
        assert await read(org, cid) == {"status": "PAUSED", "statusReason": "MANUAL"}
        assert (await act(org, "resume", cid))["campaign"]["status"] == "LIVE"
        assert await read(org, cid) == {"status": "LIVE", "statusReason": None}


@pytest.mark.parametrize("start,action", ILLEGAL, ids=[f"{s}-{a}" for s, a in ILLEGAL])
async def test_illegal_transition_is_a_user_error(org, reusable, start, action):
    cid = await reusable(start)
    before = await read(org, cid, "status statusReason reach audienceSize controlSize")
    r = await act(org, action, cid)
    assert r["campaign"] is None
    assert [e["code"] for e in r["userErrors"]] == ["ILLEGAL_TRANSITION"]
    assert r["userErrors"][0]["message"]
    assert await read(org, cid, "status statusReason reach audienceSize controlSize") == before


# ---------------------------------------------------------------- launch checks


async def test_launch_without_enabled_channel(org, pool):
    campaign = await create_campaign(org, channels=[{"channel": "EMAIL", "enabled": False},
                                                    {"channel": "SMS", "enabled": False}])
    await set_audience(org, campaign["id"], leadIds=[lead["id"] for lead in pool])
    r = await act(org, "launch", campaign["id"])
    assert r["campaign"] is None
    assert [e["code"] for e in r["userErrors"]] == ["NO_ENABLED_CHANNEL"]
    assert await read(org, campaign["id"], "status reach") == {"status": "DRAFT", "reach": 0}
    # Enabling a channel makes the same draft launchable.
    d = await body(org, f"mutation($id: ID!) {{ campaignUpdate(id: $id, input: {{ channels: [{{ channel: EMAIL }}] }}) "
                        f"{{ campaign {{ id }} {ERR} }} }}", {"id": campaign["id"]})
    assert d["campaignUpdate"]["userErrors"] == []
    assert (await act(org, "launch", campaign["id"]))["campaign"]["status"] == "LIVE"


@pytest.mark.parametrize("audience", [None, "filter matching nobody"])
async def test_launch_scheduled_type_with_empty_audience(org, pool, audience):
    campaign = await create_campaign(org, type="SCHEDULED")
    if audience:
        assert (await set_audience(org, campaign["id"], filter={"tags": [unique("nobody")]}))["audienceSize"] == 0
    r = await act(org, "launch", campaign["id"])
    assert r["campaign"] is None
    assert [e["code"] for e in r["userErrors"]] == ["EMPTY_AUDIENCE"]
    assert await read(org, campaign["id"], "status reach audienceSize controlSize") == {
        "status": "DRAFT", "reach": 0, "audienceSize": 0, "controlSize": 0}
    await set_audience(org, campaign["id"], leadIds=[pool[0]["id"]])
    r = await act(org, "launch", campaign["id"])
    assert r["userErrors"] == [] and r["campaign"]["status"] == "LIVE" and r["campaign"]["reach"] == 1


async def test_always_on_may_launch_with_empty_audience(org):
    """Only SCHEDULED campaigns need recipients at launch; ALWAYS_ON ones gain them as leads appear."""
    campaign = await create_campaign(org, type="ALWAYS_ON")
    r = await act(org, "launch", campaign["id"])
    assert r["userErrors"] == [] and r["campaign"]["status"] == "LIVE"


# ---------------------------------------------------------------- locking after launch

UPDATE = f"mutation($id: ID!, $i: CampaignUpdateInput!) {{ campaignUpdate(id: $id, input: $i) {{ campaign {{ {CAMPAIGN_FIELDS} }} {ERR} }} }}"
SETTINGS = (f"{CAMPAIGN_FIELDS} description startAt endAt createdFrom {{ id }} goal {{ type key }} "
            "attribution { viewWindowHours goalWindowHours goalAfterViewWindowHours }")


async def update(gql: GQL, cid: str, changes: dict) -> dict:
    return (await body(gql, UPDATE, {"id": cid, "i": changes}))["campaignUpdate"]


LOCKED_CHANGES = {
    "channels": {"channels": [{"channel": "PUSH", "unitCost": "0.02"}]},
    "controlGroupPercent": {"controlGroupPercent": 25},
    "type": {"type": "ALWAYS_ON"},
    "startAt": {"startAt": future(5)},
    "channels+name": {"channels": [{"channel": "EMAIL", "unitCost": "9"}], "name": "renamed with a locked change"},
}


LOCKED_CASES = [("LIVE", change) for change in sorted(LOCKED_CHANGES)] + [
    (status, change) for status in ("PAUSED", "SCHEDULED") for change in ("channels", "controlGroupPercent")]


@pytest.mark.parametrize("status,change", LOCKED_CASES, ids=[f"{s}-{c}" for s, c in LOCKED_CASES])
async def test_locked_settings_after_launch(org, reusable, status, change):
    cid = await reusable(status)
    before = await read(org, cid, SETTINGS)
    r = await update(org, cid, LOCKED_CHANGES[change])
    assert r["campaign"] is None
    assert [e["code"] for e in r["userErrors"]] == ["CAMPAIGN_LOCKED"]
    assert await read(org, cid, SETTINGS) == before  # all or nothing: the name did not change either


@pytest.mark.parametrize("status", ["LIVE", "PAUSED"])
async def test_name_budget_and_other_free_settings_change_after_launch(org, pool, status):
    cid = await campaign_in(org, pool, status)
    before = await read(org, cid, SETTINGS)
    end_at = future(40)
    changes = {"name": "Renamed live", "budget": "250.50", "description": "new words", "endAt": end_at,
               "goal": {"type": "LEAD", "key": "signup"},
               "attribution": {"viewWindowHours": 24, "goalWindowHours": 48, "goalAfterViewWindowHours": 12}}
    r = await update(org, cid, changes)
    assert r["userErrors"] == []
    after = await read(org, cid, SETTINGS)
    assert after["name"] == "Renamed live" and after["budget"]["allocated"]["amount"] == "250.50"
    assert after["description"] == "new words" and after["goal"] == {"type": "LEAD", "key": "signup"}
    assert after["attribution"] == {"viewWindowHours": 24, "goalWindowHours": 48, "goalAfterViewWindowHours": 12}
    assert parse(after["endAt"]) == parse(end_at)
    for unchanged in ("status", "channels", "controlGroupPercent", "type", "reach", "audienceSize", "startAt"):
        assert after[unchanged] == before[unchanged], unchanged


async def test_draft_settings_are_all_editable(org):
    campaign = await create_campaign(org)
    r = await update(org, campaign["id"], {"channels": [{"channel": "PUSH", "unitCost": "0.02"}],
                                           "controlGroupPercent": 25, "type": "ALWAYS_ON"})
    assert r["userErrors"] == []
    c = r["campaign"]
    assert [ch["channel"] for ch in c["channels"]] == ["PUSH"]
    assert c["controlGroupPercent"] == 25 and c["type"] == "ALWAYS_ON"


# ---------------------------------------------------------------- validation


CREATE = f"mutation($i: CampaignCreateInput!) {{ campaignCreate(input: $i) {{ campaign {{ id }} {ERR} }} }}"
INVALID_INPUTS = {
    "controlGroupPercent 60": ({"controlGroupPercent": 60}, "OUT_OF_RANGE", ["controlGroupPercent"]),
    "controlGroupPercent -1": ({"controlGroupPercent": -1}, "OUT_OF_RANGE", ["controlGroupPercent"]),
    "blank name": ({"name": "   "}, "INVALID", ["name"]),
    "endAt before startAt": ({"startAt": future(10), "endAt": future(5)}, "INVALID_RANGE", ["endAt"]),
    "negative budget": ({"budget": "-5"}, "OUT_OF_RANGE", ["budget"]),
}


@pytest.mark.parametrize("case", sorted(INVALID_INPUTS))
async def test_invalid_campaign_create(org, case):
    changes, code, field = INVALID_INPUTS[case]
    count = "{ campaigns { totalCount } }"
    before = (await body(org, count))["campaigns"]["totalCount"]
    inp = {"name": unique("invalid"), "channels": [{"channel": "EMAIL"}], **changes}
    d = (await body(org, CREATE, {"i": inp}))["campaignCreate"]  # never a top-level error
    assert d["campaign"] is None
    assert [(e["code"], e["field"]) for e in d["userErrors"]] == [(code, field)]
    assert (await body(org, count))["campaigns"]["totalCount"] == before


@pytest.mark.parametrize("case", sorted(INVALID_INPUTS))
async def test_invalid_campaign_update(org, reusable, case):
    changes, code, field = INVALID_INPUTS[case]
    cid = await reusable("DRAFT")
    before = await read(org, cid, SETTINGS)
    r = await update(org, cid, changes)
    assert r["campaign"] is None
    assert [(e["code"], e["field"]) for e in r["userErrors"]] == [(code, field)]
    assert await read(org, cid, SETTINGS) == before


# ---------------------------------------------------------------- clone

CLONE = f"mutation($id: ID!, $n: String) {{ campaignClone(id: $id, name: $n) {{ campaign {{ id }} {ERR} }} }}"
FULL = (f"{SETTINGS} clonedFromId launchedAt "
        "metrics { totals { generated sent cost { amount } credits } } "
        "budget { spent { amount } loggedSpend { amount } spendEntries { totalCount } byChannel { channel cost { amount } } } "
        "sends { totalCount edges { node { recipient { id } } } }")


async def clone(gql: GQL, cid: str, name: str | None = None) -> str:
    d = (await body(gql, CLONE, {"id": cid, "n": name}))["campaignClone"]
    assert d["userErrors"] == [], d
    return d["campaign"]["id"]


async def test_clone_copies_every_setting_without_sends_or_spend(org):
    tag = unique("clone")
    tagged = await make_leads(org, 4, prefix=f"{tag}-t", tags=[tag])
    listed = await make_leads(org, 2, prefix=f"{tag}-l")
    channels = [
        {"channel": "EMAIL", "enabled": True, "unitCost": "0.0125", "creditsPerMessage": 2, "provider": "sendgrid"},
        {"channel": "SMS", "enabled": False, "unitCost": "0.07", "creditsPerMessage": 3, "provider": "twilio"},
        {"channel": "WHATSAPP", "enabled": True, "unitCost": "0.03", "creditsPerMessage": 1, "provider": "meta"},
    ]
    source = await create_campaign(
        org, name=f"Source {tag}", description="every setting", type="ALWAYS_ON", channels=channels,
        budget="123.45", controlGroupPercent=20, goal={"type": "SALE", "key": "purchase"}, endAt=future(60),
        attribution={"viewWindowHours": 48, "goalWindowHours": 240, "goalAfterViewWindowHours": 24})
    sid = source["id"]
    size = (await set_audience(org, sid, filter={"tags": [tag]}, leadIds=[lead["id"] for lead in listed]))["audienceSize"]
    assert size == 6
    assert (await act(org, "launch", sid))["campaign"]["status"] == "LIVE"
    # Sends to two treatment recipients (which leads land in the 20 % control group depends on ids:
    # a control recipient's event is rejected with CONTROL_RECIPIENT and changes nothing).
    accepted = 0
    for i, lead in enumerate(tagged + listed):
        r = await ingest(org, [{"idempotencyKey": f"{tag}-{i}", "externalId": f"{tag}-m{i}", "channel": "EMAIL",
                                "type": "SENT", "occurredAt": at(i), "campaignId": sid, "leadId": lead["id"]}])
        assert r["accepted"] == 1 or r["rejected"][0]["code"] == "CONTROL_RECIPIENT", r
        accepted += r["accepted"]
        if accepted == 2:
            break
    assert accepted == 2
    d = await body(org, f'mutation($c: ID!) {{ spendLog(input: {{ campaignId: $c, amount: "10", category: "print" }}) '
                        f'{{ entry {{ id }} {ERR} }} }}', {"c": sid})
    assert d["spendLog"]["userErrors"] == []
    src = await read(org, sid, FULL)
    assert src["sends"]["totalCount"] == 2 and src["budget"]["spent"]["amount"] == "10.025"

    cid = await clone(org, sid, f"Copy {tag}")
    copy = await read(org, cid, FULL)
    assert copy["status"] == "DRAFT" and copy["statusReason"] is None and copy["launchedAt"] is None
    assert copy["name"] == f"Copy {tag}" and copy["clonedFromId"] == sid
    for setting in ("description", "type", "channels", "controlGroupPercent", "goal", "attribution", "startAt",
                    "endAt", "createdFrom"):
        assert copy[setting] == src[setting], setting
    assert copy["budget"]["allocated"] == src["budget"]["allocated"] == {"amount": "123.45"}
    assert copy["audienceSize"] == src["audienceSize"] == 6
    # No sends, no spend.
    assert copy["sends"] == {"totalCount": 0, "edges": []}
    assert copy["metrics"]["totals"] == {"generated": 0, "sent": 0, "cost": {"amount": "0.00"}, "credits": 0}
    assert copy["budget"]["spent"] == {"amount": "0.00"} and copy["budget"]["loggedSpend"] == {"amount": "0.00"}
    assert copy["budget"]["spendEntries"]["totalCount"] == 0
    assert all(c["cost"]["amount"] == "0.00" for c in copy["budget"]["byChannel"])
    assert copy["reach"] == 0 and copy["controlSize"] == 0
    # The source is untouched.
    assert await read(org, sid, FULL) == src

    # The filter itself was copied (not only its result): a new matching lead joins the clone's audience.
    await make_leads(org, 1, prefix=f"{tag}-late", tags=[tag])
    r = await act(org, "launch", cid)
    assert r["userErrors"] == [] and r["campaign"]["status"] == "LIVE"
    launched = await read(org, cid, "audienceSize reach controlSize")
    assert launched["audienceSize"] == 7
    assert launched["reach"] + launched["controlSize"] == 7


async def test_clone_of_draft_copies_schedule_and_explicit_list(org, pool):
    source = await create_campaign(org, startAt=future(3), endAt=future(9), budget="5")
    await set_audience(org, source["id"], leadIds=[lead["id"] for lead in pool[:3]])
    cid = await clone(org, source["id"])
    src, copy = await read(org, source["id"], SETTINGS), await read(org, cid, SETTINGS)
    for setting in ("startAt", "endAt", "channels", "audienceSize", "type", "controlGroupPercent", "budget"):
        assert copy[setting] == src[setting], setting
    assert copy["audienceSize"] == 3 and copy["status"] == "DRAFT" and copy["id"] != src["id"]
    assert (await act(org, "launch", cid))["campaign"]["status"] == "SCHEDULED"


# ---------------------------------------------------------------- control group


@pytest.fixture(scope="module")
async def crowd(org) -> str:
    """200 leads sharing one tag."""
    tag = unique("crowd")
    await make_leads(org, 200, prefix=tag, tags=[tag])
    return tag


@pytest.mark.parametrize("percent,control", [(10, 20), (33, 66)])
async def test_control_group_split(org, crowd, percent, control):
    campaign = await create_campaign(org, controlGroupPercent=percent)
    await set_audience(org, campaign["id"], filter={"tags": [crowd]})
    r = await act(org, "launch", campaign["id"])
    assert r["userErrors"] == []
    c = await read(org, campaign["id"], "audienceSize controlSize reach controlGroupPercent")
    assert c == {"audienceSize": 200, "controlSize": control, "reach": 200 - control, "controlGroupPercent": percent}
    # Cloned and launched again: a new campaign, the same split sizes.
    cid = await clone(org, campaign["id"])
    assert (await act(org, "launch", cid))["userErrors"] == []
    assert await read(org, cid, "audienceSize controlSize reach controlGroupPercent") == c
    # Dashboard reach counts treatment recipients only.
    d = await body(org, "{ dashboard { totalReach } }")
    assert d["dashboard"]["totalReach"] >= 2 * (200 - control)


# ---------------------------------------------------------------- pause / resume never re-messages


async def test_resume_never_re_messages_anyone(org):
    tag = unique("resume")
    leads = await make_leads(org, 5, prefix=tag)
    campaign = await create_campaign(org)
    cid = campaign["id"]
    await set_audience(org, cid, leadIds=[lead["id"] for lead in leads])
    assert (await act(org, "launch", cid))["campaign"]["reach"] == 5
    first = [{"idempotencyKey": f"{tag}-sent-{i}", "externalId": f"{tag}-m{i}", "channel": "EMAIL", "type": "SENT",
              "occurredAt": at(i), "campaignId": cid, "leadId": leads[i]["id"]} for i in range(3)]
    r = await ingest(org, first)
    assert (r["accepted"], r["duplicates"], r["rejected"]) == (3, 0, [])

    sends_q = "reach status sends(first: 100) { totalCount edges { node { externalId status recipient { id } } } } " \
              "metrics { totals { generated sent delivered } }"
    assert (await act(org, "pause", cid))["campaign"]["status"] == "PAUSED"
    # Messages already queued still go out and are still tracked while paused.
    delivered = [{"idempotencyKey": f"{tag}-dlv-{i}", "externalId": f"{tag}-m{i}", "channel": "EMAIL",
                  "type": "DELIVERED", "occurredAt": at(10 + i)} for i in range(3)]
    r = await ingest(org, delivered)
    assert (r["accepted"], r["rejected"]) == (3, [])
    paused = await read(org, cid, sends_q)
    assert paused["metrics"]["totals"] == {"generated": 3, "sent": 3, "delivered": 3}

    resumed = await act(org, "resume", cid)
    assert resumed["userErrors"] == [] and resumed["campaign"]["status"] == "LIVE"
    after = await read(org, cid, sends_q)
    assert after["reach"] == 5
    assert after["sends"]["totalCount"] == 3
    assert {e["node"]["externalId"] for e in after["sends"]["edges"]} == {f"{tag}-m{i}" for i in range(3)}
    assert sorted(e["node"]["recipient"]["id"] for e in after["sends"]["edges"]) == sorted(
        lead["id"] for lead in leads[:3])
    assert after["metrics"] == paused["metrics"]

    # The same events again (a provider retry after the resume): duplicates only, nothing new.
    r = await ingest(org, first + delivered)
    assert (r["accepted"], r["duplicates"], r["rejected"]) == (0, 6, [])
    assert await read(org, cid, sends_q) == after
