"""GraphQL of billing: budget, spend entries, budget alerts, credit wallets and the consumption report;
`spendLog`, `creditsTopUp`, `budgetAlerts` (query and subscription), `creditWallets`, `creditConsumption`.
"""
