"""Reporting: figures read across domains from their rollups — campaign metrics per channel,
dashboard KPIs, insights, the campaign KPI snapshot (`kpis`).
"""
