"""Billing: budgets, logged spend, budget alerts (`budget`); credit wallets, their ledger and the
credit consumption report (`credits`).
"""
