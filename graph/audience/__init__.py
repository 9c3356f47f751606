"""GraphQL of the audience: Lead, LeadInput, LeadFilter; `leads`, `leadsUpsert`.
"""
