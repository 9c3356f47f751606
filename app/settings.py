"""One typed settings object, read from PULSE_* environment variables."""

from functools import lru_cache
from typing import Literal

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PULSE_", env_file=".env", extra="ignore")

    env: Literal["development", "production", "test"] = "development"
    database_url: str = "sqlite://./pulse.db"
    # PostgreSQL: connections per process (asyncpg's pool; Tortoise's default was 5, which a
    # server with dozens of concurrent requests, hub rounds and the in-process worker outgrows).
    # Size it with PostgreSQL's max_connections in mind: processes × this ≤ max_connections.
    db_pool_size: int = Field(default=10, ge=1, le=1000)
    broadcast_url: str = "memory://"
    # Prepended to every Redis channel name (and to the Redis keys of persisted queries and rate
    # limits): deployments sharing one Redis set different prefixes, e.g. "staging:".
    channel_prefix: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    # Migrate the database on start (always on for the embedded SQLite default).
    auto_migrate: bool | None = None
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    # Seconds allowed between two chunks of a request body (a client trickling bytes is cut off with 408).
    body_read_timeout_s: float = Field(default=10.0, gt=0)
    # Introspection (`__schema`, `__type`) without a valid token: allowed by default except in
    # production, where an anonymous introspection request gets 401 UNAUTHENTICATED.
    anonymous_introspection: bool | None = None
    # GET /metrics: on its own port (then not on the API port), and/or behind `Authorization: Bearer
    # <PULSE_METRICS_TOKEN>`. In production with neither, the API port does not serve it (404).
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    metrics_token: str | None = None
    max_query_depth: int = 12
    max_aliases: int = 30
    max_tokens: int = 5000
    max_batch_size: int = 5000
    # Query cost (graph/core/limits.py, docs/api.md): the most one operation may cost (nodes it can
    # return through `first`/`last`, multiplied down nested connections); 0 = no limit.
    max_query_cost: int = Field(default=20000, ge=0)
    # Rate limit in cost points per token and window (Redis when the broadcast URL is redis://…,
    # shared by every instance; in memory otherwise); 0 points = off.
    rate_limit_points: int = Field(default=100000, ge=0)
    rate_limit_window_s: int = Field(default=60, ge=1)
    token_last_used_resolution_s: int = 60
    # Principal cache (app/tenancy/access.py): a token's member, role and scope are reused for this
    # long. Revocations and role/scope changes are also pushed to every instance over the bus, so
    # this is the worst case when a bus message is lost. 0 turns the cache off.
    principal_cache_ttl_s: float = Field(default=5.0, ge=0, le=60)
    # Garbage collector (app/main.py lifespan, docs/architecture.md "Garbage collection"): once started,
    # what the process holds is moved out of the collector's generations (gc.freeze): a full collection
    # then scans what requests left behind, not the schema and the modules (a 80-100 ms pause → ~4 ms).
    # Unset: on, except under PULSE_ENV=test (a test process starts many apps).
    gc_freeze: bool | None = None
    # Response cache (graph/core/cache.py, docs/architecture.md "Response cache"): repeated reads of plain
    # stored data answered from memory, keyed on the organization's data version. 0 entries = off.
    response_cache_entries: int = Field(default=0, ge=0)
    response_cache_bytes: int = Field(default=64 * 1024 * 1024, ge=64 * 1024)
    # Backstop for changes made outside the API and the bus (SQL by hand, maintenance commands).
    response_cache_ttl_s: float = Field(default=60.0, gt=0)
    log_level: str = "info"
    # Automatic persisted queries (graph/core/persisted.py): in-process LRU size; Redis entry lifetime.
    apq_cache_size: int = Field(default=1000, ge=1)
    apq_ttl_s: int = Field(default=7 * 86400, ge=60)
    # Trusted documents: comma-separated manifest files; when set, only their operations run.
    trusted_documents: str | None = None
    # Websockets (graphql-transport-ws only)
    ws_init_timeout_s: float = 10.0
    ws_max_subscriptions: int = 50
    # permessage-deflate on websockets. Off by default: subscription messages are small (a few
    # hundred bytes), and compressing each one for each socket costs more CPU on both ends (and a
    # zlib context per connection) than the bytes it saves. See docs/api.md.
    ws_compression: bool = False
    # Cross-origin browser pages allowed to open websockets (["*"] = any). Same-origin pages and
    # non-browser clients (no Origin header) are always allowed.
    allowed_origins: list[str] = Field(default_factory=list)
    # The same origins get CORS on HTTP (app/web/cors.py); browsers cache a preflight this long.
    cors_max_age_s: int = Field(default=600, ge=0)
    # Serve the built live dashboard (examples/dashboard/dist) at /dashboard/. Default: on in
    # development when the build exists.
    dashboard: bool | None = None
    dashboard_dir: str | None = None
    # `pulse serve`: seconds to wait for open requests after SIGTERM (websockets get 1012 at once).
    shutdown_timeout_s: float = Field(default=5.0, gt=0)
    subscription_min_interval_s: float = 0.25
    # Hubs check every this many seconds whether their topic moved without a bus message (a lost
    # publish) and then run a round (docs/architecture.md, "Reconciliation").
    subscription_reconcile_interval_s: float = Field(default=5.0, gt=0)
    stream_buffer_limit: int = 5000
    token_watchdog_interval_s: float = 2.0
    # The API's campaign scheduler (when the worker runs elsewhere): seconds between ticks.
    scheduler_interval_s: float = Field(default=5.0, gt=0)
    # The sender (worker). In-process by default on the embedded SQLite default.
    worker_in_process: bool | None = None
    sender_rate: float = Field(default=50.0, gt=0)  # messages queued per second per worker
    sender_batch: int = Field(default=200, ge=1, le=5000)
    sender_tick_s: float = Field(default=0.5, gt=0)
    dispatch_lease_s: float = 60.0
    dispatch_max_attempts: int = 5
    dispatch_backoff_s: float = 2.0
    # A message handed to a provider that never reports back ends FAILED after this long.
    receipt_timeout_s: float = 86_400.0
    simulated_seed: int = 7
    simulated_refuse_rate: float = Field(default=0.02, ge=0, le=1)
    simulated_transient_rate: float = Field(default=0.0, ge=0, le=1)
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str = "Campaign Pulse <noreply@campaign-pulse.invalid>"
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    smtp_timeout_s: float = 10.0
    webhook_url: str | None = None
    webhook_secret: str = ""
    webhook_timeout_s: float = 10.0
    # Protected exports (app/exports): where encrypted files wait for their download
    # ("directory": export_dir, local or shared by every instance; "postgres": large objects),
    # how long a download link lives, and the background job (embedded with the in-process worker).
    export_storage: Literal["directory", "postgres"] = "directory"
    export_dir: str = "./exports"
    export_link_ttl_s: float = Field(default=900.0, gt=0)
    export_public_url: str | None = None
    export_poll_s: float = Field(default=1.0, gt=0)
    export_lease_s: float = Field(default=120.0, gt=0)
    export_worker_in_process: bool | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def should_auto_migrate(self) -> bool:
        if self.auto_migrate is not None:
            return self.auto_migrate
        return self.is_sqlite

    @model_validator(mode="after")
    def _webhook_needs_a_secret(self):
        if self.webhook_url and len(self.webhook_secret) < 16:
            raise ValueError("PULSE_WEBHOOK_SECRET (16+ characters) is required when PULSE_WEBHOOK_URL is set")
        return self

    @property
    def runs_worker_in_process(self) -> bool:
        if self.worker_in_process is not None:
            return self.worker_in_process
        return self.is_sqlite

    @property
    def runs_exports_in_process(self) -> bool:
        if self.export_worker_in_process is not None:
            return self.export_worker_in_process
        return self.runs_worker_in_process

    @property
    def graphiql(self) -> bool:
        return self.env != "production"

    @property
    def allows_anonymous_introspection(self) -> bool:
        if self.anonymous_introspection is not None:
            return self.anonymous_introspection
        return self.env != "production"

    @property
    def mask_errors(self) -> bool:
        return self.env == "production"


class SettingsError(ValueError):
    """A bad PULSE_* setting: one line per wrong setting, naming it and saying why."""


def describe_settings_error(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = err.get("loc") or ()
        message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        if loc:
            name = "PULSE_" + "_".join(str(p) for p in loc).upper()
            given = err.get("input")
            shown = f" (got {given!r})" if isinstance(given, (str, int, float)) and "secret" not in name.lower() \
                and "password" not in name.lower() else ""
            lines.append(f"{name}: {message}{shown}")
        else:
            lines.append(message)  # a cross-field rule: its message names the settings
    return "\n".join(f"invalid setting: {line}" for line in lines)


@lru_cache
def get_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        raise SettingsError(describe_settings_error(exc)) from None
