"""One typed settings object, read from PULSE_* environment variables."""

from functools import lru_cache
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PULSE_", env_file=".env", extra="ignore")

    env: Literal["development", "production", "test"] = "development"
    database_url: str = "sqlite://./pulse.db"
    broadcast_url: str = "memory://"
    host: str = "127.0.0.1"
    port: int = 8000
    # Migrate the database on start (always on for the embedded SQLite default).
    auto_migrate: bool | None = None
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    max_query_depth: int = 12
    max_aliases: int = 30
    max_tokens: int = 5000
    max_batch_size: int = 5000
    token_last_used_resolution_s: int = 60
    log_level: str = "info"
    # Websockets (graphql-transport-ws only)
    ws_init_timeout_s: float = 10.0
    ws_max_subscriptions: int = 50
    # Cross-origin browser pages allowed to open websockets (["*"] = any). Same-origin pages and
    # non-browser clients (no Origin header) are always allowed.
    allowed_origins: list[str] = Field(default_factory=list)
    subscription_min_interval_s: float = 0.25
    stream_buffer_limit: int = 5000
    token_watchdog_interval_s: float = 2.0

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def should_auto_migrate(self) -> bool:
        if self.auto_migrate is not None:
            return self.auto_migrate
        return self.is_sqlite

    @property
    def graphiql(self) -> bool:
        return self.env != "production"

    @property
    def mask_errors(self) -> bool:
        return self.env == "production"


@lru_cache
def get_settings() -> Settings:
    return Settings()
