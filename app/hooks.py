"""In-transaction handlers that higher domains register with lower ones.

A lower domain (audience, campaigns, delivery, sender) never imports a higher
one (outreach): it calls `run(name, …)` at the point where its change happens,
inside its transaction, and the handlers registered under that name run there.
Handlers are registered at start-up by `install()` (called by `app.db.init_db`),
which imports the domains listed in DOMAINS; each registers its own handlers.

Hook names and their arguments:
- "sends_changed"(changed, old_states, tz): ingestion moved these sends (SendRow objects).
- "jobs_creating"(campaign_id, lead_ids) -> set of channels: the sender is about to create
  send jobs for these treatment recipients (None: all); returns channels a domain sends itself.
- "leads_changed"(org_id, lead_ids): leads were created or updated.
- "campaign_status"(campaign, old_status): a campaign moved (inside `campaigns.transition`).
- "campaign_busy"(campaign_id) -> bool: a domain still has work for the campaign (it does not complete).
- "lead_filter"(flt) -> Q | None: extra conditions of a leads filter.
"""

from __future__ import annotations

import importlib
from collections import defaultdict
from typing import Any, Callable

DOMAINS = ["app.outreach.hooks"]

_handlers: dict[str, list[Callable]] = defaultdict(list)
_installed = False


def register(name: str, fn: Callable) -> None:
    if fn not in _handlers[name]:
        _handlers[name].append(fn)


def install() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    for module in DOMAINS:
        importlib.import_module(module).register_hooks(register)


async def run(name: str, *args, **kwargs) -> list[Any]:
    """Await every handler of `name`; their results, in registration order."""
    return [await fn(*args, **kwargs) for fn in _handlers.get(name, ())]


def call(name: str, *args, **kwargs) -> list[Any]:
    """Synchronous handlers (filters)."""
    return [fn(*args, **kwargs) for fn in _handlers.get(name, ())]
