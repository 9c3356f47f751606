"""`pulse demo` builds a lively organization: checked through the public API."""

from app.demo import build_demo
from tests.conftest import GQL, unique

SEND_STATUSES = ("PENDING", "SENT", "DELIVERED", "FAILED", "BOUNCED")

QUERY = """
query($after: String) {
  dashboard { activeCampaigns totalReach totalSpent { amount } totalBudget { amount } }
  campaigns(first: 50, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node {
      status type channels { channel }
      insights { code }
      budget { alerts { threshold } }
      metrics { totals { generated read clicked } }
      pending: sends(filter: {status: PENDING}, first: 0) { totalCount }
      sent: sends(filter: {status: SENT}, first: 0) { totalCount }
      delivered: sends(filter: {status: DELIVERED}, first: 0) { totalCount }
      failed: sends(filter: {status: FAILED}, first: 0) { totalCount }
      bounced: sends(filter: {status: BOUNCED}, first: 0) { totalCount }
    } }
  }
}
"""


async def test_demo_owner_sees_a_lively_organization(app, http):
    lines: list[str] = []
    name = unique("demo")
    token = await build_demo(name=name, n_leads=300, seed=11, echo=lines.append)
    assert token.startswith("cp_") and lines
    gql = GQL(http, token)

    d = await gql(QUERY)
    campaigns = [e["node"] for e in d["campaigns"]["edges"]]
    assert d["campaigns"]["totalCount"] == len(campaigns) >= 10
    statuses = {c["status"] for c in campaigns}
    assert len(statuses) >= 4, statuses
    assert statuses == {"DRAFT", "SCHEDULED", "LIVE", "PAUSED", "COMPLETED", "CANCELLED"}
    assert {c["type"] for c in campaigns} == {"SCHEDULED", "ALWAYS_ON"}
    assert {ch["channel"] for c in campaigns for ch in c["channels"]} == {"EMAIL", "PUSH", "SMS", "WHATSAPP", "SOCIAL"}

    per_status = {s: sum(c[s.lower()]["totalCount"] for c in campaigns) for s in SEND_STATUSES}
    assert all(n > 0 for n in per_status.values()), per_status
    assert sum(c["metrics"]["totals"]["generated"] for c in campaigns) == sum(per_status.values())
    assert sum(c["metrics"]["totals"]["read"] for c in campaigns) > 0
    assert sum(c["metrics"]["totals"]["clicked"] for c in campaigns) > 0

    dash = d["dashboard"]
    assert dash["activeCampaigns"] == sum(c["status"] == "LIVE" for c in campaigns) > 0
    assert dash["totalReach"] > 0 and float(dash["totalSpent"]["amount"]) > 0
    thresholds = sorted(a["threshold"] for c in campaigns for a in c["budget"]["alerts"])
    assert thresholds[-2:] == [80, 90] or {80, 90} <= set(thresholds), thresholds  # the nearly spent campaign
    codes = {i["code"] for c in campaigns for i in c["insights"]}
    assert "BUDGET_NEARLY_SPENT" in codes and "ZERO_SENDS" in codes

    # The same name again gives a second organization rather than an error.
    again = await build_demo(name=name, n_leads=20, seed=11, echo=lines.append)
    viewer = await gql.as_(again)("{ viewer { organization { name } } }")
    assert viewer["viewer"]["organization"]["name"] == f"{name} 2"
