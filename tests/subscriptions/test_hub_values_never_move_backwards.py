"""Hub-level races, made deterministic by controlling when a round's compute (or fetch) returns
relative to a newcomer's join (issue 10 items 9 and 10)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from subscriptions.hubs import Registry, SnapshotHub, StreamHub, Sub


class _Bus:
    def on_reconnect(self, _callback) -> None:
        pass


async def _all_allowed(principals):
    return [None] * len(principals)


def _registry() -> Registry:
    return Registry(_Bus(), _all_allowed, min_interval=0)


def _taken(sub: Sub) -> list:
    """What a subscriber has in its mailbox (emptied)."""
    got = []
    while sub.pending():
        if sub.latest_only:
            got.append(sub.items)
            sub.items = None
        else:
            got.append(sub.items.popleft())
    return got


# Item 9: a newcomer that joins while a round computes from pre-change data got the new value
# first, then the round's old one, and could stay on it.
async def test_a_newcomer_never_gets_an_older_value_than_its_first():
    state = {"value": 0}
    gate: asyncio.Event | None = None
    computes = 0

    async def compute():
        nonlocal computes
        computes += 1
        value = state["value"]  # the database as this compute sees it
        if gate is not None:
            await gate.wait()  # ... and the compute is still running
        return value

    hub = SnapshotHub(_registry(), ("campaign", 1), 1, compute, lambda _p, _s: True, lambda _m: True)
    a = Sub("a", latest_only=True)
    hub.subs.add(a)
    assert await hub.current(a) == 0

    # A round starts and reads the database before a change commits ...
    gate = asyncio.Event()
    round_task = asyncio.create_task(hub.round())
    await asyncio.sleep(0)
    assert computes == 2
    state["value"] = 1  # ... the change commits (its bus message is not here yet)
    # ... and a newcomer joins while the round is still computing.
    b = Sub("b", latest_only=True)
    hub.subs.add(b)
    first_task = asyncio.create_task(hub.current(b))
    await asyncio.sleep(0)
    gate.set()
    await round_task
    first = await first_task
    assert first == 1, "the newcomer starts from the database as it is now"
    assert _taken(b) == [], "the round's older value must not follow the newcomer's first"

    # The change's message arrives: the next round brings everyone to the final state.
    gate = None
    await hub.round()
    assert _taken(a) == [1]
    assert _taken(b) == []  # it has that value already
    assert a.version == b.version == hub.version


async def test_newcomers_arriving_together_share_one_compute():
    computes = 0
    gate = asyncio.Event()

    async def compute():
        nonlocal computes
        computes += 1
        await gate.wait()
        return computes

    hub = SnapshotHub(_registry(), ("campaign", 2), 1, compute, lambda _p, _s: True, lambda _m: True)
    running = asyncio.create_task(hub.current(Sub("x", latest_only=True)))  # a compute is under way
    await asyncio.sleep(0)
    subs = [Sub(i, latest_only=True) for i in range(50)]
    firsts = [asyncio.create_task(hub.current(s)) for s in subs]
    await asyncio.sleep(0)
    gate.set()
    await running
    # The one under way started before they arrived: they share the next one, not one each.
    assert set(await asyncio.gather(*firsts)) == {2}
    assert computes == 2
    assert {s.version for s in subs} == {2}


# Item 10: a subscriber that joins in the middle of a multi-page round got only what later rounds
# fetched: pages after the first were offered to the subscribers of page 1 only.
async def test_a_stream_subscriber_joining_mid_round_gets_the_later_pages():
    pages = [[SimpleNamespace(id=i) for i in range(start, start + 3)] for start in (1, 4, 7)]
    late = Sub("late", latest_only=False)
    hub: StreamHub | None = None

    async def fetch(head: int) -> list:
        page = next((p for p in pages if p[0].id > head), [])
        if page is pages[1]:
            hub.subs.add(late)  # joins while the round drains (it saw hub.head at the end of page 1)
        return page

    hub = StreamHub(_registry(), ("sends", 1), 1, fetch, 0, lambda _p, _i: True, lambda _m: True)
    early = Sub("early", latest_only=False)
    hub.subs.add(early)
    await hub.round()
    assert [i.id for i in _taken(early)] == list(range(1, 10))
    # Page 1 it can replay up to the head it saw when joining (`after`); the rest comes live.
    assert [i.id for i in _taken(late)] == list(range(4, 10))
