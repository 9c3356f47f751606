"""Types and enums of outreach."""

from __future__ import annotations

import datetime as dt

import strawberry

from app.outreach import rules, service
from graph.campaigns.types import register_campaign_field
from graph.core import describe_enum, to_global_id

StepKind = describe_enum(rules.StepKind, "What a step does.", {
    "EMAIL": "An email, sent by the built-in sender on the step's day (automatic).",
    "LINKEDIN_REQUEST": "Send a LinkedIn connection request (manual).",
    "LINKEDIN_CHECK": "Check whether the connection request was accepted (manual).",
    "LINKEDIN_WITHDRAW": "Withdraw a pending connection request (manual).",
    "LINKEDIN_MESSAGE": "Send a LinkedIn message (manual).",
    "TWITTER_FOLLOW": "Follow the lead on Twitter (manual).",
})
StepCondition = describe_enum(rules.StepCondition, "When a step applies, judged when its day comes.", {
    "NONE": "Always.",
    "IF_CONNECTED": "Only once the lead accepted the LinkedIn connection (waits until then).",
    "IF_NOT_CONNECTED": "Only while the lead has not accepted the LinkedIn connection.",
})
StepState = describe_enum(rules.StepState, "State of a recipient at a step.", {
    "SCHEDULED": "Not done yet (its day may have come: see actionRequired).",
    "SENT": "Email sent.", "OPENED": "Email opened.", "CLICKED": "Email link clicked.",
    "REQUEST_SENT": "LinkedIn connection request sent.", "CONNECTED": "LinkedIn connection accepted.",
    "NOT_CONNECTED": "Checked: the connection was not accepted.", "WITHDRAWN": "Connection request withdrawn.",
    "MESSAGE_SENT": "LinkedIn message sent.", "FOLLOWED": "Followed on Twitter.",
    "REPLIED": "The lead replied (the sequence stops).", "RSVP": "The lead booked a meeting (the sequence stops).",
    "EXIT": "The lead left the sequence.", "UNSUBSCRIBED": "The lead unsubscribed from the email.",
    "OPTED_OUT": "The lead opted out of outreach.",
    "SKIPPED": "Not done and no longer needed: the sequence stopped before it.",
})
StepAction = describe_enum(rules.StepAction, "What a person did for a manual step.", {
    "REQUEST_SENT": "LinkedIn request sent (LINKEDIN_REQUEST).",
    "CONNECTED": "Checked: connected (LINKEDIN_CHECK).",
    "NOT_CONNECTED": "Checked: not connected (LINKEDIN_CHECK).",
    "WITHDRAWN": "Request withdrawn (LINKEDIN_WITHDRAW).",
    "MESSAGE_SENT": "Message sent (LINKEDIN_MESSAGE).",
    "FOLLOWED": "Followed (TWITTER_FOLLOW).",
})
OutreachEventType = describe_enum(rules.OutreachEventType, "An outreach event reported by an integrator.", {
    "REPLIED": "The lead replied.", "RSVP": "The lead booked a meeting.",
    "LINKEDIN_ACCEPTED": "The lead accepted the LinkedIn connection request.",
    "EXIT": "The lead left the sequence (e.g. moved to a sales process).",
    "OPTED_OUT": "The lead asked not to be contacted.",
})


@strawberry.type(description="One step of a campaign's sequence.")
class OutreachStep:
    id: strawberry.ID = strawberry.field(description="Global id (OutreachStep).")
    position: int = strawberry.field(description="Order in the sequence, from 0.")
    kind: StepKind = strawberry.field(description="What the step does.")
    day_offset: int = strawberry.field(description="Days after the recipient's start (organization time zone).")
    condition: StepCondition = strawberry.field(description="When the step applies.")
    note: str = strawberry.field(description="Free text for the person doing the step (e.g. a message template).")

    @staticmethod
    def of(m) -> "OutreachStep":
        return OutreachStep(id=to_global_id("OutreachStep", m.id), position=m.position, kind=rules.StepKind(m.kind),
                            day_offset=m.day_offset, condition=rules.StepCondition(m.condition), note=m.note)


@strawberry.type(description="A recipient at one step: its state, and whether someone must act.")
class RecipientStep:
    id: strawberry.ID = strawberry.field(description="Global id (RecipientStep); pass it to stepMarkDone.")
    campaign_id: strawberry.ID = strawberry.field(description="The campaign.")
    lead_id: strawberry.ID = strawberry.field(description="The lead.")
    lead_name: str = strawberry.field(description="The lead's name.")
    step: OutreachStep = strawberry.field(description="The step.")
    due_day: dt.date = strawberry.field(description="The step's day for this recipient (organization time zone).")
    state: StepState = strawberry.field(description="Current state.")
    action_required: bool = strawberry.field(description="A manual step whose day has come, not done yet.")
    overdue: bool = strawberry.field(description="Not done on its day: the recipient is off track.")
    done_at: dt.datetime | None = strawberry.field(description="When it was marked done.")
    done_by_id: strawberry.ID | None = strawberry.field(description="Who marked it done (User).")


@strawberry.type(description="A recorded manual action.")
class OutreachAction:
    id: strawberry.ID = strawberry.field(description="Global id (OutreachAction); pass it to stepUndo.")
    action: StepAction = strawberry.field(description="What was done.")
    done_at: dt.datetime = strawberry.field(description="When.")
    done_by_id: strawberry.ID | None = strawberry.field(description="Who (User).")
    undone_at: dt.datetime | None = strawberry.field(description="When it was undone, if it was.")
    undo_until: dt.datetime = strawberry.field(description="Last moment it can be undone.")

    @staticmethod
    def of(a) -> "OutreachAction":
        return OutreachAction(id=to_global_id("OutreachAction", a.id), action=rules.StepAction(a.action),
                              done_at=a.done_at, done_by_id=to_global_id("User", a.done_by_id) if a.done_by_id else None,
                              undone_at=a.undone_at, undo_until=a.done_at + service.UNDO_WINDOW)


@strawberry.type(description="A KPI now and compared with earlier (from the daily snapshots).")
class Kpi:
    value: int = strawberry.field(description="Now.")
    previous_week: int | None = strawberry.field(description="At the end of the day 7 days ago (null: no snapshot).")
    change_week: int | None = strawberry.field(description="value − previousWeek.")
    previous_month: int | None = strawberry.field(description="At the end of the same day a month ago.")
    change_month: int | None = strawberry.field(description="value − previousMonth.")
    previous_quarter: int | None = strawberry.field(description="At the end of the same day three months ago.")
    change_quarter: int | None = strawberry.field(description="value − previousQuarter.")
    previous_year: int | None = strawberry.field(description="At the end of the same day a year ago.")
    change_year: int | None = strawberry.field(description="value − previousYear.")


def _kpi(k: service.LeadsKpis, name: str) -> Kpi:
    v = k.values[name]
    prev = {p: (k.previous[p] or {}).get(name) if k.previous[p] is not None else None
            for p in ("week", "month", "quarter", "year")}
    return Kpi(value=v, previous_week=prev["week"], change_week=None if prev["week"] is None else v - prev["week"],
               previous_month=prev["month"], change_month=None if prev["month"] is None else v - prev["month"],
               previous_quarter=prev["quarter"],
               change_quarter=None if prev["quarter"] is None else v - prev["quarter"],
               previous_year=prev["year"], change_year=None if prev["year"] is None else v - prev["year"])


@strawberry.type(description="Leads KPIs of a scope. Each name is also a `leads(filter)` argument whose "
                             "totalCount equals the KPI.")
class LeadsKpis:
    today: dt.date = strawberry.field(description="The organization's current day (its time zone).")
    all: Kpi = strawberry.field(description="Every lead in the scope.")
    active: Kpi = strawberry.field(description="Leads in at least one LIVE campaign (filter status: ACTIVE).")
    inactive: Kpi = strawberry.field(description="Leads in no LIVE campaign (filter status: INACTIVE).")
    verified_only: Kpi = strawberry.field(description="Leads with a verified email (filter verifiedOnly: true).")
    social_only: Kpi = strawberry.field(description="No email but a LinkedIn or Twitter URL (filter socialOnly: true).")
    engaged: Kpi = strawberry.field(description="Received an email or a LinkedIn message (filter engaged: true).")
    on_track: Kpi = strawberry.field(description="In a sequence with every manual step done on its day "
                                                 "(filter track: ON_TRACK).")
    off_track: Kpi = strawberry.field(description="A manual step not done on its day (filter track: OFF_TRACK).")
    action_required: Kpi = strawberry.field(description="A manual step due and not done "
                                                        "(filter actionRequired: true).")

    @staticmethod
    def of(k: service.LeadsKpis) -> "LeadsKpis":
        return LeadsKpis(today=k.today, all=_kpi(k, "total"), active=_kpi(k, "active"),
                         inactive=_kpi(k, "inactive"), verified_only=_kpi(k, "verified"),
                         social_only=_kpi(k, "social_only"), engaged=_kpi(k, "engaged"),
                         on_track=_kpi(k, "on_track"), off_track=_kpi(k, "off_track"),
                         action_required=_kpi(k, "action_required"))


@strawberry.type(description="Outreach figures of one step of a campaign.")
class StepKpis:
    step: OutreachStep = strawberry.field(description="The step.")
    recipients: int = strawberry.field(description="Recipients the step applies to.")
    scheduled: int = strawberry.field(description="Not done yet.")
    engaged: int = strawberry.field(description="Touch-points done: email sent, request sent, message sent, follow.")
    replied: int = strawberry.field(description="Recipients whose reply shows on this step.")
    rsvp: int = strawberry.field(description="Recipients whose meeting booking shows on this step.")
    action_required: int = strawberry.field(description="Due and not done.")
    off_track: int = strawberry.field(description="Not done on its day.")


@strawberry.type(description="Outreach KPIs of a campaign, and per step.")
class CampaignOutreachKpis:
    campaign_id: strawberry.ID = strawberry.field(description="The campaign.")
    recipients: int = strawberry.field(description="Recipients in the sequence.")
    scheduled: int = strawberry.field(description="Recipient steps not done yet.")
    engaged: int = strawberry.field(description="Touch-points: LinkedIn requests, messages, Twitter follows, emails sent.")
    replied: int = strawberry.field(description="Recipients who replied.")
    rsvp: int = strawberry.field(description="Recipients who booked a meeting.")
    action_required: int = strawberry.field(description="Manual steps due and not done.")
    off_track: int = strawberry.field(description="Manual steps not done on their day.")
    steps: list[StepKpis] = strawberry.field(description="Per step, in order.")

    @staticmethod
    def of(k: service.CampaignOutreachKpis) -> "CampaignOutreachKpis":
        return CampaignOutreachKpis(
            campaign_id=to_global_id("Campaign", k.campaign_id), recipients=k.recipients, scheduled=k.scheduled,
            engaged=k.engaged, replied=k.replied, rsvp=k.rsvp, action_required=k.action_required,
            off_track=k.off_track, steps=[StepKpis(
                step=OutreachStep.of(s.step), recipients=s.recipients, scheduled=s.scheduled, engaged=s.engaged,
                replied=s.replied, rsvp=s.rsvp, action_required=s.action_required, off_track=s.off_track)
                for s in k.steps])


# ---------------------------------------------------------------- Campaign.steps / Campaign.kpis


async def _campaign_steps(info, campaign) -> list[OutreachStep]:
    return [OutreachStep.of(s) for s in await service.steps_of(campaign.id)]


async def _campaign_kpis(info, campaign) -> CampaignOutreachKpis:
    from graph.core import ctx

    k = await service.campaign_kpis(ctx(info).principal, campaign.id)
    if k is None:  # the Campaign object was visible a moment ago: answer zeros rather than fail
        k = service.CampaignOutreachKpis(campaign.id, 0, 0, 0, 0, 0, 0, 0, [])
    return CampaignOutreachKpis.of(k)


register_campaign_field("steps", _campaign_steps)
register_campaign_field("kpis", _campaign_kpis)
