"""Reading sends (the send log)."""

from tortoise.expressions import Q

from models.sends import Send


def sends_query(campaign_id: int, channel=None, status=None, recipient: str | None = None):
    qs = Send.filter(campaign_id=campaign_id)
    if channel:
        qs = qs.filter(channel=channel)
    if status:
        qs = qs.filter(status=status)
    if recipient and recipient.strip():
        t = recipient.strip()
        qs = qs.filter(Q(lead__name__icontains=t) | Q(lead__email__icontains=t) | Q(lead__phone__icontains=t))
    return qs
