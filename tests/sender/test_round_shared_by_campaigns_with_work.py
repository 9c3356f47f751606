"""Issue 12 item 9: one sender round is shared only among campaigns with READY jobs.

1 campaign with 100 messages to queue and 20 LIVE campaigns without (integrator-sent or already fully
queued): one round of 50 queues 50 for the one with work (it used to get 50 // 21 = 2).
Campaign.sendQueue shows how many are waiting and since when.
"""

import base64

from app.sender.service import queue_batch
from tests.helpers import create_campaign, make_leads, mutate
from tests.sender.conftest import drain
from tests.sender.conftest import test_campaigns as campaigns_of_this_test

QUEUE = "query($id:ID!){ campaign(id:$id){ status sendQueue{ ready oldestReadyAt } } }"


def pk(gid: str) -> int:
    return int(base64.b64decode(gid).decode().split(":")[1])


async def _launch(gql, leads, **campaign):
    c = await create_campaign(gql, **campaign)
    d = await gql("mutation($c:ID!,$i:AudienceInput!){ audienceSet(campaignId:$c, input:$i){ userErrors{ code } } }",
                  {"c": c["id"], "i": {"leadIds": [lead["id"] for lead in leads]}})
    assert not d["audienceSet"]["userErrors"]
    r = await mutate(gql, "campaignLaunch", c["id"])
    assert not r["userErrors"], r
    return c


async def test_one_round_queues_the_full_batch_for_the_only_campaign_with_work(tenant):
    gql = tenant.gql
    leads = await make_leads(gql, 100)
    # The idle campaigns' own recipients: the simulated provider may report an unsubscribe for them.
    others = await make_leads(gql, 20)
    idle = []
    for i in range(10):  # LIVE, sent by an integrator: no jobs at all
        idle.append(await _launch(gql, others[i:i + 1], channels=[{"channel": "EMAIL", "unitCost": "0",
                                                             "provider": "integrator"}]))
    for i in range(10, 20):  # LIVE (ALWAYS_ON never completes), every job already queued
        c = await _launch(gql, others[i:i + 1], type="ALWAYS_ON", channels=[{"channel": "EMAIL", "unitCost": "0"}])
        idle.append(c)
    await drain()  # the always-on ones queue their one message
    for c in idle:
        d = (await gql(QUEUE, {"id": c["id"]}))["campaign"]
        assert d["status"] == "LIVE" and d["sendQueue"] == {"ready": 0, "oldestReadyAt": None}

    busy = await _launch(gql, leads, channels=[{"channel": "EMAIL", "unitCost": "0"}])
    d = (await gql(QUEUE, {"id": busy["id"]}))["campaign"]
    assert d["sendQueue"]["ready"] == 100 and d["sendQueue"]["oldestReadyAt"] is not None

    mine = await campaigns_of_this_test()
    assert len(mine) == 21
    r = await queue_batch(50, campaign_ids=mine)
    assert r.queued == 50 and r.campaigns == {pk(busy["id"])}
    d = (await gql(QUEUE, {"id": busy["id"]}))["campaign"]
    assert d["sendQueue"]["ready"] == 50

    # With two campaigns with work, a share one cannot use goes to the other.
    small = await _launch(gql, leads[:3], channels=[{"channel": "EMAIL", "unitCost": "0"}])
    r = await queue_batch(40, campaign_ids=await campaigns_of_this_test())
    assert r.queued == 40
    assert (await gql(QUEUE, {"id": small["id"]}))["campaign"]["sendQueue"]["ready"] == 0
    assert (await gql(QUEUE, {"id": busy["id"]}))["campaign"]["sendQueue"]["ready"] == 50 - 37
