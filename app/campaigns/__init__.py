"""Campaigns: definition, settings, audience resolution into recipients (treatment/control),
lifecycle state machine, clone (`service`). Declares the `recipients_added`, `budget_changed` and
`settings_changed` hooks that the sender, billing and analytics fill.
"""
