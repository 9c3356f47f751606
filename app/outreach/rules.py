"""The pure rules: a recipient's step states as a function of the facts (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import Enum


class StepKind(str, Enum):
    EMAIL = "EMAIL"
    LINKEDIN_REQUEST = "LINKEDIN_REQUEST"
    LINKEDIN_CHECK = "LINKEDIN_CHECK"
    LINKEDIN_WITHDRAW = "LINKEDIN_WITHDRAW"
    LINKEDIN_MESSAGE = "LINKEDIN_MESSAGE"
    TWITTER_FOLLOW = "TWITTER_FOLLOW"


class StepCondition(str, Enum):
    NONE = "NONE"
    IF_CONNECTED = "IF_CONNECTED"
    IF_NOT_CONNECTED = "IF_NOT_CONNECTED"


class StepState(str, Enum):
    SCHEDULED = "SCHEDULED"
    SENT = "SENT"
    OPENED = "OPENED"
    CLICKED = "CLICKED"
    REQUEST_SENT = "REQUEST_SENT"
    CONNECTED = "CONNECTED"
    NOT_CONNECTED = "NOT_CONNECTED"
    WITHDRAWN = "WITHDRAWN"
    MESSAGE_SENT = "MESSAGE_SENT"
    FOLLOWED = "FOLLOWED"
    REPLIED = "REPLIED"
    RSVP = "RSVP"
    EXIT = "EXIT"
    UNSUBSCRIBED = "UNSUBSCRIBED"
    OPTED_OUT = "OPTED_OUT"
    SKIPPED = "SKIPPED"


class StepAction(str, Enum):
    REQUEST_SENT = "REQUEST_SENT"
    CONNECTED = "CONNECTED"
    NOT_CONNECTED = "NOT_CONNECTED"
    WITHDRAWN = "WITHDRAWN"
    MESSAGE_SENT = "MESSAGE_SENT"
    FOLLOWED = "FOLLOWED"


class OutreachEventType(str, Enum):
    REPLIED = "REPLIED"
    RSVP = "RSVP"
    LINKEDIN_ACCEPTED = "LINKEDIN_ACCEPTED"
    EXIT = "EXIT"
    OPTED_OUT = "OPTED_OUT"


MANUAL = {StepKind.LINKEDIN_REQUEST, StepKind.LINKEDIN_CHECK, StepKind.LINKEDIN_WITHDRAW, StepKind.LINKEDIN_MESSAGE,
          StepKind.TWITTER_FOLLOW}
ACTIONS_OF = {
    StepKind.LINKEDIN_REQUEST: {StepAction.REQUEST_SENT},
    StepKind.LINKEDIN_CHECK: {StepAction.CONNECTED, StepAction.NOT_CONNECTED},
    StepKind.LINKEDIN_WITHDRAW: {StepAction.WITHDRAWN},
    StepKind.LINKEDIN_MESSAGE: {StepAction.MESSAGE_SENT},
    StepKind.TWITTER_FOLLOW: {StepAction.FOLLOWED},
}
RANK = {StepState.SCHEDULED: 0, StepState.SKIPPED: 0, StepState.SENT: 1, StepState.REQUEST_SENT: 1,
        StepState.NOT_CONNECTED: 1, StepState.MESSAGE_SENT: 1, StepState.FOLLOWED: 1, StepState.OPENED: 2,
        StepState.CONNECTED: 2, StepState.WITHDRAWN: 2, StepState.CLICKED: 3, StepState.REPLIED: 5,
        StepState.RSVP: 6, StepState.EXIT: 7, StepState.UNSUBSCRIBED: 8, StepState.OPTED_OUT: 8}
# A recipient's outcome, strongest first; it stops the sequence.
OUTCOMES = [(OutreachEventType.OPTED_OUT, StepState.OPTED_OUT), (OutreachEventType.EXIT, StepState.EXIT),
            (OutreachEventType.RSVP, StepState.RSVP), (OutreachEventType.REPLIED, StepState.REPLIED)]


@dataclass(frozen=True)
class Step:
    id: int
    position: int
    kind: StepKind
    day_offset: int
    condition: StepCondition
    applies_from: date | None = None


@dataclass
class EmailFacts:
    was_sent: bool = False
    read_at: datetime | None = None
    clicked_at: datetime | None = None
    replied_at: datetime | None = None
    unsubscribed_at: datetime | None = None


@dataclass
class Derived:
    step_id: int
    due_day: date
    state: StepState
    action_required: bool = False
    overdue: bool = False
    touched: bool = False


def derive(steps: list[Step], start_day: date, today: date, live: bool, email: EmailFacts | None,
           actions: dict[int, StepAction], events: set[OutreachEventType]) -> list[Derived]:
    """Each applicable step's state for one recipient.

    - Email steps follow their send (sent → opened → clicked → replied / unsubscribed).
    - A manual step is done when an action is recorded on it (LinkedIn request → connected once
      accepted). Not done, its day come (organization-local), its condition met, the campaign
      LIVE and the sequence not stopped: action required; overdue (off track) after its day.
    - A reply, RSVP, exit, opt-out (events) or an email reply/unsubscribe stops the sequence: the
      steps not done are SKIPPED and the outcome shows on the last step that touched the lead.
    """
    connected = OutreachEventType.LINKEDIN_ACCEPTED in events or StepAction.CONNECTED in actions.values()
    outcome = next((state for ev, state in OUTCOMES if ev in events), None)
    stopped = outcome is not None or bool(email and (email.replied_at or email.unsubscribed_at))
    out: list[Derived] = []
    for step in sorted(steps, key=lambda s: s.position):
        due = start_day + timedelta(days=step.day_offset)
        if step.applies_from is not None and due < step.applies_from:
            continue  # added after launch: recipients already past its day skip it
        d = Derived(step.id, due, StepState.SCHEDULED)
        if step.kind == StepKind.EMAIL:
            e = email or EmailFacts()
            d.touched = e.was_sent
            if e.unsubscribed_at:
                d.state = StepState.UNSUBSCRIBED
            elif e.replied_at:
                d.state = StepState.REPLIED
            elif e.clicked_at:
                d.state = StepState.CLICKED
            elif e.read_at:
                d.state = StepState.OPENED
            elif e.was_sent:
                d.state = StepState.SENT
        elif step.id in actions:
            d.touched = True
            d.state = StepState(actions[step.id].value)
            if step.kind == StepKind.LINKEDIN_REQUEST and connected:
                d.state = StepState.CONNECTED
        if d.state == StepState.SCHEDULED and not d.touched:
            met = (step.condition == StepCondition.NONE
                   or (step.condition == StepCondition.IF_CONNECTED and connected)
                   or (step.condition == StepCondition.IF_NOT_CONNECTED and not connected))
            if stopped:
                d.state = StepState.SKIPPED
            elif step.kind in MANUAL and live and met and due <= today:
                d.action_required = True
                d.overdue = due < today
        out.append(d)
    if outcome is not None and out:
        touched = [d for d in out if d.touched]
        target = touched[-1] if touched else out[0]
        if RANK[outcome] > RANK[target.state]:
            target.state = outcome
    return out


def email_due(steps: list[Step], derived: list[Derived], today: date, live: bool) -> bool:
    """Whether the recipient's email step is to be handed to the sender now."""
    kinds = {s.id: s.kind for s in steps}
    conds = {s.id: s.condition for s in steps}
    return live and any(kinds[d.step_id] == StepKind.EMAIL and d.state == StepState.SCHEDULED and not d.touched
                        and d.due_day <= today and conds[d.step_id] == StepCondition.NONE for d in derived)
