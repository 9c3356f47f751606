"""Driving the sender in tests: explicit rounds instead of a background worker."""

import pytest

from app.sender.providers import SimulatedProvider
from app.sender.service import complete_finished, dispatch_batch, queue_batch


def perfect_provider() -> dict:
    """Accepts and delivers everything (no refusals, no bounces)."""
    return {"simulated": SimulatedProvider(seed=1, refuse_rate=0, bounce_rate=0)}


_orgs: list[int] = []


async def test_campaigns() -> list[int]:
    """Campaigns of the organizations created since the current test started: other tests'
    live campaigns share the database and must not be sent by this test's rounds."""
    from models.campaigns import Campaign

    return await Campaign.filter(organization_id__gte=_orgs[-1] if _orgs else 0).values_list("id", flat=True)


@pytest.fixture(autouse=True)
async def _mark_first_org():
    """Remember the next organization id: everything this test creates comes after it."""
    from models.tenancy import Organization

    last = await Organization.all().order_by("-id").first()
    _orgs.append((last.id if last else 0) + 1)
    yield
    _orgs.pop()


async def drain(providers: dict | None = None, *, batch: int = 500, max_rounds: int = 500,
                campaign_ids: list[int] | None = None, **dispatch_kw) -> dict:
    """Run queue + dispatch rounds until nothing moves; returns totals. Only the given campaigns
    (default: every campaign of organizations created by the current test)."""
    providers = providers or perfect_provider()
    totals = {"queued": 0, "skipped": 0, "handed": 0, "failed": 0, "retried": 0}
    for _ in range(max_rounds):
        ids = campaign_ids if campaign_ids is not None else await test_campaigns()
        q = await queue_batch(batch, campaign_ids=ids)
        d = await dispatch_batch(providers, batch, campaign_ids=ids, **dispatch_kw)
        for k, v in (("queued", q.queued), ("skipped", q.skipped), ("handed", d.handed), ("failed", d.failed),
                     ("retried", d.retried)):
            totals[k] += v
        if not (q.queued or q.skipped or d.handed or d.failed or d.retried):
            break
    await complete_finished()
    return totals


@pytest.fixture
def sender():
    return drain
