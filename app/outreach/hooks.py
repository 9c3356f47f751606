"""The outreach domain's handlers in lower domains' transactions (registered by app.wiring)."""

from __future__ import annotations

from collections import defaultdict

from tortoise.expressions import Q, Subquery

from app.db import execute, fetch, in_list
from app.outreach import service, state
from models.leads import Lead
from models.outreach import LeadOutreach


async def on_sends_changed(changed, old_states, tz, writes: list | None = None) -> None:
    """Ingestion moved sends: email touches count for `engaged`; email steps follow their send."""
    emails = [s for s in changed if getattr(s.channel, "value", s.channel) == "EMAIL"]
    if not emails:
        return
    by_org: dict[int, dict] = defaultdict(lambda: defaultdict(dict))
    pairs_by_org: dict[int, set] = defaultdict(set)
    for s in emails:
        old = old_states.get(s.id)
        was = bool(old and old.get("was_sent"))
        if bool(s.was_sent) != was:
            cur = by_org[s.organization_id][s.lead_id].get("touches", ("+", 0))[1]
            by_org[s.organization_id][s.lead_id]["touches"] = ("+", cur + (1 if s.was_sent else -1))
        pairs_by_org[s.organization_id].add((s.campaign_id, s.lead_id))
    known: dict[int, set[int]] = {}  # org -> its campaigns with steps, when read with the lead locks
    for org_id, changes in by_org.items():
        found = await state.change_leads(org_id, changes, writes,
                                         steps_of={c for c, _ in pairs_by_org.get(org_id, ())} or None)
        if found is not None:
            known[org_id] = found
    for org_id, pairs in pairs_by_org.items():
        with_steps = known.get(org_id)
        if with_steps is None:
            cin, params = in_list("campaign_id", sorted({c for c, _ in pairs}))
            with_steps = {r["campaign_id"] for r in await fetch(
                f"SELECT DISTINCT campaign_id FROM outreach_step WHERE {cin}", params)}
        pairs = {p for p in pairs if p[0] in with_steps}
        if pairs:
            await state.recompute(org_id, pairs)


async def on_jobs_creating(campaign_id: int, lead_ids) -> set[str]:
    return await service.add_recipients(campaign_id, lead_ids)


async def on_leads_changed(org_id: int, lead_ids) -> None:
    """New leads count in `total`; a changed email, verification, social URL or home center moves them."""
    await state.ensure_leads(org_id, lead_ids)
    changes = {}
    for lead in await Lead.filter(id__in=list(lead_ids)).values(
            "id", "zone_id", "center_id", "email", "email_verified", "linkedin_url", "twitter_url"):
        changes[lead["id"]] = {
            "zone_id": ("=", lead["zone_id"] or 0), "center_id": ("=", lead["center_id"] or 0),
            "verified": ("=", bool(lead["email_verified"] and lead["email"])),
            "social_only": ("=", bool(lead["email"] is None and (lead["linkedin_url"] or lead["twitter_url"])))}
    await state.change_leads(org_id, changes)
    # recipient steps carry the lead's scope columns
    for lead_id, ch in changes.items():
        await execute("UPDATE outreach_recipient_step SET zone_id = ?, center_id = ? WHERE lead_id = ? AND "
                      "(zone_id <> ? OR center_id <> ?)", [ch["zone_id"][1], ch["center_id"][1], lead_id,
                                                           ch["zone_id"][1], ch["center_id"][1]])


async def on_campaign_status(campaign, old_status) -> None:
    await service.sync_live(campaign.id)


def lead_filter(flt: dict) -> Q:
    """The leads-list filter by KPI names; each matches exactly what its KPI counts."""
    q = Q()

    def having(**conditions) -> Q:
        return Q(id__in=Subquery(LeadOutreach.filter(**conditions).values("lead_id")))

    status = flt.get("status")
    if status == "ACTIVE":
        q &= having(live__gt=0)
    elif status == "INACTIVE":
        q &= ~having(live__gt=0)
    track = flt.get("track")
    if track == "ON_TRACK":
        q &= having(steps__gt=0, overdue=0)
    elif track == "OFF_TRACK":
        q &= having(overdue__gt=0)
    if flt.get("action_required") is True:
        q &= having(actions__gt=0)
    elif flt.get("action_required") is False:
        q &= ~having(actions__gt=0)
    if flt.get("engaged") is True:
        q &= having(touches__gt=0)
    elif flt.get("engaged") is False:
        q &= ~having(touches__gt=0)
    if flt.get("social_only") is True:
        q &= Q(email__isnull=True) & (Q(linkedin_url__not_isnull=True) | Q(twitter_url__not_isnull=True))
    return q


async def campaign_busy(campaign_id: int) -> bool:
    """A campaign with steps still to do does not complete by itself."""
    return bool(await fetch("SELECT 1 FROM outreach_recipient_step WHERE campaign_id = ? AND state = 'SCHEDULED' "
                            "LIMIT 1", [campaign_id]))


async def on_sends_changed_hook(batch) -> None:
    """`delivery.sends_changed` handler."""
    await on_sends_changed(batch.changed, batch.old_states, batch.tz, getattr(batch, "writes", None))


async def on_leads_upserted(org_id: int, lead_ids) -> list[int]:
    """`audience.leads_upserted` handler (grows no campaign)."""
    await on_leads_changed(org_id, lead_ids)
    return []
