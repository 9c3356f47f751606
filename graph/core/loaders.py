"""Per-request DataLoaders: a GraphQL request costs a bounded number of queries."""

from __future__ import annotations

import asyncio
from collections import defaultdict

from strawberry.dataloader import DataLoader as _StrawberryDataLoader

from app.billing import budget as budget_service
from app.delivery.sends import send_counts, send_pages
from app.reporting import kpis
from models.budgets import BudgetAlert
from models.campaigns import Campaign, CampaignChannel
from models.leads import Lead
from models.sends import SendEvent
from models.tenancy import Center, Organization, User, Zone


class DataLoader(_StrawberryDataLoader):
    """A loader whose shared futures survive the cancellation of one of their awaiters.

    graphql-core cancels the sibling resolvers of a field that fails (a bad nested argument);
    a cancelled resolver awaiting a loader's future directly would cancel that future, which is
    shared with (cached for) every other resolver of the request: they would then get
    CancelledError and the whole request a 500. Each awaiter gets its own shield."""

    def load(self, key):
        return asyncio.shield(super().load(key))

    def load_many(self, keys):
        # One shield around the batch (not one per key): the shared futures are protected alike.
        return asyncio.shield(asyncio.gather(*(_StrawberryDataLoader.load(self, key) for key in keys)))


def _by_id(model):
    async def load(ids: list[int]):
        rows = {r.id: r for r in await model.filter(id__in=list(set(ids)))}
        return [rows.get(i) for i in ids]
    return load


def _grouped(model, key: str, order: str = "id"):
    async def load(ids: list[int]):
        groups = defaultdict(list)
        for r in await model.filter(**{f"{key}__in": list(set(ids))}).order_by(order):
            groups[getattr(r, key)].append(r)
        return [groups.get(i, []) for i in ids]
    return load


async def _metrics(ids: list[int]):
    found = await kpis.metrics_for(list(set(ids)))
    return [found[i] for i in ids]


async def _logged(ids: list[int]):
    found = await budget_service.logged_spend_by_campaign(list(set(ids)))
    return [found.get(i, 0) for i in ids]


async def _send_queue(ids: list[int]):
    from app.sender.service import ready_queues

    found = await ready_queues(ids)
    return [found.get(i, (0, None)) for i in ids]


async def _lead_totals(org_ids: list[int]):
    totals = await kpis.lead_totals(sorted(set(org_ids)))
    return [totals for _ in org_ids]


async def _send_pages(keys: list[tuple]):
    """Keys (campaign id, limit, before id, channel, status, recipient, row attributes or None): one
    batch per distinct (limit, before id, filter), two statements each (app/delivery/sends.py) —
    its rows partial rows of the union of the keys' attributes (full rows if one key asks for them),
    so that differently shaped selections of one request cost no more statements than one."""
    groups: dict[tuple, list[tuple]] = defaultdict(list)
    for key in keys:
        groups[key[1:6]].append(key)
    found = {}
    for rest, batch in groups.items():
        wanted = [key[6] for key in batch]
        names = None if None in wanted else tuple(dict.fromkeys(n for each in wanted for n in each))
        pages = await send_pages(sorted({key[0] for key in batch}), *rest, names=names)
        for key in batch:
            found[key] = pages.get(key[0], [])
    return [found[k] for k in keys]


async def _send_counts(keys: list[tuple]):
    """Keys (campaign id, channel, status, recipient): one statement per distinct filter."""
    groups: dict[tuple, list[int]] = defaultdict(list)
    for key in keys:
        groups[key[1:]].append(key[0])
    found = {}
    for rest, ids in groups.items():
        counts = await send_counts(sorted(set(ids)), *rest)
        for i in ids:
            found[(i, *rest)] = counts.get(i, 0)
    return [found[k] for k in keys]


_LOADERS = {
    "organization": lambda: _by_id(Organization),
    "zone": lambda: _by_id(Zone),
    "center": lambda: _by_id(Center),
    "lead": lambda: _by_id(Lead),
    "user": lambda: _by_id(User),
    "campaign": lambda: _by_id(Campaign),
    "channels": lambda: _grouped(CampaignChannel, "campaign_id"),
    "metrics": lambda: _metrics,
    "logged_spend": lambda: _logged,
    "alerts": lambda: _grouped(BudgetAlert, "campaign_id", "threshold"),
    "send_events": lambda: _grouped(SendEvent, "send_id", "occurred_at"),
    "lead_totals": lambda: _lead_totals,
    "send_pages": lambda: _send_pages,
    "send_counts": lambda: _send_counts,
    "send_queue": lambda: _send_queue,
}


class Loaders:
    """Created per request (see Context.loaders). Each DataLoader is made when the request first
    uses it: a request reading one campaign builds one or two, not fifteen."""

    def __getattr__(self, name: str) -> DataLoader:
        try:
            factory = _LOADERS[name]
        except KeyError:
            raise AttributeError(name) from None
        loader = DataLoader(factory())
        setattr(self, name, loader)  # found by normal attribute lookup from now on
        return loader


def loaders(info) -> Loaders:
    context = info.context
    if "all" not in context.loaders:
        context.loaders["all"] = Loaders()
    return context.loaders["all"]
