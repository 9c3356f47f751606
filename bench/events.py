"""Realistic `sendEventsIngest` batches.

A stream produces batches of N events (default 1,000) shaped like a provider
webhook feed once it is in steady state:

  40 %  SENT       for brand-new sends (the event names campaign and lead)
  25 %  DELIVERED  for sends created one batch earlier
  15 %  OPENED     for sends created two batches earlier (already delivered)
  10 %  CLICKED    for sends created three batches earlier (already opened)
  10 %  exact repeats of events of the previous batch (at-least-once delivery:
        they must come back as `duplicates`)

Until a stream has three batches of history the missing shares are filled
with new sends, so run a few warm-up batches before timing.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone


def iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


@dataclass
class Batch:
    events: list[dict]
    expected_duplicates: int


@dataclass
class EventStream:
    tag: str
    targets: list[tuple[str, str]]  # (campaign global id, lead global id)
    size: int = 1000
    channels: tuple[str, ...] = ("EMAIL", "SMS")
    start: datetime = field(default_factory=lambda: datetime.now(timezone.utc) - timedelta(days=2))
    seed: int = 7

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.n = 0
        self.seq = 0
        self.created: list[list[tuple[str, str]]] = []  # per batch: (externalId, channel) of new sends
        self.previous: list[dict] = []

    def _event(self, kind: str, ext: str, channel: str, t: datetime, **extra) -> dict:
        self.seq += 1
        return {"idempotencyKey": f"{self.tag}-k{self.seq}", "externalId": ext, "channel": channel, "type": kind,
                "occurredAt": iso(t), **extra}

    def next_batch(self) -> Batch:
        i, size = self.n, self.size
        t = self.start + timedelta(minutes=5 * i)
        plan = [("DELIVERED", 1, int(size * 0.25)), ("OPENED", 2, int(size * 0.15)), ("CLICKED", 3, int(size * 0.10))]
        events: list[dict] = []
        for kind, back, count in plan:
            if len(self.created) >= back:
                for ext, channel in self.created[-back][:count]:
                    events.append(self._event(kind, ext, channel, t + timedelta(seconds=back)))
        dups = self.rng.sample(self.previous, min(int(size * 0.10), len(self.previous))) if self.previous else []
        new: list[tuple[str, str]] = []
        for j in range(size - len(events) - len(dups)):
            campaign, lead = self.targets[(i * size + j) % len(self.targets)]
            channel = self.channels[j % len(self.channels)]
            ext = f"{self.tag}-b{i}-s{j}"
            new.append((ext, channel))
            events.append(self._event("SENT", ext, channel, t, campaignId=campaign, leadId=lead))
        self.rng.shuffle(new)  # which of them get delivered/opened/clicked later
        self.created.append(new)
        fresh = list(events)
        events.extend(dict(e) for e in dups)
        self.rng.shuffle(events)
        self.previous = fresh
        self.n += 1
        return Batch(events, len(dups))
