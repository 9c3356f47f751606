"""`python -m bench.fuzz [--operations N] [--database-url URL]` — generated GraphQL operations
(hypothesis-graphql, from the schema) against a production-mode app (error masking on), as an
organization owner and as a center-scoped analyst. Every operation is sent twice: inline, and with
its arguments as variables (where coercion errors come from). Fails on any HTTP 5xx or any
"Unexpected error." answer (a masked server fault). See bench/README.md."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
import tempfile
from decimal import Decimal

import graphql
import httpx
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st
from hypothesis_graphql import mutations, queries

from app.main import create_app
from app.settings import Settings
from graph.schema import schema

SCALARS = {
    "Decimal": st.one_of(st.decimals(min_value=Decimal("-1e20"), max_value=Decimal("1e20"), allow_nan=False, places=4)
                         .map(str), st.sampled_from(["abc", "NaN", "1e5", ""]))
    .map(lambda d: graphql.StringValueNode(value=d)),
    "DateTime": st.one_of(st.datetimes(min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2100, 1, 1),
                                       timezones=st.sampled_from([dt.timezone.utc, None])).map(lambda t: t.isoformat()),
                          st.sampled_from(["2024-02-30T00:00:00Z", "0000-01-01T00:00:00Z", "x"]))
    .map(lambda t: graphql.StringValueNode(value=t)),
    "Date": st.one_of(st.dates().map(lambda d: d.isoformat()), st.sampled_from(["2024-02-30", "0000-01-01"]))
    .map(lambda d: graphql.StringValueNode(value=d)),
}


def documents(n_queries: int, n_mutations: int, seed: int | None = None) -> list[str]:
    from hypothesis import seed as hseed

    sdl = schema.as_str()
    out: list[str] = []
    for strategy, n in ((queries(sdl, custom_scalars=SCALARS), n_queries),
                        (mutations(sdl, custom_scalars=SCALARS), n_mutations)):
        @hsettings(max_examples=n, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(strategy)
        def draw(query):
            out.append(query)

        (hseed(seed)(draw) if seed is not None else draw)()
    return out


def as_variables(doc: str) -> tuple[str, dict] | None:
    """The same operation with each root field's literal arguments moved into variables (typed
    from the schema), so that bad values meet variable coercion instead of validation."""
    try:
        ast = graphql.parse(doc)
    except graphql.GraphQLError:
        return None
    gschema = schema._schema
    op = ast.definitions[0]
    root = gschema.mutation_type if op.operation == graphql.OperationType.MUTATION else gschema.query_type
    defs, variables, selections = [], {}, []
    for sel in op.selection_set.selections:
        field = root.fields.get(sel.name.value) if isinstance(sel, graphql.FieldNode) else None
        if field is None:
            selections.append(sel)
            continue
        args = []
        for arg in sel.arguments or ():
            gtype = field.args.get(arg.name.value)
            if gtype is None:
                continue
            name = f"v{len(variables)}"
            variables[name] = graphql.value_from_ast_untyped(arg.value)
            defs.append(graphql.VariableDefinitionNode(
                variable=graphql.VariableNode(name=graphql.NameNode(value=name)),
                type=graphql.parse_type(str(gtype.type))))
            args.append(graphql.ArgumentNode(name=arg.name, value=graphql.VariableNode(name=graphql.NameNode(value=name))))
        selections.append(graphql.FieldNode(alias=sel.alias, name=sel.name, arguments=tuple(args),
                                            directives=sel.directives, selection_set=sel.selection_set))
    op = graphql.OperationDefinitionNode(operation=op.operation, name=op.name, directives=op.directives,
                                         variable_definitions=tuple(defs),
                                         selection_set=graphql.SelectionSetNode(selections=tuple(selections)))
    return graphql.print_ast(graphql.DocumentNode(definitions=(op,))), variables


async def run(client: httpx.AsyncClient, token: str, docs: list[str], keep_going: bool = False) -> dict:
    """Sends every document (inline and with variables); returns counts. A failure raises at once,
    or with `keep_going` is collected in stats["failures"] (the run goes on)."""
    stats = {"operations": 0, "with_data": 0, "errors": 0, "failures": [], "forbidden": 0, "nul": 0}

    def fail(message: str) -> None:
        if not keep_going:
            raise AssertionError(message)
        stats["failures"].append(message)

    for doc in docs:
        for query, variables in ((doc, {}), as_variables(doc) or (doc, {})):
            r = await client.post("/graphql", json={"query": query, "variables": variables},
                                  headers={"Authorization": f"Bearer {token}"})
            stats["operations"] += 1
            stats["forbidden"] += '"FORBIDDEN"' in r.text
            stats["nul"] += "must not contain NUL" in r.text
            if r.status_code >= 500:
                fail(f"HTTP {r.status_code} for {query!r} {variables!r}: {r.text[:500]}")
                continue
            body = r.json()
            for error in body.get("errors") or []:
                stats["errors"] += 1
                if error.get("message") == "Unexpected error.":
                    fail(f"masked server fault for {query!r} {variables!r}: {body}")
                elif not (error.get("extensions") or {}).get("code"):
                    fail(f"error without a code for {query!r}: {error}")
            stats["with_data"] += bool(body.get("data"))
    return stats


async def principals(client: httpx.AsyncClient) -> tuple[str, str]:
    """A new organization: its owner's token and a center-scoped analyst's token."""
    import uuid

    from app.tenancy.service import create_organization

    name = f"fuzz-{uuid.uuid4().hex[:8]}"
    owner = (await create_organization(name, f"owner@{name}.test", "EUR", "UTC")).token

    async def gql(query: str, variables: dict) -> dict:
        r = await client.post("/graphql", json={"query": query, "variables": variables},
                              headers={"Authorization": f"Bearer {owner}"})
        return r.json()["data"]

    zone = (await gql('mutation{ zoneCreate(name:"z"){ zone{ id } } }', {}))["zoneCreate"]["zone"]["id"]
    center = (await gql('mutation($z:ID!){ centerCreate(zoneId:$z, name:"c"){ center{ id } } }', {"z": zone})
              )["centerCreate"]["center"]["id"]
    d = await gql("mutation($i:TokenCreateInput!){ tokenCreate(input:$i){ token } }",
                  {"i": {"email": f"analyst@{name}.test", "role": "ANALYST", "scopeUnitId": center}})
    return owner, d["tokenCreate"]["token"]


async def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.fuzz", description=__doc__)
    p.add_argument("--operations", type=int, default=1200, help="generated documents per principal (default 1200)")
    p.add_argument("--database-url", default=None, help="default: a throwaway SQLite file")
    p.add_argument("--broadcast-url", default="memory://", help="the bus, e.g. redis://127.0.0.1:6379/0 "
                   "(default: in-process)")
    p.add_argument("--seed", type=int, default=None, help="hypothesis seed (the same documents again)")
    p.add_argument("--keep-going", action="store_true", help="report every failure at the end instead of "
                   "stopping at the first")
    args = p.parse_args(argv)
    from asgi_lifespan import LifespanManager

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(env="production", database_url=args.database_url or f"sqlite://{tmp}/fuzz.db",
                            broadcast_url=args.broadcast_url, auto_migrate=True, worker_in_process=False)
        app = create_app(settings)
        async with LifespanManager(app, startup_timeout=60):
            n_q = args.operations // 2
            docs = documents(n_q, args.operations - n_q, args.seed)
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fuzz",
                                         timeout=60) as client:
                owner, analyst = await principals(client)
                failures = 0
                for who, token in (("owner", owner), ("center analyst", analyst)):
                    stats = await run(client, token, docs, keep_going=args.keep_going)
                    failures += len(stats["failures"])
                    for failure in stats["failures"]:
                        print(f"FAILURE ({who}): {failure}", file=sys.stderr)
                    print(f"{who}: {stats['operations']} operations, {stats['with_data']} with data, "
                          f"{stats['errors']} errors, {stats['forbidden']} answers with FORBIDDEN, {stats['nul']} "
                          f"refusing NUL text, {len(stats['failures'])} failures (HTTP 5xx, "
                          "'Unexpected error.' or an error without a code)", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
