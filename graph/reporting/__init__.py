"""GraphQL of reporting: Dashboard, Insight, CampaignKpis; `dashboard`, `dashboardKpis`, `campaignKpis`.
"""
