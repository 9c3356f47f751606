"""Small GraphQL helpers shared by tests (all through the public API)."""

from __future__ import annotations

import itertools
import socket
from datetime import datetime, timedelta, timezone

from tests.conftest import GQL

_seq = itertools.count(1)

CAMPAIGN_FIELDS = """
  id name status statusReason type reach audienceSize controlSize controlGroupPercent
  channels { channel enabled unitCost { amount currency } creditsPerMessage provider }
  budget { allocated { amount } spent { amount } remaining { amount } utilization loggedSpend { amount }
           byChannel { channel cost { amount } } }
"""

METRIC_FIELDS = """generated pending sent delivered failed bounced read clicked replied unsubscribed
  cost { amount } credits bounceRate failureRate deliveryRate readRate clickRate"""

def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (for servers a test starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def wait_until_serving(http, path: str = "/healthz", tries: int = 300) -> bool:
    """Poll a server a test started (`http`: an httpx client on its base URL) until `path` answers
    200, 0.1 s apart; False when it never did."""
    import asyncio

    import httpx

    for _ in range(tries):
        try:
            if (await http.get(path)).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    return False


T0 = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)


def at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


async def create_campaign(gql: GQL, **overrides) -> dict:
    inp = {"name": f"Campaign {next(_seq)}",
           "channels": [{"channel": "EMAIL", "unitCost": "0.01"}, {"channel": "SMS", "unitCost": "0.05"}]}
    inp.update(overrides)
    d = await gql(f"mutation($i:CampaignCreateInput!){{ campaignCreate(input:$i){{ campaign{{ {CAMPAIGN_FIELDS} }} "
                  "userErrors{ field message code } } }", {"i": inp})
    assert not d["campaignCreate"]["userErrors"], d
    return d["campaignCreate"]["campaign"]


async def upsert_leads(gql: GQL, leads: list[dict]) -> list[dict]:
    d = await gql("mutation($l:[LeadInput!]!){ leadsUpsert(leads:$l){ leads{ id externalId } userErrors{ field message code } } }",
                  {"l": leads})
    assert not d["leadsUpsert"]["userErrors"], d
    return d["leadsUpsert"]["leads"]


async def make_leads(gql: GQL, n: int, prefix: str | None = None, **extra) -> list[dict]:
    prefix = prefix or f"lead{next(_seq)}"
    return await upsert_leads(gql, [{"externalId": f"{prefix}-{i}", "name": f"Lead {prefix} {i}",
                                     "email": f"{prefix}-{i}@example.test", **extra} for i in range(n)])


async def mutate(gql: GQL, name: str, campaign_id: str) -> dict:
    d = await gql(f"mutation($id:ID!){{ {name}(id:$id){{ campaign{{ id status statusReason reach }} "
                  "userErrors{ field message code } } }", {"id": campaign_id})
    return d[name]


async def launched_campaign(gql: GQL, n_leads: int = 5, lead_extra: dict | None = None,
                            **overrides) -> tuple[dict, list[dict]]:
    campaign = await create_campaign(gql, **overrides)
    leads = await make_leads(gql, n_leads, **(lead_extra or {}))
    d = await gql("mutation($c:ID!,$i:AudienceInput!){ audienceSet(campaignId:$c, input:$i){ userErrors{ code message } } }",
                  {"c": campaign["id"], "i": {"leadIds": [lead["id"] for lead in leads]}})
    assert not d["audienceSet"]["userErrors"], d
    r = await mutate(gql, "campaignLaunch", campaign["id"])
    assert not r["userErrors"], r
    return campaign, leads


async def ingest(gql: GQL, events: list[dict]) -> dict:
    d = await gql("mutation($e:[SendEventInput!]!){ sendEventsIngest(events:$e){ accepted duplicates "
                  "rejected{ index code message } userErrors{ code message } } }", {"e": events})
    return d["sendEventsIngest"]


async def metrics(gql: GQL, campaign_id: str) -> dict:
    d = await gql(f"query($id:ID!){{ campaign(id:$id){{ metrics{{ totals{{ {METRIC_FIELDS} }} "
                  f"byChannel{{ channel {METRIC_FIELDS} }} }} }} }}", {"id": campaign_id})
    return d["campaign"]["metrics"]
