"""GraphQL of tenancy: Organization, Zone, Center, User, ApiToken; viewer, tokens, users; organizationCreate,
tokenCreate, tokenRevoke, zoneCreate, centerCreate; scope arguments (`unit_ref`).
"""
