"""`pulse` command line: serve, migrate, org/token management, demo, schema, counters."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from functools import wraps

import click

from app import db
from app.settings import get_settings
from models.enums import Role, UnitKind


def run_async(fn):
    @wraps(fn)
    def wrapper(*args, **kwargs):
        return asyncio.run(fn(*args, **kwargs))
    return wrapper


async def _with_db(coro_fn, *, migrate: bool | None = None):
    settings = get_settings()
    await db.init_db(settings, migrate=migrate)
    try:
        return await coro_fn()
    finally:
        await db.close_db()


async def _announce_principals_changed() -> None:
    """Tell running API instances to forget cached principals (else their TTL bounds it)."""
    from app.tenancy.access import principals_changed
    from subscriptions.bus import Bus, set_bus

    settings = get_settings()
    bus = Bus(settings.broadcast_url, settings.channel_prefix)
    try:
        await asyncio.wait_for(bus.connect(), 5)
        set_bus(bus)
        await asyncio.wait_for(principals_changed(), 5)
    except Exception:  # noqa: BLE001 - the revocation is committed; the TTL bounds the rest
        pass
    finally:
        set_bus(None)
        with contextlib.suppress(Exception):
            await bus.disconnect()


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


class _Group(click.Group):
    """Reports a bad PULSE_* setting as one line per setting (exit 2), never a traceback."""

    def invoke(self, ctx):
        from app.settings import SettingsError

        try:
            return super().invoke(ctx)
        except SettingsError as exc:
            click.echo(str(exc), err=True)
            sys.exit(2)


@click.group(cls=_Group)
def main() -> None:
    """Campaign Pulse: live marketing campaign tracking over GraphQL."""
    from app.wiring import wire

    wire()


@main.command()
@click.option("--host", default=None, help="Bind address (default PULSE_HOST or 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port (default PULSE_PORT or 8000).")
@click.option("--workers", default=1, type=int, help="Worker processes.")
def serve(host: str | None, port: int | None, workers: int) -> None:
    """Serve the API (migrates the embedded SQLite database on start)."""
    import uvicorn

    from app.web.wsprotocol import PulseWebSocketProtocol

    settings = get_settings()
    if workers > 1 and not settings.broadcast_url.startswith(("redis://", "rediss://")):
        _fail("--workers > 1 needs PULSE_BROADCAST_URL=redis://… (the in-process bus does not cross processes)")
    if workers > 1 and settings.is_sqlite:
        _fail("--workers > 1 needs PostgreSQL (PULSE_DATABASE_URL=postgres://…)")
    uvicorn.run("app.main:create_app", factory=True, host=host or settings.host, port=port or settings.port,
                workers=workers, log_level=settings.log_level, ws=PulseWebSocketProtocol, proxy_headers=True,
                log_config=None, access_log=False,  # app.logs configures logging (JSON in production)
                ws_per_message_deflate=settings.ws_compression,
                # SIGTERM: websockets get 1012 (service restart) at once; open requests get this long.
                timeout_graceful_shutdown=settings.shutdown_timeout_s)


@main.command()
def worker() -> None:
    """Run a sender worker (queue, hand off to providers, start/complete campaigns) until stopped."""
    import signal

    settings = get_settings()
    # A separate worker's changes reach subscribers only through a shared bus, and it shares the
    # database with the API only on PostgreSQL; on the embedded default `pulse serve` runs the
    # worker in its own process.
    if not settings.broadcast_url.startswith(("redis://", "rediss://")):
        _fail("`pulse worker` needs PULSE_BROADCAST_URL=redis://… (the in-process bus does not cross processes; "
              "on the embedded default `pulse serve` runs the worker itself)")
    if settings.is_sqlite:
        _fail("`pulse worker` needs PostgreSQL (PULSE_DATABASE_URL=postgres://…); on SQLite `pulse serve` runs the "
              "worker itself")

    from app.worker import Worker
    from subscriptions.bus import Bus, set_bus

    async def go():
        settings = get_settings()
        await db.init_db(settings)
        bus = Bus(settings.broadcast_url, settings.channel_prefix)
        await bus.connect()
        set_bus(bus)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        click.echo("worker started")
        from app.exports.jobs import ExportRunner

        exports = asyncio.create_task(ExportRunner(settings).run(stop))
        try:
            await Worker(settings).run(stop)
            await exports
        finally:
            await bus.disconnect()
            await db.close_db()
        click.echo("worker stopped")

    asyncio.run(go())


@main.command()
@run_async
async def migrate() -> None:
    """Apply database migrations."""
    await db.run_migrations(get_settings().database_url)
    click.echo("migrations applied")


@main.group()
def documents() -> None:
    """Trusted documents: the operations a client build may run (PULSE_TRUSTED_DOCUMENTS)."""


@documents.command("register")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--manifest", required=True, type=click.Path(dir_okay=False),
              help="Manifest to create or extend ({sha256: document}, graphql-codegen's format).")
def documents_register(files: tuple[str, ...], manifest: str) -> None:
    """Check FILES against the schema and add them to MANIFEST.

    A .graphql file is one document, hashed as its exact text (the text the client sends); a .json
    file is a graphql-codegen persisted-documents.json or an Apollo persisted-query manifest."""
    import json
    from pathlib import Path

    from graphql import parse, validate
    from graphql.error import GraphQLSyntaxError

    from graph.core.persisted import load_manifest, sha256
    from graph.schema import schema

    target = Path(manifest)
    registered = load_manifest(target) if target.exists() else {}
    added: dict[str, str] = {}
    for name in files:
        if name.endswith(".json"):
            try:
                found = load_manifest(name)
            except (ValueError, KeyError) as exc:
                _fail(str(exc))
        else:
            text = Path(name).read_text()
            found = {sha256(text): text}
        for digest, text in found.items():
            try:
                errors = validate(schema._schema, parse(text))
            except GraphQLSyntaxError as exc:
                errors = [exc]
            if errors:
                _fail(f"{name}: " + "; ".join(e.message for e in errors))
            added[digest] = text
    registered.update(added)
    target.write_text(json.dumps(registered, indent=2, sort_keys=True) + "\n")
    click.echo(f"{len(added)} document(s) registered in {target} ({len(registered)} in all)")


@main.group()
def org() -> None:
    """Organizations."""


@org.command("create")
@click.option("--name", required=True)
@click.option("--owner-email", required=True)
@click.option("--currency", default="EUR", show_default=True)
@click.option("--timezone", "tz", default="UTC", show_default=True)
@run_async
async def org_create(name: str, owner_email: str, currency: str, tz: str) -> None:
    """Create an organization with its first owner; prints the owner's token last."""
    from app.core.errors import DomainError
    from app.tenancy.service import create_organization

    async def go():
        try:
            issued = await create_organization(name, owner_email, currency, tz)
        except DomainError as exc:
            _fail(exc.message)
        click.echo(f"organization {issued.user.organization_id} {name!r} created; owner {issued.user.email}")
        click.echo(issued.token)

    await _with_db(go, migrate=True if get_settings().is_sqlite else None)


@main.group()
def token() -> None:
    """API tokens."""


async def _org_or_fail(ref: str):
    from app.tenancy.service import find_organization

    found = await find_organization(ref)
    if found is None:
        _fail(f"no organization {ref!r}")
    return found


@token.command("create")
@click.option("--org", "org_ref", required=True, help="Organization id or name.")
@click.option("--email", required=True)
@click.option("--role", type=click.Choice([r.value for r in Role]), default="OWNER", show_default=True)
@click.option("--scope", default=None, help="Scope unit: zone:NAME|ID or center:NAME|ID (default organization).")
@click.option("--name", default="", help="Label of the token.")
@click.option("--can-export/--no-export", default=None)
@run_async
async def token_create(org_ref: str, email: str, role: str, scope: str | None, name: str, can_export) -> None:
    """Print a new token for a member (created if new; an existing one is never changed), alone on the last line."""
    from app.tenancy.access import Unit
    from app.core.errors import DomainError
    from app.tenancy.service import create_token
    from models.tenancy import Center, Zone

    async def go():
        organization = await _org_or_fail(org_ref)
        unit = None
        if scope:
            kind, _, ref = scope.partition(":")
            model = {"zone": Zone, "center": Center}.get(kind.lower())
            if model is None or not ref:
                _fail("--scope must be zone:NAME|ID or center:NAME|ID")
            obj = await model.get_or_none(organization_id=organization.id, **({"id": int(ref)} if ref.isdigit() else {"name": ref}))
            if obj is None:
                _fail(f"no {kind} {ref!r} in {organization.name!r}")
            unit = (Unit(UnitKind.ZONE, organization.id, obj.id, obj.id) if model is Zone
                    else Unit(UnitKind.CENTER, organization.id, obj.id, obj.zone_id))
        try:
            issued = await create_token(organization.id, email, Role(role), unit, name=name, can_export=can_export)
        except DomainError as exc:
            _fail(exc.message)
        click.echo(f"token {issued.record.id} for {issued.user.email} ({role})")
        click.echo(issued.token)

    await _with_db(go)


@token.command("revoke")
@click.argument("token_id", type=int)
@run_async
async def token_revoke(token_id: int) -> None:
    """Revoke a token by its numeric id."""
    from datetime import datetime, timezone

    from models.tenancy import ApiToken

    async def go():
        n = await ApiToken.filter(id=token_id, revoked_at=None).update(revoked_at=datetime.now(timezone.utc))
        if not n and not await ApiToken.exists(id=token_id):
            _fail(f"no token {token_id}")
        click.echo(f"token {token_id} revoked")
        await _announce_principals_changed()

    await _with_db(go)


@token.command("list")
@click.option("--org", "org_ref", required=True, help="Organization id or name.")
@run_async
async def token_list(org_ref: str) -> None:
    """List tokens of an organization."""
    from models.tenancy import ApiToken

    async def go():
        organization = await _org_or_fail(org_ref)
        for t in await ApiToken.filter(user__organization_id=organization.id).select_related("user").order_by("id"):
            state = f"revoked {t.revoked_at:%Y-%m-%d}" if t.revoked_at else "active"
            used = f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never"
            click.echo(f"{t.id}\t{t.prefix}…\t{t.user.email}\t{Role(t.user.role).value}\t{state}\tlast used {used}\t{t.name}")

    await _with_db(go)


@main.command()
@click.option("--name", default="Demo Retail", show_default=True, help="Organization name.")
@click.option("--leads", "n_leads", default=3000, show_default=True)
@click.option("--seed", default=7, show_default=True)
@click.option("--url", default="http://127.0.0.1:8000/graphql", show_default=True, help="URL printed with the token.")
@run_async
async def demo(name: str, n_leads: int, seed: int, url: str) -> None:
    """Fill the database with a realistic demo organization; prints its timing, then its owner token last.

    The timing line covers the whole command (connecting, migrating, building): wall-clock seconds and
    this process's CPU seconds, with the database backend, so figures quoted in docs come from it."""
    import time

    from app.demo import build_demo

    wall, cpu = time.perf_counter(), time.process_time()
    issued: list[str] = []

    async def go():
        issued.append(await build_demo(name=name, n_leads=n_leads, seed=seed, echo=click.echo))
        click.echo(f"GraphiQL: {url}  (send the header Authorization: Bearer <token>)")

    settings = get_settings()
    await _with_db(go, migrate=True if settings.is_sqlite else None)
    backend = "SQLite" if settings.is_sqlite else "PostgreSQL"
    click.echo(f"pulse demo: {time.perf_counter() - wall:.1f} s wall, {time.process_time() - cpu:.1f} s CPU "
               f"({n_leads} leads, {backend})")
    click.echo(issued[0])


@main.command("export-schema")
@click.option("--output", "-o", default="schema.graphql", show_default=True)
def export_schema(output: str) -> None:
    """Write the GraphQL schema (SDL)."""
    from graph.schema import schema

    text = schema.as_str() + "\n"
    if output == "-":
        click.echo(text, nl=False)
    else:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(text)
        click.echo(f"wrote {output}")


@main.command("rebuild-analytics")
@run_async
async def rebuild_analytics() -> None:
    """Recompute attribution, daily analytics and outcomes of every campaign from sends and goal events."""
    from app.analytics.service import rebuild

    async def go():
        n = await rebuild()
        click.echo(f"rebuilt analytics of {n} campaigns")

    await _with_db(go)


@main.command("rebuild-counters")
@run_async
async def rebuild_counters() -> None:
    """Recompute send counters and campaign spend from the sends and spend entries."""
    from app.delivery.counters import rebuild

    async def go():
        n = await rebuild()
        click.echo(f"rebuilt {n} counter rows")

    await _with_db(go)


@main.command("rebuild-outreach")
@run_async
async def rebuild_outreach() -> None:
    """Recompute recipient step states, per-lead outreach figures and leads-KPI counters from the facts."""
    from app.outreach.service import rebuild

    async def go():
        stats = await rebuild()
        click.echo(f"rebuilt outreach of {stats['organizations']} organizations ({stats['leads']} leads)")

    await _with_db(go)


if __name__ == "__main__":
    main()
