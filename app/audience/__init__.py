"""Audience: leads (recipients), their upsert and filters (`leads`). Declares the
`leads_upserted` hook that campaigns fill (ALWAYS_ON growth).
"""
