"""Enumerations shared by models, services and the GraphQL layer."""

from enum import Enum


class Role(str, Enum):
    OWNER = "OWNER"
    MANAGER = "MANAGER"
    ANALYST = "ANALYST"
    INTEGRATION = "INTEGRATION"


class UnitKind(str, Enum):
    ORGANIZATION = "ORGANIZATION"
    ZONE = "ZONE"
    CENTER = "CENTER"


class Channel(str, Enum):
    EMAIL = "EMAIL"
    PUSH = "PUSH"
    SMS = "SMS"
    WHATSAPP = "WHATSAPP"
    SOCIAL = "SOCIAL"


class CampaignType(str, Enum):
    SCHEDULED = "SCHEDULED"
    ALWAYS_ON = "ALWAYS_ON"


class CampaignStatus(str, Enum):
    DRAFT = "DRAFT"
    SCHEDULED = "SCHEDULED"
    LIVE = "LIVE"
    PAUSED = "PAUSED"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"


class StatusReason(str, Enum):
    MANUAL = "MANUAL"
    BUDGET_EXHAUSTED = "BUDGET_EXHAUSTED"
    CREDITS_EXHAUSTED = "CREDITS_EXHAUSTED"


class GoalType(str, Enum):
    SALE = "SALE"
    LEAD = "LEAD"
    PAGE_VIEWS = "PAGE_VIEWS"
    OTHER = "OTHER"


class RecipientGroup(str, Enum):
    TREATMENT = "TREATMENT"
    CONTROL = "CONTROL"


class SendStatus(str, Enum):
    PENDING = "PENDING"
    SENT = "SENT"
    DELIVERED = "DELIVERED"
    FAILED = "FAILED"
    BOUNCED = "BOUNCED"
    SKIPPED = "SKIPPED"  # the sender never queued it (see SkipReason); final, no events


class SkipReason(str, Enum):
    """Why the sender skipped a recipient on a channel (issue 12 item 8)."""

    NO_ADDRESS = "NO_ADDRESS"
    UNSUBSCRIBED = "UNSUBSCRIBED"
    CHANNEL_DISABLED = "CHANNEL_DISABLED"


class BounceType(str, Enum):
    HARD = "HARD"
    SOFT = "SOFT"


class SendEventType(str, Enum):
    QUEUED = "QUEUED"
    SENT = "SENT"
    DELIVERED = "DELIVERED"
    FAILED = "FAILED"
    BOUNCED = "BOUNCED"
    OPENED = "OPENED"
    CLICKED = "CLICKED"
    REPLIED = "REPLIED"
    UNSUBSCRIBED = "UNSUBSCRIBED"


class CreditSource(str, Enum):
    ALWAYS_ON = "ALWAYS_ON"
    EMAIL = "EMAIL"
    SMS = "SMS"
    WHATSAPP = "WHATSAPP"
    PUSH = "PUSH"


class CreditEntryKind(str, Enum):
    TOPUP = "TOPUP"
    CONSUMPTION = "CONSUMPTION"
    REFUND = "REFUND"
