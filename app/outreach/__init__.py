"""Outreach sequences (SPEC §10): a campaign's ordered steps (automatic email steps, manual
LinkedIn and Twitter steps), the state of each recipient at each step, the manual actions
people mark done (who/when, undo window), integrators' outreach events (reply, RSVP,
LinkedIn accepted, exit, opted out), the scheduler tick that moves due steps to "action
required" at the organization's local midnight, and the leads KPIs (counters per center kept
in the transaction of each change, daily snapshots for weekly/monthly/quarterly/annual
comparisons). Everything derived is rebuildable from the facts (`pulse rebuild-outreach`).

Owns no lower domain: it hooks into them through their hooks (`app.core.hooks`; handlers in `hooks.py` here, registered by `app.wiring`)."""
