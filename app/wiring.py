"""Start-up wiring: each higher domain registers its in-transaction handlers on a lower domain's
hooks (see `app.core.hooks`). Called by every entry point (`create_app`, the CLI, the worker)
before any service runs; idempotent."""

from __future__ import annotations

from app.analytics import service as analytics
from app.audience import leads
from app.billing import budget
from app.campaigns import service as campaigns
from app.delivery import ingest
from app.outreach import hooks as outreach
from app.sender import service as sender

_wired = False


def wire() -> None:
    global _wired
    if _wired:
        return
    # A lead upserted → ALWAYS_ON campaigns add the leads that now match their audience.
    leads.leads_upserted.register(campaigns.add_matching_recipients)
    # Before a lead upsert locks any lead: the campaign rows it will lock (lock order: campaigns → leads).
    leads.leads_locking.register(campaigns.lock_growing_campaigns)
    # Recipients added (launch, ALWAYS_ON growth) → sender jobs, then attribution of their goals.
    campaigns.recipients_added.register(sender.on_recipients_added)
    campaigns.recipients_added.register(analytics.on_recipients_added)
    campaigns.budget_changed.register(budget.raise_alerts)
    campaigns.settings_changed.register(analytics.on_settings_changed)
    # Sends changed in an ingestion batch → analytics rollups, then spend and budget alerts.
    ingest.sends_changed.register(analytics.on_sends_changed_hook)
    ingest.sends_changed.register(budget.on_sends_changed)
    # Outreach (above the sender): email steps, live recipients, leads KPIs and their filters.
    ingest.sends_changed.register(outreach.on_sends_changed_hook)
    leads.leads_upserted.register(outreach.on_leads_upserted)
    leads.lead_filter.register(outreach.lead_filter)
    campaigns.status_changed.register(outreach.on_campaign_status)
    sender.jobs_creating.register(outreach.on_jobs_creating)
    sender.campaign_busy.register(outreach.campaign_busy)
    _wired = True
