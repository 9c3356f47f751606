"""Tortoise models. No business rules and no GraphQL here."""

MODEL_MODULES = [
    "models.tenancy",
    "models.campaigns",
    "models.leads",
    "models.sends",
    "models.budgets",
    "models.stats",
    "models.credits",
    "models.goals",
    "models.outreach",
    "models.exports",
]
