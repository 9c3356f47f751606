"""GraphQL of outreach sequences (SPEC §10): steps, recipient step states, the action-required
list, leads KPIs and campaign outreach KPIs, mark-done/undo, outreach events, and the live
`leadsKpis` subscription. Thin: decode ids, call app.outreach, shape the answer.
(queries.py, mutations.py, subscriptions.py, types.py; enums.py for the leads filter.)"""
