"""GraphQL analytics: object types."""

from __future__ import annotations

import datetime as dt
import enum
from collections import defaultdict
from decimal import Decimal

import strawberry
from strawberry.types import Info

from app.analytics import service as svc
from app.core.money import from_micros
from graph.audience.types import Lead
from graph.core import After, Connection, First, Money, UserError, ctx, describe_enum, paginate
from graph.core.enums import Channel, GoalType, RecipientGroup, SendStatus
from graph.delivery.mutations import RejectedEvent
from models.campaigns import Campaign as CampaignModel
from models.campaigns import Recipient
from models.goals import Attribution
from models.leads import Lead as LeadModel
from models.sends import Send
from models.tenancy import Organization


class _StatsPeriod(enum.Enum):
    TODAY = "TODAY"
    LAST_7_DAYS = "LAST_7_DAYS"
    LAST_30_DAYS = "LAST_30_DAYS"
    THIS_WEEK = "THIS_WEEK"
    LAST_WEEK = "LAST_WEEK"
    THIS_MONTH = "THIS_MONTH"
    LAST_MONTH = "LAST_MONTH"
    THIS_QUARTER = "THIS_QUARTER"
    LAST_QUARTER = "LAST_QUARTER"
    THIS_YEAR = "THIS_YEAR"
    LAST_YEAR = "LAST_YEAR"
    LIFETIME = "LIFETIME"


StatsPeriod = describe_enum(_StatsPeriod, (
    "A preset period, in the organization's time zone (\"today\" is the organization's date). Rolling presets "
    "end today; calendar presets are whole calendar periods: weeks start on Monday (ISO 8601), quarters are "
    "Jan–Mar, Apr–Jun, Jul–Sep, Oct–Dec. THIS_* runs from the period's first day to today; LAST_* is the whole "
    "previous period."), {
    "TODAY": "Today.", "LAST_7_DAYS": "The last 7 days, today included.",
    "LAST_30_DAYS": "The last 30 days, today included.",
    "THIS_WEEK": "From this week's Monday to today.",
    "LAST_WEEK": "Last week, Monday to Sunday.",
    "THIS_MONTH": "From the 1st of this month to today.",
    "LAST_MONTH": "The whole previous calendar month.",
    "THIS_QUARTER": "From the first day of this calendar quarter to today.",
    "LAST_QUARTER": "The whole previous calendar quarter.",
    "THIS_YEAR": "From January 1st to today.",
    "LAST_YEAR": "The whole previous calendar year.",
    "LIFETIME": "The campaign's whole life.",
}, name="StatsPeriod")


class _GoalKind(enum.Enum):
    CONVERSION = "CONVERSION"
    GOAL_REACHED = "GOAL_REACHED"


GoalKind = describe_enum(_GoalKind, "What reaching the campaign's goal is called.", {
    "CONVERSION": "A business goal (SALE, LEAD): a conversion.",
    "GOAL_REACHED": "An assisting goal (PAGE_VIEWS, OTHER): a goal reached.",
}, name="GoalKind")


def _money(micros: int | float, currency: str) -> Money:
    return Money(amount=from_micros(int(round(micros))), currency=currency)


async def _currency(org_id: int) -> str:
    return (await Organization.get(id=org_id)).currency


@strawberry.type(description="Analytics figures over a period.")
class StatFigures:
    sent: int = strawberry.field(description="Messages accepted by providers.")
    viewed: int = strawberry.field(description=(
        "Messages read within the campaign's view window after their send (attribution.viewWindowHours, default "
        "168 h), counted on the day of the read; machine opens excluded. Differs from metrics.read, which counts "
        "every read whenever it came: metrics.read − stats.totals.viewed (LIFETIME) = reads outside the view window."))
    clicked: int = strawberry.field(description=(
        "Clicked messages whose read is counted in `viewed` (within the view window), on the day of the click. "
        "metrics.clicked counts every click."))
    goals: int = strawberry.field(description=(
        "Goals of the campaign's goal attributed to treatment recipients, on the goal's day. Attribution needs a "
        "counted read before the goal (\"after a read\"); goalsAfterClick is the part that also followed a click."))
    revenue: Money = strawberry.field(description="Revenue of those goals (SALE goals only): revenue after a read.")
    goals_after_click: int = strawberry.field(description=(
        "Of `goals`: those whose recipient had a counted click (a click whose read counts in `viewed`) on one of its "
        "sends of this campaign at or before the goal — conversions after a click, not only after a read."))
    revenue_after_click: Money = strawberry.field(description="Revenue of goalsAfterClick (SALE goals only).")
    exposures: int = strawberry.field(description=(
        "Treatment recipients first exposed (first message DELIVERED) in the period, on that day; summed over the "
        "campaign's life it equals funnel.exposures."))
    engagements: int = strawberry.field(description=(
        "Treatment recipients first engaged (first counted click or reply) in the period, on that day; summed over "
        "the campaign's life it equals funnel.engagements."))
    control_goals: int = strawberry.field(description=(
        "Goals of the campaign's goal attributed to control recipients (never messaged), on the goal's day."))


@strawberry.type(description="Figures of one day (organization time zone).")
class DailyStat(StatFigures):
    day: dt.date = strawberry.field(description="The day.")
    conversion_rate: float = strawberry.field(description=(
        "Treatment conversion rate of the day: goals / treatment size (reach); 0 without treatment recipients. "
        "Campaign-wide; stats.byChannel gives the rate per channel (goals attributed through that channel's sends)."))
    control_conversion_rate: float = strawberry.field(description=(
        "Control conversion rate of the day, beside it: controlGoals / control size; 0 without a control group."))


@strawberry.type(description=(
    "One day of one channel's conversion trend (organization time zone), treatment recipients only, with the "
    "control group's conversion rate of the same day beside it."))
class ChannelDailyStat:
    day: dt.date = strawberry.field(description="The day.")
    exposures: int = strawberry.field(description=(
        "Treatment recipients reached on this channel that day: counted once per channel, on the day their first "
        "message on this channel was DELIVERED (a recipient reached on two channels counts on each)."))
    reached: int = strawberry.field(description=(
        "Treatment recipients reached on this channel so far: exposures of this day and of every earlier day of "
        "the campaign, before the range included."))
    conversions: int = strawberry.field(description=(
        "Goals of the campaign's goal attributed to treatment recipients through a send on this channel, on the "
        "goal's day. The attributing send is the one whose counted read came last at or before the goal within the "
        "windows (last touch); summed over the channels a day's conversions equal stats.daily.goals."))
    conversion_rate: float = strawberry.field(description=(
        "conversions / reached (this day's conversions over the recipients reached on this channel so far); 0 "
        "while nobody was reached on it."))
    control_conversion_rate: float = strawberry.field(description=(
        "The control group's conversion rate of the same day: control goals / control size, 0 without a control "
        "group. The control group is never messaged, so it has no channel: the same figure stands beside every "
        "channel (it equals stats.daily.controlConversionRate)."))


@strawberry.type(description="One channel's daily conversion trend.")
class ChannelSeries:
    channel: Channel = strawberry.field(description="The channel.")
    daily: list[ChannelDailyStat] = strawberry.field(description=(
        "One entry per day of the period, the same days as stats.daily (days without activity as zeros)."))


@strawberry.type(description="One recipient's journey: when it was sent, viewed, clicked, reached the goal.")
class RecipientStat:
    lead_: strawberry.Private[LeadModel]
    group: RecipientGroup = strawberry.field(description="Treatment or control.")
    sent_at: dt.datetime | None = strawberry.field(description="First send accepted by a provider.")
    viewed_at: dt.datetime | None = strawberry.field(description="First counted read.")
    clicked_at: dt.datetime | None = strawberry.field(description="First counted click.")
    goal_at: dt.datetime | None = strawberry.field(description="First attributed goal of the campaign's goal.")
    status: SendStatus | None = strawberry.field(description=(
        "The message state of this recipient: the delivery status of its latest send in this campaign (the "
        "latest queuedAt, then the highest id; any channel). Null when nothing was sent to it (control "
        "recipients, recipients not queued yet)."))

    @strawberry.field(description="The recipient; null when the lead lies outside your scope.")
    def lead(self, info: Info) -> Lead | None:
        return Lead.of(self.lead_) if ctx(info).principal.sees_lead(self.lead_) else None


@strawberry.type(description="Sent, viewed, clicked and goals: totals, per day and per recipient.")
class CampaignStats:
    campaign: strawberry.Private[CampaignModel]
    currency: strawberry.Private[str]
    date_from: dt.date | None = strawberry.field(description="First day of the period (null: the beginning).")
    date_to: dt.date | None = strawberry.field(description="Last day of the period (null: today).")
    rows: strawberry.Private[list[dict]]

    def _figures(self, r: dict) -> dict:
        return dict(sent=r["sent"], viewed=r["viewed"], clicked=r["clicked"], goals=r["goals"],
                    revenue=_money(r["revenue_micros"], self.currency), goals_after_click=r["goals_after_click"],
                    revenue_after_click=_money(r["revenue_after_click_micros"], self.currency),
                    exposures=r["exposures"], engagements=r["engagements"], control_goals=r["control_goals"])

    @strawberry.field(description="Totals over the period.")
    def totals(self) -> StatFigures:
        t = defaultdict(int)
        for r in self.rows:
            for f in svc.STAT_FIELDS:
                t[f] += r[f]
        return StatFigures(**self._figures(t))

    @strawberry.field(description=(
        "One entry per day of the period, oldest first, days without activity included as zeros. LIFETIME (or an "
        "open end) covers the campaign's life: from its start (startAt, launch or going live, whichever came "
        "first) to its end (completed/cancelled, or endAt once passed) or today, widened to any day that holds "
        "figures. At most 3660 days (INVALID_RANGE beyond)."))
    def daily(self) -> list[DailyStat]:
        nt, nc = self.campaign.reach, self.campaign.control_size
        return [DailyStat(day=r["day"], **self._figures(r),
                          conversion_rate=r["goals"] / nt if nt else 0.0,
                          control_conversion_rate=r["control_goals"] / nc if nc else 0.0) for r in self.rows]

    @strawberry.field(description=(
        "Conversion-rate trend per channel over the days of `daily`: one series per channel the campaign uses (its "
        "configured channels in Channel order, as metrics.byChannel, then any other channel with figures), each day with the recipients reached "
        "on that channel, the goals attributed through it and their rate, and the control group's rate beside it."))
    async def by_channel(self) -> list[ChannelSeries]:
        return [ChannelSeries(channel=c["channel"], daily=[ChannelDailyStat(**p) for p in c["daily"]])
                for c in await svc.channel_series(self.campaign, self.rows)]

    @strawberry.field(description="Per recipient: times of send, view, click and goal (lifetime), newest recipients first.")
    async def recipients(self, first: First = 50, after: After = None) -> Connection[RecipientStat]:
        campaign = self.campaign
        page = await paginate(Recipient.filter(campaign_id=campaign.id), first, after, lambda r: r)
        recips = page.nodes
        lead_ids = [r.lead_id for r in recips]
        leads = {lead.id: lead for lead in await LeadModel.filter(id__in=lead_ids)}
        sends = defaultdict(list)
        for s in await Send.filter(campaign_id=campaign.id, lead_id__in=lead_ids):
            sends[s.lead_id].append(s)
        goals = {}
        for a in await Attribution.filter(campaign_id=campaign.id, lead_id__in=lead_ids, matches=True).order_by("occurred_at"):
            goals.setdefault(a.lead_id, a.occurred_at)

        def first_of(values):
            values = [v for v in values if v]
            return min(values) if values else None

        for edge in page.edges:
            r = edge.node
            mine = sends.get(r.lead_id, [])
            edge.node = RecipientStat(
                lead_=leads[r.lead_id], group=r.group,
                sent_at=first_of(s.sent_at for s in mine),
                viewed_at=first_of(svc.counted_read(s, campaign) for s in mine),
                clicked_at=first_of(svc.counted_click(s, campaign) for s in mine),
                goal_at=goals.get(r.lead_id),
                status=max(mine, key=lambda s: (s.queued_at, s.id)).status if mine else None)
        return page


@strawberry.type(description="Prospects → exposures → engagements → conversions (or goals reached).")
class Funnel:
    prospects: int = strawberry.field(description="Treatment recipients.")
    exposures: int = strawberry.field(description="Treatment recipients with a delivered message.")
    engagements: int = strawberry.field(description="Treatment recipients who clicked or replied.")
    conversions: int = strawberry.field(description="Treatment recipients who reached the campaign's goal.")
    goal_kind: GoalKind | None = strawberry.field(description="Conversion (business goal) or goal reached (assisting); null without a goal.")
    exposure_rate: float = strawberry.field(description="exposures / prospects (the previous step is prospects).")
    engagement_rate: float = strawberry.field(description="engagements / exposures (against the previous step); "
                                                          "same as engagementRateOfExposures.")
    conversion_rate: float = strawberry.field(
        description="conversions / engagements (against the previous step); same as conversionRateOfEngagements. "
                    "A conversion needs a read, not a click, so it can exceed 1 or be 0 with conversions: "
                    "prefer conversionRateOfProspects.",
        deprecation_reason="Ambiguous: use conversionRateOfProspects or conversionRateOfEngagements.")
    engagement_rate_of_prospects: float = strawberry.field(description="engagements / prospects (0 without prospects).")
    engagement_rate_of_exposures: float = strawberry.field(description="engagements / exposures, the previous step "
                                                                       "(0 without exposures).")
    conversion_rate_of_prospects: float = strawberry.field(
        description="conversions / prospects (0 without prospects): the same figure as lift.treatmentConversionRate.")
    conversion_rate_of_engagements: float = strawberry.field(
        description="conversions / engagements, the previous step (0 without engagements). Conversions need a read "
                    "within the windows, not a click, so this can exceed 1.")
    steps: list["FunnelStep"] = strawberry.field(description="The four steps in order, each with its count and its "
                                                             "rate against prospects and against the previous step.")


@strawberry.type(description="One step of the funnel.")
class FunnelStep:
    name: str = strawberry.field(description="PROSPECTS, EXPOSURES, ENGAGEMENTS or CONVERSIONS.")
    count: int = strawberry.field(description="Treatment recipients at this step.")
    rate_of_prospects: float = strawberry.field(description="count / prospects (0 without prospects).")
    rate_of_previous: float = strawberry.field(description="count / the previous step's count (1 for PROSPECTS when "
                                                           "there are any; 0 when the previous step is 0).")


@strawberry.type(description="Control-group lift (SPEC §9).")
class Lift:
    l: strawberry.Private[svc.Lift]
    currency: strawberry.Private[str]

    @strawberry.field(description="Whether lift can be computed.")
    def available(self) -> bool:
        return self.l.available

    @strawberry.field(description="Why it is not available (no control group, no goal).")
    def unavailable_reason(self) -> str | None:
        return self.l.reason

    @strawberry.field(description="Samples too small for the figures to mean much (either group under 100 "
                                  "recipients, or under 10 converters in all).")
    def too_small(self) -> bool:
        return self.l.too_small

    @strawberry.field(description="Treatment recipients.")
    def treatment_size(self) -> int:
        return self.l.treatment_size

    @strawberry.field(description="Control recipients.")
    def control_size(self) -> int:
        return self.l.control_size

    @strawberry.field(description="Goal events attributed to treatment recipients.")
    def treatment_conversions(self) -> int:
        return self.l.treatment_conversions

    @strawberry.field(description="Goal events attributed to control recipients.")
    def control_conversions(self) -> int:
        return self.l.control_conversions

    @strawberry.field(description="Treatment recipients who converted / treatment size.")
    def treatment_conversion_rate(self) -> float:
        return self.l.treatment_rate

    @strawberry.field(description="Control recipients who converted / control size.")
    def control_conversion_rate(self) -> float:
        return self.l.control_rate

    @strawberry.field(description="Average revenue per converting treatment recipient.")
    def treatment_aov(self) -> Money:
        return _money(self.l.treatment_aov, self.currency)

    @strawberry.field(description="Average revenue per converting control recipient.")
    def control_aov(self) -> Money:
        return _money(self.l.control_aov, self.currency)

    @strawberry.field(description="(treatment size + control size) × control conversion rate × control AOV.")
    def baseline_revenue(self) -> Money:
        return _money(self.l.baseline_revenue, self.currency)

    @strawberry.field(description="Treatment revenue + control revenue.")
    def actual_revenue(self) -> Money:
        return _money(self.l.actual_revenue, self.currency)

    @strawberry.field(description="actual − baseline revenue.")
    def incremental_revenue(self) -> Money:
        return _money(self.l.incremental_revenue, self.currency)

    @strawberry.field(description="All converting recipients − (treatment size + control size) × control conversion rate.")
    def incremental_conversions(self) -> float:
        return self.l.incremental_conversions

    @strawberry.field(description="Treatment − control conversion rate.")
    def rate_difference(self) -> float:
        return self.l.difference

    @strawberry.field(description="95 % confidence interval of the rate difference (normal approximation), low end.")
    def rate_difference_ci_low(self) -> float:
        return self.l.ci_low

    @strawberry.field(description="95 % confidence interval of the rate difference, high end.")
    def rate_difference_ci_high(self) -> float:
        return self.l.ci_high


@strawberry.type(description="A day of this campaign's conversion rate next to its peers'.")
class RatePoint:
    day: dt.date = strawberry.field(description="The day.")
    rate: float = strawberry.field(description="This campaign: goals of the day / treatment size.")
    average: float = strawberry.field(description="Average over the organization's campaigns with the same goal type.")


@strawberry.type(description="Revenue of one day (after engagement).")
class RevenuePoint:
    day: dt.date = strawberry.field(description="The day.")
    revenue: Money = strawberry.field(description="Revenue of attributed SALE goals that day.")


@strawberry.type(description="Another goal reached by this campaign's recipients (its contribution to other goals).")
class OtherGoal:
    goal_type: GoalType = strawberry.field(description="Goal type.")
    count: int = strawberry.field(description="Attributed goal events.")
    recipients: int = strawberry.field(description="Distinct treatment recipients.")
    value: Money = strawberry.field(description="Their value.")


@strawberry.type(description="Comparisons over time.")
class CampaignAnalytics:
    campaign: strawberry.Private[CampaignModel]
    currency: strawberry.Private[str]

    @strawberry.field(description="Conversion rate per day vs the average of campaigns with the same goal type.")
    async def conversion_rate_vs_peers(self) -> list[RatePoint]:
        return [RatePoint(**p) for p in await svc.peer_rates(self.campaign)]

    @strawberry.field(description="Revenue after engagement per day (SALE goals).")
    async def revenue_over_time(self) -> list[RevenuePoint]:
        return [RevenuePoint(day=r["day"], revenue=_money(r["revenue_micros"], self.currency))
                for r in await svc.daily(self.campaign.id, None, None) if r["revenue_micros"]]

    @strawberry.field(description="Other goals this campaign's recipients reached.")
    async def other_goals(self) -> list[OtherGoal]:
        return [OtherGoal(goal_type=g["goal_type"], count=g["count"], recipients=g["recipients"],
                          value=_money(g["value_micros"], self.currency)) for g in await svc.other_goals(self.campaign)]


async def campaign_stats(campaign: CampaignModel, period, date_from, date_to) -> CampaignStats:
    from app.core.errors import DomainError
    from graph.core import range_error

    try:
        start, end, tz = await svc.period_range(campaign, period.value if period else None, date_from, date_to)
        rows = await svc.daily_series(campaign, start, end, tz)
    except DomainError as exc:
        raise range_error(exc) from None
    return CampaignStats(campaign=campaign, currency=await _currency(campaign.organization_id),
                         date_from=start, date_to=end, rows=rows)


async def campaign_funnel(campaign: CampaignModel) -> Funnel:
    o = (await svc.outcomes(campaign.id))[svc.RecipientGroup.TREATMENT]
    prospects, exposed, engaged, converted = campaign.reach, o["exposed"], o["engaged"], o["converters"]
    kind = None
    if campaign.goal_type:
        kind = _GoalKind.CONVERSION if svc.GoalType(campaign.goal_type) in svc.BUSINESS_GOALS else _GoalKind.GOAL_REACHED
    ratio = lambda a, b: a / b if b else 0.0  # noqa: E731
    counts = [("PROSPECTS", prospects), ("EXPOSURES", exposed), ("ENGAGEMENTS", engaged), ("CONVERSIONS", converted)]
    steps = [FunnelStep(name=name, count=n, rate_of_prospects=ratio(n, prospects),
                        rate_of_previous=ratio(n, counts[i - 1][1] if i else prospects))
             for i, (name, n) in enumerate(counts)]
    return Funnel(prospects=prospects, exposures=exposed, engagements=engaged, conversions=converted, goal_kind=kind,
                  exposure_rate=ratio(exposed, prospects), engagement_rate=ratio(engaged, exposed),
                  conversion_rate=ratio(converted, engaged),
                  engagement_rate_of_prospects=ratio(engaged, prospects), engagement_rate_of_exposures=ratio(engaged, exposed),
                  conversion_rate_of_prospects=ratio(converted, prospects),
                  conversion_rate_of_engagements=ratio(converted, engaged), steps=steps)


async def campaign_lift(campaign: CampaignModel) -> Lift:
    return Lift(l=await svc.lift(campaign), currency=await _currency(campaign.organization_id))


async def campaign_analytics(campaign: CampaignModel) -> CampaignAnalytics:
    return CampaignAnalytics(campaign=campaign, currency=await _currency(campaign.organization_id))


# ---------------------------------------------------------------- goal ingestion


@strawberry.input(description="A goal reached by a lead.")
class GoalEventInput:
    idempotency_key: str = strawberry.field(description="Unique per event; a repeat has no effect.")
    lead_id: strawberry.ID | None = strawberry.field(default=None, description="The lead (or leadExternalId).")
    lead_external_id: str | None = strawberry.field(default=None, description="The lead by external id.")
    goal_type: GoalType = strawberry.field(description="Goal type.")
    key: str | None = strawberry.field(default=None, description="Goal key (matched against a campaign's goal key).")
    value: Decimal | None = strawberry.field(default=None, description="Value (revenue, for SALE goals).")
    occurred_at: dt.datetime = strawberry.field(description="When it happened (with a time zone offset).")


@strawberry.type(description="Result of goalEventsIngest.")
class GoalEventsIngestPayload:
    accepted: int = strawberry.field(description="Events stored (new idempotency keys).")
    duplicates: int = strawberry.field(description="Repeats of stored events: no effect.")
    rejected: list[RejectedEvent] = strawberry.field(description="Events refused, with the reason.")
    user_errors: list[UserError] = strawberry.field(description="Expected failures; empty on success.")
