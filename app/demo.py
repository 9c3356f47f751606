"""`pulse demo`: a realistic demo organization, built through the domain services.

The demo is a French retail chain ("Demo Retail", Europe/Paris, EUR) with
3 zones, 8 centers, `n_leads` leads and 11 campaigns that together show every
channel, campaign type and status, sends in every delivery status with
engagement spread over the last two weeks, logged spend with a reversal, and
budgets that raise alerts and insights.

Everything goes through the same services the API uses (organization, units,
members, leads, campaigns, audience, state machine, send-event ingestion,
spend). The only direct writes backdate a campaign's own lifecycle timestamps
(created/launched/live since/ended) so that a campaign that "started 9 days
ago" looks like it did; nothing that counters or budgets depend on.

The content is a pure function of `seed`; times are relative to the moment the
demo runs (so the figures of "today" and "last 7 days" are alive).
"""

from __future__ import annotations

import math
import random
import time
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Callable

from app.billing import budget as budget_service
from app.campaigns import service as campaign_service
from app.delivery import ingest as ingest_service
from app.audience import leads as lead_service
from app.tenancy import service as tenancy
from app.tenancy.access import Principal, Unit, principal_for_user
from app.billing.credits import top_up
from app.billing.budget import SpendData
from app.campaigns.service import CampaignData, ChannelData
from app.delivery.ingest import SendEventData
from app.audience.leads import LeadData, LeadFilterData
from app.delivery.sendstate import Ev, replay
from models.campaigns import Campaign, Recipient
from models.credits import SendJob
from models.enums import (BounceType, CampaignStatus, CampaignType, Channel, GoalType, RecipientGroup, Role,
                          SendEventType as E, UnitKind)
from models.tenancy import Organization

EVENTS_PER_CALL = 5000
# Share of a LIVE campaign's recipients left to the live sender (the worker of `make run`).
LIVE_SHARE = 0.35
CURRENCY = "EUR"
TIMEZONE = "Europe/Paris"

ZONES: dict[str, list[tuple[str, int]]] = {  # zone -> [(center, weight of leads)]
    "Île-de-France": [("Paris Opéra", 18), ("Paris La Défense", 14), ("Versailles", 9)],
    "Auvergne-Rhône-Alpes": [("Lyon Part-Dieu", 14), ("Lyon Confluence", 10), ("Grenoble", 8)],
    "Provence-Alpes-Côte d'Azur": [("Marseille Vieux-Port", 13), ("Nice Masséna", 9)],
}
NO_CENTER_WEIGHT = 5  # leads known to the organization but attached to no center

FIRST_NAMES = (
    "Camille Léa Manon Chloé Emma Inès Sarah Jade Louise Alice Lina Julie Clara Zoé Anaïs Mathilde Eva Nina Lucie "
    "Juliette Romane Margaux Élodie Aurélie Sofia Amira Yasmine Fatou Mei Hanna Lucas Hugo Louis Gabriel Arthur "
    "Jules Adam Raphaël Nathan Thomas Théo Paul Maxime Antoine Nicolas Julien Mathis Enzo Karim Mehdi Youssef "
    "Moussa Kevin Pierre Baptiste Quentin Olivier David Samuel Victor Malik Diego Luca Marco Ivan"
).split()
LAST_NAMES = (
    "Martin Bernard Dubois Thomas Robert Richard Petit Durand Leroy Moreau Simon Laurent Lefebvre Michel Garcia "
    "David Bertrand Roux Vincent Fournier Morel Girard André Lefèvre Mercier Dupont Lambert Bonnet François "
    "Martinez Legrand Garnier Faure Rousseau Blanc Guérin Muller Henry Roussel Nicolas Perrin Morin Mathieu "
    "Clément Gauthier Dumont Lopez Fontaine Chevalier Robin Masson Sanchez Benali Haddad Nguyen Diallo Traoré "
    "Kowalski Rossi Silva Ferreira Cohen Meyer Schmitt"
).split()
EMAIL_DOMAINS = ("example.com", "example.net", "example.org", "mail.example", "inbox.example")
TAGS_RANDOM = (("newsletter", 0.55), ("family", 0.22), ("student", 0.12), ("events", 0.18), ("loyalty-silver", 0.2),
               ("black-friday-2025", 0.25))
FAILURE_REASONS = {
    Channel.EMAIL: ["Mailbox unavailable", "Invalid recipient address", "Rejected by provider: spam content"],
    Channel.SMS: ["Invalid destination number", "Carrier rejected the message", "Number not reachable"],
    Channel.PUSH: ["Device token expired", "App uninstalled", "Invalid registration token"],
    Channel.WHATSAPP: ["Recipient is not on WhatsApp", "Template not approved", "Re-engagement window closed"],
    Channel.SOCIAL: ["Profile not reachable", "Post rejected by platform policy"],
}
BOUNCE_REASONS = {BounceType.HARD: ["550 5.1.1 user unknown", "550 5.1.2 domain not found"],
                  BounceType.SOFT: ["452 4.2.2 mailbox full", "421 4.7.0 try again later"]}
PROVIDERS = {Channel.EMAIL: ("sendgrid", "sg"), Channel.SMS: ("twilio", "twl"), Channel.PUSH: ("firebase", "fcm"),
             Channel.WHATSAPP: ("whatsapp-cloud", "wa"), Channel.SOCIAL: ("linkedin", "li")}
# Default channel prices: (unit cost, credits per message).
PRICES = {Channel.EMAIL: ("0.0025", 1), Channel.SMS: ("0.065", 3), Channel.PUSH: ("0.001", 0),
          Channel.WHATSAPP: ("0.045", 2), Channel.SOCIAL: ("0.30", 5)}


@dataclass
class Profile:
    """What happens to a channel's messages (probabilities)."""

    fail: float
    bounce: float = 0.0
    sent_only: float = 0.0  # accepted, no delivery receipt (yet)
    read: float = 0.0  # of delivered
    click: float = 0.0  # of read
    reply: float = 0.0  # of delivered
    unsub: float = 0.0  # of delivered
    machine_open: float = 0.0  # of delivered (mail privacy proxies): stored, not counted
    fail_after_sent: float = 0.2  # share of failures that happen after the provider accepted
    long_message: float = 0.0  # share of sent messages reported with a higher final cost (multi-part SMS)


PROFILES = {
    Channel.EMAIL: Profile(fail=0.012, bounce=0.035, sent_only=0.01, read=0.38, click=0.24, reply=0.012, unsub=0.006,
                           machine_open=0.15),
    Channel.SMS: Profile(fail=0.03, sent_only=0.08, click=0.07, reply=0.02, unsub=0.006, long_message=0.2),
    Channel.PUSH: Profile(fail=0.04, sent_only=0.06, read=0.14, click=0.45),
    Channel.WHATSAPP: Profile(fail=0.025, sent_only=0.03, read=0.72, click=0.18, reply=0.07, unsub=0.004),
    Channel.SOCIAL: Profile(fail=0.01, sent_only=0.25, read=0.5, click=0.14, reply=0.09),
}


@dataclass
class Plan:
    key: str
    name: str
    description: str
    owner: tuple[str, str | None]  # ("org", None) | ("zone", name) | ("center", name)
    type: CampaignType
    channels: list[Channel]
    audience: LeadFilterData
    final: CampaignStatus
    start_days: float | None = None  # days from now (negative: in the past)
    end_days: float | None = None
    silent: tuple[Channel, ...] = ()  # enabled, but nothing sent (ZERO_SENDS)
    control: int = 0
    goal: tuple[GoalType, str | None] | None = None
    budget_use: float | None = None  # target utilization of a budget sized from the planned message costs
    min_budget: int = 0  # the budget is at least this (agency and print costs dominate small audiences)
    fixed_budget: str | None = None
    pending: float = 0.0  # share of sends still queued (recent)
    overrides: dict[Channel, dict] = field(default_factory=dict)
    blast: bool = True  # SCHEDULED: most messages go out right after the start
    manager: bool = False  # created by the zone manager rather than the owner
    reversal: bool = False  # log a wrong spend entry and reverse it
    # filled while building
    campaign_id: int = 0
    planned_cost: int = 0


def _plans() -> list[Plan]:
    C = Channel
    return [
        Plan("bf", "Black Friday 2026 — Early Access",
             "Early access to Black Friday deals for newsletter subscribers, VIPs and app users, two days before "
             "everyone else.", ("org", None), CampaignType.SCHEDULED, [C.EMAIL, C.SMS, C.PUSH],
             LeadFilterData(tags=["newsletter", "vip", "app-user"]), CampaignStatus.LIVE, -5, 4, control=10,
             goal=(GoalType.SALE, "order"), budget_use=0.92, min_budget=2000, pending=0.03),
        Plan("welcome", "Welcome Journey", "Always-on welcome series for new customers: a welcome email on day 0 "
             "and an app nudge for app users.", ("org", None), CampaignType.ALWAYS_ON, [C.EMAIL, C.PUSH],
             LeadFilterData(tags=["new-customer"]), CampaignStatus.LIVE, -21, None,
             goal=(GoalType.LEAD, "account-activated"), budget_use=0.38, min_budget=500, pending=0.02, blast=False,
             reversal=True),
        Plan("winback", "Win-back: we miss you", "15 % off for customers who have not visited an Île-de-France "
             "store for six months.", ("zone", "Île-de-France"), CampaignType.SCHEDULED, [C.EMAIL, C.WHATSAPP],
             LeadFilterData(tags=["lapsed"]), CampaignStatus.PAUSED, -9, 12, control=15,
             goal=(GoalType.SALE, "order"), budget_use=0.84, min_budget=600, pending=0.01, manager=True),
        Plan("opening", "Grand Opening — Lyon Confluence", "Invitations to the opening weekend of the new Lyon "
             "Confluence store, with a social post for the local community.", ("center", "Lyon Confluence"),
             CampaignType.SCHEDULED, [C.SMS, C.WHATSAPP, C.SOCIAL], LeadFilterData(), CampaignStatus.COMPLETED,
             -14, -7, goal=(GoalType.PAGE_VIEWS, "store-page"), budget_use=0.7, min_budget=800,
             overrides={C.SMS: {"fail": 0.18, "fail_after_sent": 0.0}}),
        Plan("gifts", "Holiday Gift Guide", "The 2026 gift guide, by budget and by age.", ("org", None),
             CampaignType.SCHEDULED, [C.EMAIL, C.SOCIAL], LeadFilterData(tags=["family", "newsletter"]),
             CampaignStatus.SCHEDULED, 4, 25, goal=(GoalType.SALE, "order"), fixed_budget="1500"),
        Plan("gold", "Loyalty Gold — Double Points Week", "Gold members of the Provence stores earn double points "
             "all week; reminders by push and SMS.", ("zone", "Provence-Alpes-Côte d'Azur"), CampaignType.ALWAYS_ON,
             [C.PUSH, C.SMS, C.WHATSAPP], LeadFilterData(tags=["loyalty-gold"]), CampaignStatus.LIVE, -4, 3,
             silent=(C.WHATSAPP,), pending=0.04, blast=False),
        Plan("survey", "Customer Satisfaction Survey — Q4", "Five questions about the last visit.", ("org", None),
             CampaignType.SCHEDULED, [C.EMAIL], LeadFilterData(has_channel=[C.EMAIL]), CampaignStatus.COMPLETED,
             -13, -10, goal=(GoalType.OTHER, "survey-completed"), budget_use=0.3, min_budget=150,
             overrides={C.EMAIL: {"reply": 0.06, "unsub": 0.012}}),
        Plan("b2b", "B2B Partners — LinkedIn Outreach", "Corporate gifting offer for business customers, by "
             "LinkedIn message and email.", ("org", None), CampaignType.SCHEDULED, [C.SOCIAL, C.EMAIL],
             LeadFilterData(tags=["b2b"]), CampaignStatus.LIVE, -8, 20, goal=(GoalType.LEAD, "meeting-booked"),
             budget_use=0.5, min_budget=1200, pending=0.02, blast=False),
        Plan("cyber", "Cyber Monday Teaser", "Teaser for the Cyber Monday online-only deals.", ("org", None),
             CampaignType.SCHEDULED, [C.EMAIL, C.PUSH, C.SMS, C.WHATSAPP], LeadFilterData(tags=["newsletter"]),
             CampaignStatus.DRAFT, 5, 6, control=10, goal=(GoalType.SALE, "order"), fixed_budget="800"),
        Plan("latenight", "Late Night Shopping — Paris Opéra", "Late opening until 23:00 with live music. Cancelled: "
             "the event was postponed.", ("center", "Paris Opéra"), CampaignType.SCHEDULED, [C.SMS, C.PUSH],
             LeadFilterData(), CampaignStatus.CANCELLED, -3, 10, fixed_budget="300"),
    ]


# ---------------------------------------------------------------- helpers


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower().replace(" ", "-")


def _micros_to_decimal(micros: int) -> Decimal:
    return (Decimal(micros) / 1_000_000).quantize(Decimal("0.01"), ROUND_HALF_EVEN)


def _iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M")


async def _free_name(name: str) -> str:
    candidate, n = name, 1
    while await Organization.exists(name=candidate):
        n += 1
        candidate = f"{name} {n}"
    return candidate


@dataclass
class _Lead:
    id: int
    external_id: str
    center: str | None
    channels: set[Channel]


@dataclass
class _Send:
    plan: Plan
    lead: _Lead
    channel: Channel
    events: list[SendEventData]


# ---------------------------------------------------------------- builder


class _Builder:
    def __init__(self, rng: random.Random, echo: Callable[[str], None], now: datetime) -> None:
        self.rng, self.echo, self.now = rng, echo, now
        self.zones: dict[str, Unit] = {}
        self.centers: dict[str, Unit] = {}
        self.leads: list[_Lead] = []

    # ------------------------------------------------------------ leads

    def lead_data(self, n_leads: int) -> list[tuple[LeadData, str | None]]:
        rng = self.rng
        centers = [(c, w) for zone in ZONES.values() for c, w in zone] + [(None, NO_CENTER_WEIGHT)]
        names, weights = [c for c, _ in centers], [w for _, w in centers]
        out = []
        for i in range(1, n_leads + 1):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            center = rng.choices(names, weights)[0]
            local = f"{_ascii(first)}.{_ascii(last)}"
            email = f"{local}{i}@{rng.choice(EMAIL_DOMAINS)}" if rng.random() < 0.9 else None
            phone = f"+336{rng.randrange(10**7, 10**8)}" if rng.random() < 0.78 else None
            whatsapp = (phone if phone and rng.random() < 0.8 else f"+337{rng.randrange(10**7, 10**8)}") \
                if rng.random() < 0.38 else None
            push = f"fcm:{rng.getrandbits(96):024x}" if rng.random() < 0.5 else None
            linkedin = f"https://www.linkedin.com/in/{local.replace('.', '-')}-{i}" if rng.random() < 0.22 else None
            twitter = f"https://twitter.com/{local.replace('.', '_')}{i}" if rng.random() < 0.08 else None
            tags = {t for t, p in TAGS_RANDOM if rng.random() < p}
            if push:
                tags.add("app-user")
            if rng.random() < 0.07:
                tags.add("vip")
            if rng.random() < (0.3 if "vip" in tags else 0.06):
                tags.add("loyalty-gold")
            if rng.random() < 0.16:
                tags.add("lapsed")
            if rng.random() < 0.14:
                tags.add("new-customer")
            if linkedin and rng.random() < 0.6:
                tags.add("b2b")
            out.append((LeadData(
                external_id=f"crm-{i:06d}", name=f"{first} {last}", email=email,
                email_verified=bool(email) and rng.random() < 0.72, phone=phone, whatsapp=whatsapp, push_token=push,
                linkedin_url=linkedin, twitter_url=twitter, tags=sorted(tags),
                center_id=self.centers[center].id if center else None, center_given=center is not None,
            ), center))
        return out

    async def create_leads(self, principal: Principal, n_leads: int) -> None:
        rows = self.lead_data(n_leads)
        for start in range(0, len(rows), lead_service.MAX_LEADS_PER_BATCH):
            chunk = rows[start:start + lead_service.MAX_LEADS_PER_BATCH]
            created = await lead_service.upsert_leads(principal, [d for d, _ in chunk])
            for lead, (data, center) in zip(created, chunk):
                chans = {ch for ch, ok in ((Channel.EMAIL, data.email), (Channel.SMS, data.phone),
                                           (Channel.WHATSAPP, data.whatsapp), (Channel.PUSH, data.push_token),
                                           (Channel.SOCIAL, data.linkedin_url or data.twitter_url)) if ok}
                self.leads.append(_Lead(lead.id, lead.external_id, center, chans))

    # ------------------------------------------------------------ sends

    def simulate(self, plan: Plan, lead: _Lead, channel: Channel, start: datetime, end: datetime) -> _Send:
        """The events a provider would report for one message (some still to come)."""
        rng, now = self.rng, self.now
        prof = PROFILES[channel]
        if channel in plan.overrides:
            prof = Profile(**{**prof.__dict__, **plan.overrides[channel]})
        span = (end - start).total_seconds()
        pending = plan.final in (CampaignStatus.LIVE, CampaignStatus.PAUSED) and rng.random() < plan.pending
        if pending:
            t0 = now - timedelta(minutes=rng.uniform(1, 45))
        elif plan.type == CampaignType.SCHEDULED and plan.blast:
            # A blast right after the start, a tail of late sends.
            offset = rng.expovariate(1 / 5400) if rng.random() < 0.8 else rng.uniform(0, span)
            t0 = start + timedelta(seconds=min(offset, span))
        else:
            t0 = start + timedelta(seconds=rng.uniform(0, span))
        t0 = min(t0, now - timedelta(minutes=2))
        provider_prefix = PROVIDERS[channel][1]
        ext = f"{provider_prefix}-{plan.campaign_id}-{lead.id}"
        events: list[tuple[E, datetime, dict]] = [(E.QUEUED, t0, {})]
        if not pending:
            r = rng.random()
            sent_at = t0 + timedelta(seconds=rng.uniform(1, 40))
            sent_extra = {}
            if prof.long_message and rng.random() < prof.long_message:
                unit, credits = PRICES[channel]
                sent_extra = {"cost": str(Decimal(unit) * 2), "credits": credits * 2}
            if r < prof.fail:
                reason = rng.choice(FAILURE_REASONS[channel])
                if rng.random() < prof.fail_after_sent:
                    events.append((E.SENT, sent_at, sent_extra))
                events.append((E.FAILED, sent_at + timedelta(seconds=rng.uniform(5, 600)), {"reason": reason}))
            elif r < prof.fail + prof.bounce:
                kind = BounceType.HARD if rng.random() < 0.7 else BounceType.SOFT
                events.append((E.SENT, sent_at, sent_extra))
                events.append((E.BOUNCED, sent_at + timedelta(seconds=rng.uniform(5, 900)),
                               {"bounce_type": kind, "reason": rng.choice(BOUNCE_REASONS[kind])}))
            elif r < prof.fail + prof.bounce + prof.sent_only:
                events.append((E.SENT, sent_at, sent_extra))
            else:
                delivered = sent_at + timedelta(seconds=rng.uniform(1, 180))
                events.append((E.SENT, sent_at, sent_extra))
                events.append((E.DELIVERED, delivered, {}))
                if rng.random() < prof.machine_open:
                    events.append((E.OPENED, delivered + timedelta(seconds=rng.uniform(5, 120)), {"machine": True,
                                                                                                  "key": "mpp"}))
                opened = None
                if rng.random() < prof.read:
                    opened = delivered + timedelta(seconds=rng.expovariate(1 / (6 * 3600)))
                    events.append((E.OPENED, opened, {}))
                if rng.random() < (prof.click if opened or not prof.read else 0):
                    base = opened or delivered + timedelta(seconds=rng.expovariate(1 / 3600))
                    events.append((E.CLICKED, base + timedelta(seconds=rng.uniform(3, 1800)),
                                   {"url": f"https://shop.example/c/{plan.key}?utm_source={channel.value.lower()}"}))
                if rng.random() < prof.reply:
                    events.append((E.REPLIED, (opened or delivered) + timedelta(seconds=rng.uniform(60, 36 * 3600)), {}))
                if rng.random() < prof.unsub:
                    events.append((E.UNSUBSCRIBED, (opened or delivered) + timedelta(seconds=rng.uniform(10, 600)), {}))
        data = []
        for etype, at, extra in events:
            if at > now:
                continue  # has not happened yet
            key = extra.pop("key", etype.value.lower())
            data.append(SendEventData(
                idempotency_key=f"{ext}:{key}", external_id=ext, channel=channel, type=etype, occurred_at=at,
                campaign_id=plan.campaign_id, lead_id=lead.id, **extra))
        return _Send(plan, lead, channel, data)

    @staticmethod
    def cost_of(send: _Send, unit_micros: int, unit_credits: int) -> int:
        evs = [Ev(d.type, d.occurred_at, d.idempotency_key,
                  int(Decimal(d.cost) * 1_000_000) if d.cost is not None else None, d.credits, d.reason,
                  d.bounce_type, bool(d.machine)) for d in send.events]
        return replay(evs, unit_cost_micros=unit_micros, unit_credits=unit_credits,
                      created_at=send.events[0].occurred_at)["cost_micros"]


def _nice_budget(cost_micros: int, use: float) -> Decimal:
    """A round budget of which the planned message costs are about 60 % of `use`."""
    raw = cost_micros / 1_000_000 / (use * 0.6) if cost_micros else 100
    step = 10 if raw < 200 else 50 if raw < 2000 else 100
    return Decimal(max(step, math.ceil(raw / step) * step))


async def build_demo(name: str, n_leads: int, seed: int, echo) -> str:
    """Create the demo organization; returns the owner's token."""
    t_start = time.perf_counter()
    rng = random.Random(seed)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    b = _Builder(rng, echo, now)

    # 1. Organization, owner, zones, centers, members.
    org_name = await _free_name(name)
    slug = _ascii(org_name).replace("'", "") or "demo"
    issued = await tenancy.create_organization(org_name, f"owner@{slug}.example", CURRENCY, TIMEZONE)
    org_id = issued.user.organization_id
    owner = await principal_for_user(issued.user, issued.record.id)
    for zone_name, centers in ZONES.items():
        zone = await tenancy.zone_create(owner, zone_name)
        b.zones[zone_name] = Unit(UnitKind.ZONE, org_id, zone.id, zone.id, zone_name)
        for center_name, _ in centers:
            center = await tenancy.center_create(owner, zone.id, center_name)
            b.centers[center_name] = Unit(UnitKind.CENTER, org_id, center.id, zone.id, center_name)
    manager_token = await tenancy.create_token(org_id, f"camille.martin@{slug}.example", Role.MANAGER,
                                               b.zones["Île-de-France"], name="demo", user_name="Camille Martin")
    await tenancy.create_token(org_id, f"analyst@{slug}.example", Role.ANALYST, name="demo", user_name="Data team")
    esp_token = await tenancy.create_token(org_id, f"esp-gateway@{slug}.example", Role.INTEGRATION,
                                           name="sending gateway", user_name="Sending gateway")
    manager = await principal_for_user(manager_token.user, manager_token.record.id)
    gateway = await principal_for_user(esp_token.user, esp_token.record.id)
    # Credits for the live sender: generous wallets, except a small WhatsApp one.
    from models.enums import CreditSource

    for source, amount in ((CreditSource.EMAIL, 50_000), (CreditSource.SMS, 30_000), (CreditSource.PUSH, 10_000),
                           (CreditSource.WHATSAPP, 120), (CreditSource.ALWAYS_ON, 20_000)):
        await top_up(owner, source, amount, "demo: initial credits")
    echo(f"organization {org_name!r} (id {org_id}, {CURRENCY}, {TIMEZONE}): "
         f"{len(ZONES)} zones, {len(b.centers)} centers, 4 members")

    # 2. Leads.
    await b.create_leads(owner, n_leads)
    echo(f"{len(b.leads)} leads")

    # 3. Campaigns: create, set audience, launch (send planning needs the recipients).
    plans = _plans()
    sends: list[_Send] = []
    for plan in plans:
        principal = manager if plan.manager else owner
        kind, ref = plan.owner
        unit = None if kind == "org" else (b.zones[ref] if kind == "zone" else b.centers[ref])
        start = now + timedelta(days=plan.start_days) if plan.start_days is not None else None
        end = now + timedelta(days=plan.end_days) if plan.end_days is not None else None
        data = CampaignData(
            name=plan.name, description=plan.description, type=plan.type,
            owner_unit=(unit.kind, unit.id) if unit else None,
            # the live sender hands messages to the built-in simulated provider
            channels=[ChannelData(ch, True, PRICES[ch][0], PRICES[ch][1], "simulated") for ch in plan.channels],
            budget=None, control_group_percent=plan.control,
            goal_type=plan.goal[0] if plan.goal else None, goal_key=plan.goal[1] if plan.goal else None,
            start_at=start if plan.final in (CampaignStatus.SCHEDULED, CampaignStatus.DRAFT) else start,
            # a campaign that already ended gets its end date once its messages are in (launch needs a future end)
            end_at=end if end is None or end > now else None,
        )
        campaign = await campaign_service.create_campaign(principal, data)
        plan.campaign_id = campaign.id
        campaign = await campaign_service.set_audience(principal, campaign.id, None, None, plan.audience)
        if campaign.audience_size == 0:  # a tiny demo: no lead has the tags; take the whole owner unit
            campaign = await campaign_service.set_audience(principal, campaign.id, None, None, LeadFilterData())
        if plan.final == CampaignStatus.DRAFT:
            continue
        if campaign.audience_size == 0 and plan.type == CampaignType.SCHEDULED:
            echo(f"note: {plan.name!r} stays a draft: its owner unit has no leads")
            plan.final = CampaignStatus.DRAFT
            continue
        await campaign_service.transition(principal, campaign.id, "launch")
        if plan.final == CampaignStatus.SCHEDULED:
            continue
        # Simulate the messages of the treatment recipients.
        by_id = {lead.id: lead for lead in b.leads}
        treatment = await Recipient.filter(campaign_id=campaign.id, group=RecipientGroup.TREATMENT) \
            .order_by("lead_id").values_list("lead_id", flat=True)
        window_end = min(end, now) if end else now
        if plan.final == CampaignStatus.CANCELLED:
            window_end = min(window_end, start + timedelta(hours=20))
        for lead_id in treatment:
            lead = by_id[lead_id]
            if plan.final == CampaignStatus.LIVE and rng.random() < LIVE_SHARE:
                continue  # left for the live sender: `make run` keeps this campaign sending
            for ch in plan.channels:
                if ch in plan.silent or ch not in lead.channels:
                    continue
                send = b.simulate(plan, lead, ch, start, window_end)
                if plan.final == CampaignStatus.CANCELLED and rng.random() < 0.55:
                    continue  # cancelled before these went out
                if send.events:
                    sends.append(send)
                    plan.planned_cost += b.cost_of(send, int(Decimal(PRICES[ch][0]) * 1_000_000), PRICES[ch][1])
    echo(f"{len(plans)} campaigns created, {sum(p.final != CampaignStatus.DRAFT for p in plans)} launched")

    # Budgets: sized from the planned message costs, then set (budget may change after launch).
    for plan in plans:
        budget = Decimal(plan.fixed_budget) if plan.fixed_budget else (
            max(_nice_budget(plan.planned_cost, plan.budget_use), Decimal(plan.min_budget)) if plan.budget_use else None)
        if budget:
            principal = manager if plan.manager else owner
            await campaign_service.update_campaign(principal, plan.campaign_id,
                                                   CampaignData(budget=budget, given={"budget"}))

    # 4. Send events, as the sending gateway reports them: batches of up to 5000,
    #    in arrival order (shuffled), with a few webhook re-deliveries.
    t_ingest = time.perf_counter()
    batches: list[list[SendEventData]] = [[]]
    for send in sends:
        if len(batches[-1]) + len(send.events) > EVENTS_PER_CALL - 50:
            batches.append([])
        batches[-1].extend(send.events)
    totals = Counter()
    for batch in batches:
        rng.shuffle(batch)
        batch.extend(rng.sample(batch, min(len(batch) // 200, 40)))  # re-deliveries: reported as duplicates
        result = await ingest_service.ingest_send_events(gateway, batch)
        totals.update(accepted=result.accepted, duplicates=result.duplicates, rejected=len(result.rejected))
        if result.rejected:
            first = result.rejected[0]
            echo(f"warning: {len(result.rejected)} events rejected, e.g. #{first.index}: {first.code.value} "
                 f"{first.message}")
    # The simulated history already messaged these recipients: their send jobs are done.
    done: dict[tuple[int, Channel], list[int]] = defaultdict(list)
    for send in sends:
        done[(send.plan.campaign_id, send.channel)].append(send.lead.id)
    for (campaign_id, channel), lead_ids in done.items():
        for i in range(0, len(lead_ids), 500):
            await SendJob.filter(campaign_id=campaign_id, channel=channel, lead_id__in=lead_ids[i:i + 500]) \
                .update(state="QUEUED", done_at=now)
    echo(f"{len(sends)} sends from {totals['accepted']} events in {len(batches)} batches "
         f"({totals['duplicates']} duplicates ignored) in {time.perf_counter() - t_ingest:.1f}s")

    # 5. Logged spend (agency, print, ...) up to each campaign's target utilization, and one reversal.
    n_entries = 0
    for plan in plans:
        if not plan.budget_use or plan.final == CampaignStatus.DRAFT:
            continue
        principal = manager if plan.manager else owner
        campaign = await Campaign.get(id=plan.campaign_id)
        start_day = (now + timedelta(days=plan.start_days)).date()
        if plan.reversal:
            wrong = _micros_to_decimal(campaign.budget_micros // 10)
            entry, _ = await budget_service.log_spend(principal, SpendData(
                plan.campaign_id, wrong, "influencers", "Instagram creator fee", start_day + timedelta(days=2)))
            await budget_service.log_spend(principal, SpendData(
                plan.campaign_id, -wrong, "influencers", "Reversal: logged on the wrong campaign",
                start_day + timedelta(days=3), reverses=entry.id))
            n_entries += 2
        target = int(campaign.budget_micros * plan.budget_use)
        missing = target - campaign.spent_micros
        if missing <= 10_000:
            continue
        parts = [("creative agency", "Visuals and copywriting", 0.6, None),
                 ("printing", "In-store posters and flyers", 0.4, None)]
        if Channel.SOCIAL in plan.channels:
            parts[1] = ("sponsored posts", "Boosted LinkedIn post", 0.4, Channel.SOCIAL)
        left = _micros_to_decimal(missing)
        for i, (category, note, share, channel) in enumerate(parts):
            amount = left if i == len(parts) - 1 else _micros_to_decimal(int(missing * share))
            left -= amount
            if amount <= 0:
                continue
            await budget_service.log_spend(principal, SpendData(
                plan.campaign_id, amount, category, note, start_day + timedelta(days=i), channel))
            n_entries += 1
    echo(f"{n_entries} spend entries logged (one reversed)")

    # 6. Final statuses, then lifecycle timestamps matching the simulated history.
    for plan in plans:
        principal = manager if plan.manager else owner
        start = now + timedelta(days=plan.start_days) if plan.start_days is not None else now
        end = now + timedelta(days=plan.end_days) if plan.end_days is not None else None
        if plan.final == CampaignStatus.PAUSED:
            await campaign_service.transition(principal, plan.campaign_id, "pause")
        elif plan.final == CampaignStatus.COMPLETED:
            await campaign_service.update_campaign(principal, plan.campaign_id, CampaignData(end_at=end,
                                                                                             given={"end_at"}))
            await campaign_service.transition(principal, plan.campaign_id, "complete")
        elif plan.final == CampaignStatus.CANCELLED:
            await campaign_service.transition(principal, plan.campaign_id, "cancel")
        created = min(start, now) - timedelta(days=rng.uniform(2, 6))
        stamps: dict = {"created_at": created}
        if plan.final not in (CampaignStatus.DRAFT,):
            stamps["launched_at"] = min(start, now) - timedelta(hours=rng.uniform(1, 30))
        if plan.final in (CampaignStatus.LIVE, CampaignStatus.PAUSED, CampaignStatus.COMPLETED,
                          CampaignStatus.CANCELLED):
            stamps["live_since"] = start
        if plan.final == CampaignStatus.COMPLETED:
            stamps["ended_at"] = end
        elif plan.final == CampaignStatus.CANCELLED:
            stamps["ended_at"] = start + timedelta(hours=22)
        if plan.final == CampaignStatus.DRAFT:
            stamps["created_at"] = now - timedelta(hours=rng.uniform(2, 30))
        await Campaign.filter(id=plan.campaign_id).update(**stamps)

    clone = await campaign_service.clone_campaign(owner, plans[0].campaign_id, "Black Friday 2026 — Main Wave")
    echo(f"cloned {plans[0].name!r} into the draft {clone.name!r}")

    statuses = Counter(c.status.value for c in await Campaign.filter(organization_id=org_id))
    echo("campaigns by status: " + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())))
    echo(f"demo built in {time.perf_counter() - t_start:.1f}s; owner: {issued.user.email}")
    return issued.token
