"""GraphQL enums, each value described for integrators reading introspection."""

from graph.core import describe_enum
from models import enums as e

Role = describe_enum(e.Role, "What a user may do inside its scope.", {
    "OWNER": "Everything in the organization; manages members and tokens.",
    "MANAGER": "Creates and runs campaigns and logs spend in its scope.",
    "ANALYST": "Reads everything in its scope.",
    "INTEGRATION": "Machine principal: ingests events and reads what it ingests.",
})
UnitKind = describe_enum(e.UnitKind, "Level of an organizational unit.", {
    "ORGANIZATION": "The whole organization.", "ZONE": "A zone (group of centers).", "CENTER": "A single center.",
})
Channel = describe_enum(e.Channel, "A messaging channel.", {
    "EMAIL": "Email.", "PUSH": "Mobile push notification.", "SMS": "SMS text message.",
    "WHATSAPP": "WhatsApp message.", "SOCIAL": "Social network post.",
})
CampaignType = describe_enum(e.CampaignType, "How a campaign selects recipients.", {
    "SCHEDULED": "Runs once over its audience.",
    "ALWAYS_ON": "Keeps adding recipients who match its audience.",
})
CampaignStatus = describe_enum(e.CampaignStatus, "Lifecycle status of a campaign.", {
    "DRAFT": "Being prepared; nothing is sent.",
    "SCHEDULED": "Launched; starts at `startAt`.",
    "LIVE": "Sending. The only active status.",
    "PAUSED": "No new messages are queued; queued ones still go out.",
    "COMPLETED": "Finished (final).",
    "CANCELLED": "Stopped for good (final).",
})
StatusReason = describe_enum(e.StatusReason, "Why a campaign is paused.", {
    "MANUAL": "Paused by a user.",
    "BUDGET_EXHAUSTED": "Paused by the system: the next message would exceed the budget.",
    "CREDITS_EXHAUSTED": "Paused by the system: the credit wallet cannot pay for the next message.",
})
GoalType = describe_enum(e.GoalType, "Goal of a campaign.", {
    "SALE": "Business goal: a sale (revenue tracked).", "LEAD": "Business goal: a new lead.",
    "PAGE_VIEWS": "Assisting goal: page views.", "OTHER": "Assisting goal: anything else.",
})
RecipientGroup = describe_enum(e.RecipientGroup, "Experiment group of a recipient.", {
    "TREATMENT": "Messaged.", "CONTROL": "Never messaged; the baseline for lift.",
})
SendStatus = describe_enum(e.SendStatus, "Delivery status of a send.", {
    "PENDING": "Queued, not yet accepted by the provider.",
    "SENT": "Accepted by the provider.",
    "DELIVERED": "Delivered to the recipient.",
    "FAILED": "Failed (final).",
    "BOUNCED": "Bounced (final).",
    "SKIPPED": "Never queued: the sender skipped this recipient on this channel (see skipReason); final, "
               "counted in `skipped`, not in `generated`.",
})
SkipReason = describe_enum(e.SkipReason, "Why the sender skipped a recipient on a channel.", {
    "NO_ADDRESS": "The lead has no address for the channel (no email for EMAIL, no phone for SMS/WHATSAPP, no "
                  "push token for PUSH, no LinkedIn or Twitter URL for SOCIAL).",
    "UNSUBSCRIBED": "The lead unsubscribed from the channel.",
    "CHANNEL_DISABLED": "The channel was disabled on the campaign before the message was queued.",
})
BounceType = describe_enum(e.BounceType, "Kind of bounce.", {
    "HARD": "Permanent (address invalid).", "SOFT": "Temporary (mailbox full, …).",
})
SendEventType = describe_enum(e.SendEventType, "Kind of a send event reported by a provider or integrator.", {
    "QUEUED": "The message was queued.",
    "SENT": "The provider accepted the message.",
    "DELIVERED": "The message was delivered.",
    "FAILED": "The message failed (`reason` says why).",
    "BOUNCED": "The message bounced (`bounceType` hard or soft).",
    "OPENED": "The recipient opened/viewed it (`machine: true` for proxies and scanners).",
    "CLICKED": "The recipient clicked a link (also counts as a read).",
    "REPLIED": "The recipient replied.",
    "UNSUBSCRIBED": "The recipient unsubscribed from the channel.",
})
