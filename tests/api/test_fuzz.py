"""Generated GraphQL operations (hypothesis-graphql, from our own schema): no input may
produce a 500 or an internal error. Runs against the production-mode app, where an
unexpected exception would show up as the masked "Unexpected error."."""

import datetime as dt
from decimal import Decimal

import graphql
import httpx
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st
from hypothesis_graphql import mutations, queries

from app.main import create_app
from app.settings import Settings
from graph.schema import schema

SCALARS = {
    "Decimal": st.decimals(min_value=Decimal("-1e20"), max_value=Decimal("1e20"), allow_nan=False, places=4)
    .map(lambda d: graphql.StringValueNode(value=str(d))),
    "DateTime": st.datetimes(min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2100, 1, 1),
                             timezones=st.sampled_from([dt.timezone.utc, None]))
    .map(lambda t: graphql.StringValueNode(value=t.isoformat())),
    "Date": st.dates().map(lambda d: graphql.StringValueNode(value=d.isoformat())),
}


def _collect(strategy, n: int) -> list[str]:
    out: list[str] = []

    @hsettings(max_examples=n, deadline=None, database=None,
               suppress_health_check=list(HealthCheck))
    @given(strategy)
    def draw(query):
        out.append(query)

    draw()
    return out


async def _run(settings, token: str, documents: list[str]) -> int:
    """Returns how many operations executed (got data back), to prove the fuzz reaches resolvers."""
    executed = 0
    prod = create_app(Settings(**{**settings.model_dump(), "env": "production"}))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=prod), base_url="http://fuzz") as client:
        for doc in documents:
            r = await client.post("/graphql", json={"query": doc}, headers={"Authorization": f"Bearer {token}"})
            assert r.status_code < 500, (doc, r.status_code, r.text[:500])
            body = r.json()
            for error in body.get("errors") or []:
                assert error["message"] != "Unexpected error.", (doc, body)
            executed += bool(body.get("data"))
    return executed


async def test_generated_queries_never_fail_internally(tenant, settings):
    sdl = schema.as_str()
    docs = _collect(queries(sdl, custom_scalars=SCALARS), 60)
    assert await _run(settings, tenant.gql.token, docs) > len(docs) // 4


async def test_generated_mutations_never_fail_internally(tenant, settings):
    sdl = schema.as_str()
    docs = _collect(mutations(sdl, custom_scalars=SCALARS), 80)
    assert await _run(settings, tenant.gql.token, docs) > 0
