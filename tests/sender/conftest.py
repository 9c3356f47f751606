"""Driving the sender in tests: explicit rounds instead of a background worker."""

import pytest

from app.services.providers import SimulatedProvider
from app.services.sender import complete_finished, dispatch_batch, queue_batch


def perfect_provider() -> dict:
    """Accepts and delivers everything (no refusals, no bounces)."""
    return {"simulated": SimulatedProvider(seed=1, refuse_rate=0, bounce_rate=0)}


async def drain(providers: dict | None = None, *, batch: int = 500, max_rounds: int = 500, **dispatch_kw) -> dict:
    """Run queue + dispatch rounds until nothing moves; returns totals."""
    providers = providers or perfect_provider()
    totals = {"queued": 0, "skipped": 0, "handed": 0, "failed": 0, "retried": 0}
    for _ in range(max_rounds):
        q = await queue_batch(batch)
        d = await dispatch_batch(providers, batch, **dispatch_kw)
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
