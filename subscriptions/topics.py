"""Topic names. Payloads are small: what changed and ids; subscribers re-read state."""


def organization(org_id: int) -> str:
    return f"org.{org_id}"


def campaign(campaign_id: int) -> str:
    return f"campaign.{campaign_id}"
