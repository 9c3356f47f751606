"""PULSE_DB_POOL_SIZE sizes the PostgreSQL pool (Tortoise's default of 5 was too small for a server)."""

from app.db import connection_config
from app.settings import Settings


def test_the_pool_size_setting_reaches_asyncpg_and_the_url_wins():
    assert Settings().db_pool_size == 10
    config = connection_config("postgres://u@h:5432/d", Settings(db_pool_size=24).db_pool_size)
    assert config["credentials"]["maxsize"] == 24
    assert connection_config("postgres://u@h:5432/d?maxsize=3", 24)["credentials"]["maxsize"] == "3"
    assert connection_config("sqlite://:memory:", 24) == "sqlite://:memory:"


async def test_a_running_server_uses_the_setting(app, settings):
    from tortoise import connections

    client = connections.get("default")
    if client.capabilities.dialect != "postgres":
        return  # SQLite has one connection
    assert client.pool_maxsize == settings.db_pool_size
