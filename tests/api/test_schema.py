"""The published contract: schema.graphql is current, everything is described,
and the database migrations match the models."""

from pathlib import Path

from graphql import GraphQLEnumType, GraphQLInputObjectType, GraphQLInterfaceType, GraphQLObjectType

from graph.schema import schema

ROOT = Path(__file__).resolve().parents[2]


def test_schema_file_is_current():
    committed = (ROOT / "schema.graphql").read_text()
    assert committed == schema.as_str() + "\n", "schema.graphql is stale: run `make schema` (pulse export-schema)"


def test_every_type_field_argument_and_enum_value_is_described():
    missing = []
    for name, gtype in schema._schema.type_map.items():
        if name.startswith("__") or name in {"String", "Int", "Float", "Boolean", "ID"}:
            continue
        if not getattr(gtype, "description", None):
            missing.append(name)
        if isinstance(gtype, (GraphQLObjectType, GraphQLInterfaceType, GraphQLInputObjectType)):
            for fname, field in gtype.fields.items():
                if not field.description:
                    missing.append(f"{name}.{fname}")
                for aname, arg in getattr(field, "args", {}).items():
                    if not arg.description:
                        missing.append(f"{name}.{fname}({aname})")
        if isinstance(gtype, GraphQLEnumType):
            missing += [f"{name}.{v}" for v, value in gtype.values.items() if not value.description]
    assert not missing, f"undescribed: {missing}"


def test_public_contract_names_exist():
    q = schema._schema.query_type.fields
    m = schema._schema.mutation_type.fields
    for name in ("node", "viewer", "dashboard", "campaigns", "campaign", "leads"):
        assert name in q
    for name in ("campaignCreate", "campaignUpdate", "campaignLaunch", "campaignPause", "campaignResume",
                 "campaignClone", "campaignComplete", "campaignCancel", "leadsUpsert", "audienceSet", "spendLog",
                 "sendEventsIngest", "tokenCreate", "tokenRevoke", "organizationCreate"):
        assert name in m
    campaign = schema._schema.type_map["Campaign"].fields
    for name in ("id", "name", "description", "type", "status", "createdFrom", "channels", "audienceSize", "reach",
                 "controlGroupPercent", "goal", "startAt", "endAt", "createdAt", "metrics", "budget", "insights",
                 "sends"):
        assert name in campaign, name


async def test_migrations_match_models(app):
    """Fails when a model changed without `tortoise makemigrations`."""
    from tortoise import Tortoise
    from tortoise.migrations.autodetector import MigrationAutodetector

    from app.db import tortoise_config

    apps_dict = tortoise_config("sqlite://:memory:")["apps"]
    detector = MigrationAutodetector(Tortoise.apps, apps_dict)
    writers = await detector.changes()
    assert not writers, "models changed without a migration: run `tortoise makemigrations`"
