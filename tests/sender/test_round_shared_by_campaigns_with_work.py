"""Issue 12 item 9: one sender round is shared only among campaigns with READY jobs.

1 campaign with 100 messages to queue and 20 LIVE campaigns without (integrator-sent or already fully
queued): one round of 50 queues 50 for the one with work (it used to get 50 // 21 = 2).
Campaign.sendQueue shows how many are waiting and since when.
"""


from app.sender.service import queue_batch
from tests.helpers import make_leads
from tests.sender.conftest import drain
from tests.sender.conftest import test_campaigns as campaigns_of_this_test
from tests.sender.test_sender import launch, pk

QUEUE = "query($id:ID!){ campaign(id:$id){ status sendQueue{ ready oldestReadyAt } } }"


async def test_one_round_queues_the_full_batch_for_the_only_campaign_with_work(tenant):
    gql = tenant.gql
    leads = await make_leads(gql, 100)
    # The idle campaigns' own recipients: the simulated provider may report an unsubscribe for them.
    others = await make_leads(gql, 20)
    idle = []
    for i in range(10):  # LIVE, sent by an integrator: no jobs at all
        idle.append(await launch(gql, others[i:i + 1], channels=[{"channel": "EMAIL", "unitCost": "0",
                                                             "provider": "integrator"}]))
    for i in range(10, 20):  # LIVE (ALWAYS_ON never completes), every job already queued
        c = await launch(gql, others[i:i + 1], type="ALWAYS_ON", channels=[{"channel": "EMAIL", "unitCost": "0"}])
        idle.append(c)
    await drain()  # the always-on ones queue their one message
    for c in idle:
        d = (await gql(QUEUE, {"id": c["id"]}))["campaign"]
        assert d["status"] == "LIVE" and d["sendQueue"] == {"ready": 0, "oldestReadyAt": None}

    busy = await launch(gql, leads, channels=[{"channel": "EMAIL", "unitCost": "0"}])
    d = (await gql(QUEUE, {"id": busy["id"]}))["campaign"]
    assert d["sendQueue"]["ready"] == 100 and d["sendQueue"]["oldestReadyAt"] is not None

    mine = await campaigns_of_this_test()
    assert len(mine) == 21
    r = await queue_batch(50, campaign_ids=mine)
    assert r.queued == 50 and r.campaigns == {pk(busy["id"])}
    d = (await gql(QUEUE, {"id": busy["id"]}))["campaign"]
    assert d["sendQueue"]["ready"] == 50

    # With two campaigns with work, a share one cannot use goes to the other.
    small = await launch(gql, leads[:3], channels=[{"channel": "EMAIL", "unitCost": "0"}])
    r = await queue_batch(40, campaign_ids=await campaigns_of_this_test())
    assert r.queued == 40
    assert (await gql(QUEUE, {"id": small["id"]}))["campaign"]["sendQueue"]["ready"] == 0
    assert (await gql(QUEUE, {"id": busy["id"]}))["campaign"]["sendQueue"]["ready"] == 50 - 37
