"""In-transaction hooks: how a lower domain causes work in a higher one without importing it.

The domains are ordered (tenancy ← audience ← campaigns ← delivery ← billing, analytics ←
reporting ← sender); a module never imports a domain above its own. When a lower domain's
transaction must also move a higher domain's rows (a send changed → spend, budget alerts and the
analytics rollups; a lead upserted → ALWAYS_ON campaigns grow; recipients added → sender jobs and
attribution), the lower domain declares a `Hook` and calls it inside its transaction; the higher
domain registers its handler at start-up (`app.wiring.wire()`). Handlers run in registration
order, in the caller's transaction, and their results come back as a list.

A hook that nobody registered for is a wiring bug, not a quiet no-op: `run` raises.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

Handler = Callable[..., Awaitable[Any]]


class Hook:
    __slots__ = ("name", "handlers")

    def __init__(self, name: str) -> None:
        self.name = name
        self.handlers: list[Handler] = []

    def register(self, handler: Handler) -> None:
        if handler not in self.handlers:
            self.handlers.append(handler)

    async def run(self, *args: Any, **kwargs: Any) -> list[Any]:
        if not self.handlers:
            raise RuntimeError(f"hook {self.name!r} has no handler: call app.wiring.wire() at start-up")
        return [await handler(*args, **kwargs) for handler in self.handlers]

    def call(self, *args: Any, **kwargs: Any) -> list[Any]:
        """For synchronous handlers (contributions to a query being built, such as a filter)."""
        if not self.handlers:
            raise RuntimeError(f"hook {self.name!r} has no handler: call app.wiring.wire() at start-up")
        return [handler(*args, **kwargs) for handler in self.handlers]
