"""Benchmark 3 — SQL statements per request: `campaigns(first: 50)` vs `first: 5`.

Every relation of a campaign (metrics, budget, channels, owner unit, insights)
must go through per-request DataLoaders, so the number of SQL statements a
request issues does not depend on the page size. Statements are counted by
wrapping the Tortoise asyncpg client's execute methods (bench/harness.py),
for the whole HTTP request (authentication included).
"""

from __future__ import annotations

from collections import Counter

from bench import harness as h

LIST = """query($n:Int!){ campaigns(first:$n){ edges{ node{ id name
  metrics{ totals{ sent cost{ amount } } byChannel{ channel sent } }
  budget{ allocated{ amount } spent{ amount } utilization byChannel{ cost{ amount } } loggedSpend{ amount } }
  channels{ channel } createdFrom{ name } insights{ code } } } } }"""


async def _count(c: h.Client, n: int) -> tuple[list[h.Stmt], int]:
    await c(LIST, {"n": n})  # warm (token lastUsedAt touch, caches)
    with h.recording() as stmts:
        d = await c(LIST, {"n": n})
    return stmts, len(d["campaigns"]["edges"])


async def run(env: h.Env, campaigns: int = 60) -> dict:
    print("\n== queries: SQL statements per request, campaigns(first: 5) vs campaigns(first: 50) ==")
    print(f"  database: {env.database_name}")
    c = await env.organization("queries")
    zones = [await h.zone(c, f"Zone {i}") for i in range(2)]
    centers = [await h.center(c, z, f"Center {i}-{j}") for i, z in enumerate(zones) for j in range(2)]
    lead_ids = await h.leads(c, [{"externalId": f"Q{i}", "name": f"Lead {i}", "email": f"q{i}@bench.test",
                                  "centerId": centers[i % 4]} for i in range(200)])
    leads_of = {cen: [lead for i, lead in enumerate(lead_ids) if i % 4 == k] for k, cen in enumerate(centers)}
    units: list[tuple[str | None, list[str]]] = [(None, lead_ids)]
    units += [(z, leads_of[centers[2 * i]] + leads_of[centers[2 * i + 1]]) for i, z in enumerate(zones)]
    units += [(cen, leads_of[cen]) for cen in centers]
    three = [{"channel": "EMAIL", "unitCost": "0.01"}, {"channel": "SMS", "unitCost": "0.05"},
             {"channel": "PUSH", "unitCost": "0.001"}]
    made: list[tuple[str, list[str]]] = []
    for i in range(campaigns):
        owner, audience = units[i % len(units)]
        cid = await h.campaign(c, f"List {i}", owner=owner, budget=None if i % 5 == 0 else "50",
                               channels=three if i % 3 == 0 else None)
        made.append((cid, audience))
    events = []
    for k, (cid, audience) in enumerate(made):
        if k % 2:
            continue
        await h.launch(c, cid, audience[:20])
        for j, lead in enumerate(audience[:10]):
            kind = ("SENT", "DELIVERED", "FAILED", "OPENED")[j % 4]
            events.append({"idempotencyKey": f"q-{k}-{j}", "externalId": f"q-{k}-{j}", "channel": "EMAIL",
                           "type": kind, "occurredAt": "2026-01-05T10:00:00Z", "campaignId": cid, "leadId": lead})
    r = await h.ingest(c, events)
    assert not r["rejected"], r["rejected"][:3]
    for cid, _ in made[:campaigns:6]:
        await h.spend(c, cid, "12.5", "EMAIL")

    few, n_few = await _count(c, 5)
    many, n_many = await _count(c, 50)
    shapes_few, shapes_many = Counter(h.shape(s.sql) for s in few), Counter(h.shape(s.sql) for s in many)
    equal = len(few) == len(many)
    print(f"  setup: {campaigns} campaigns across the organization, 2 zones and 4 centers; half launched with sends;"
          f" logged spend on {len(made[:campaigns:6])}")
    print(f"  campaigns(first: 5):  {len(few):>3} SQL statements ({n_few} campaigns returned)")
    print(f"  campaigns(first: 50): {len(many):>3} SQL statements ({n_many} campaigns returned)")
    print(f"  equal (no N+1): {'yes' if equal else 'NO'}")
    print(f"  {'@5':>4} {'@50':>4}  statement")
    for s in sorted(set(shapes_few) | set(shapes_many), key=lambda s: (-shapes_many[s], s)):
        flag = "  <-- grows with page size" if shapes_many[s] != shapes_few[s] else ""
        print(f"  {shapes_few[s]:>4} {shapes_many[s]:>4}  {h.label(s)}{flag}")
    return {"first5": len(few), "first50": len(many), "returned": (n_few, n_many), "equal": equal,
            "growing": [h.label(s) for s in shapes_many if shapes_many[s] != shapes_few[s]]}
