"""Issue 10 item 5: a dispatch claim is fenced by a claim token. A worker whose lease expired while its
provider was slow neither renews, nor hands off, nor records over messages another worker claimed since.
Deterministic, at the level of the sender's service (the race needs two workers in one exact order)."""

import asyncio
from datetime import datetime, timedelta, timezone

import app.sender.service as sender_service
from app.sender.providers import Outcome, Provider, SimulatedProvider
from app.sender.service import dispatch_batch, queue_batch
from models.enums import SendStatus
from models.sends import Send
from tests.helpers import make_leads
from tests.sender import conftest as sender_rounds
from tests.sender.test_sender import launch


class SlowRefusingProvider(Provider):
    """Worker A's provider: the first hand-off blocks until released (A's lease expires meanwhile),
    then every message is refused for good — an outcome that must not apply once A lost the claim."""

    def __init__(self):
        self.handed: list[int] = []
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()

    async def send(self, messages):
        self.handed += [m.send_id for m in messages]
        self.entered.set()
        await self.gate.wait()
        return [Outcome(False, retry=False, reason="refused by a late worker") for _ in messages]


class CountingProvider(SimulatedProvider):
    def __init__(self):
        super().__init__(seed=1, refuse_rate=0, bounce_rate=0)
        self.handed: list[int] = []

    async def send(self, messages):
        self.handed += [m.send_id for m in messages]
        return await super().send(messages)


async def test_a_worker_whose_lease_expired_neither_renews_nor_hands_off_nor_records(tenant, monkeypatch):
    monkeypatch.setattr(sender_service, "DISPATCH_CHUNK", 1)  # two messages, two chunks
    leads = await make_leads(tenant.gql, 2)
    await launch(tenant.gql, leads, channels=[{"channel": "EMAIL", "unitCost": "0.01"}])
    ids = await sender_rounds.test_campaigns()
    assert (await queue_batch(100, campaign_ids=ids)).queued == 2
    sends = sorted(await Send.filter(campaign_id__in=ids).values_list("id", flat=True))

    slow, fast = SlowRefusingProvider(), CountingProvider()
    # Worker A claims both messages (lease 60 s) and blocks handing the first chunk to a slow provider.
    worker_a = asyncio.create_task(dispatch_batch({"simulated": slow}, 100, lease_s=60, campaign_ids=ids))
    await asyncio.wait_for(slow.entered.wait(), 10)
    # Either message may come first (messages queued in one round have no order among them).
    assert len(slow.handed) == 1 and slow.handed[0] in sends
    first = slow.handed[0]
    # A's lease has expired (as seen by worker B, 5 minutes later): B claims both and sends them.
    later = datetime.now(timezone.utc) + timedelta(minutes=5)
    b = await dispatch_batch({"simulated": fast}, 100, lease_s=60, campaign_ids=ids, now=later)
    assert b.handed == 2 and sorted(fast.handed) == sends
    # A wakes up: its refusal of chunk 1 must not apply, and it must not renew or hand chunk 2.
    slow.gate.set()
    a = await asyncio.wait_for(worker_a, 10)
    assert slow.handed == [first], "a worker that lost its claim handed a message again"
    assert (a.handed, a.failed, a.retried) == (0, 0, 0)
    rows = await Send.filter(id__in=sends).values("id", "status", "dispatch_after", "claim_token")
    for row in rows:
        assert row["status"] != SendStatus.FAILED, row
        assert row["status"] != SendStatus.PENDING, row
        assert row["dispatch_after"] is None and row["claim_token"] is None, row
    # Nothing is left to hand off, however late.
    again = await dispatch_batch({"simulated": fast}, 100, campaign_ids=ids, now=later + timedelta(hours=1))
    assert (again.handed, again.failed, again.retried) == (0, 0, 0)
    assert sorted(fast.handed) == sends
