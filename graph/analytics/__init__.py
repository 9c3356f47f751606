"""GraphQL of analytics: stats, funnel, lift, comparisons; `goalEventsIngest`.
"""
