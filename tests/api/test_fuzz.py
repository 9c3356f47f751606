"""Generated GraphQL operations (hypothesis-graphql, from our own schema; bench/fuzz.py, whose long
run is `python -m bench.fuzz`): against the production-mode app (masking on), as an owner and as a
center-scoped analyst, inline and with variables, no input may produce an HTTP 5xx or a masked
"Unexpected error." (a server fault), and every error carries a code."""

import httpx

from app.main import create_app
from app.settings import Settings
from bench.fuzz import documents, principals, run


async def test_generated_operations_never_fail_internally(app, settings):
    prod = create_app(Settings(**{**settings.model_dump(), "env": "production"}))
    docs = documents(60, 80)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=prod), base_url="http://fuzz", timeout=60) as client:
        owner, analyst = await principals(client)
        for token in (owner, analyst):
            stats = await run(client, token, docs)
            assert stats["operations"] == 2 * len(docs)
            assert stats["with_data"] > len(docs) // 4  # the fuzz reaches resolvers
