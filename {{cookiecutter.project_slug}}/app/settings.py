{%- set db = cookiecutter.database -%}
"""Configuration from the environment and `.env`.

Pool defaults are the ones chosen for {{ {'sqlite': 'SQLite', 'postgresql': 'PostgreSQL', 'mysql': 'MySQL/MariaDB'}[db] }}: docs/configuration.md says why.
Every value can be overridden by the upper-case environment variable of the same
name (e.g. `DB_POOL_SIZE=20`).
Docs: https://docs.pydantic.dev/latest/concepts/pydantic_settings/
"""

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal, Self

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

DRIVER = "{{ cookiecutter.__url_scheme }}"
EXAMPLE_URL = "{{ cookiecutter.__database_url }}"
# .env.example holds this placeholder; only ENVIRONMENT=development accepts it.
PLACEHOLDER = "change-me"
{%- if db == "mysql" %}
IsolationLevel = Literal["READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE"]
{%- endif %}


@dataclass(frozen=True)
class PoolOptions:
    """How one engine pools and bounds its connections."""

    size: int
    max_overflow: int
    timeout: float
{%- if db == "sqlite" %}
    busy_timeout: float
{%- else %}
    recycle: int
    pre_ping: bool
    connect_timeout: float
    statement_timeout_ms: int
{%- endif %}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    debug: bool = False
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"
    log_requests: bool = Field(default=True, description="One log line per request.")
    secret_key: str = Field(
        default=PLACEHOLDER, min_length=8, description="Signs pagination cursors."
    )
    readiness_timeout: float = Field(
        default=1.0, gt=0, description="Seconds /readyz waits for each database to answer."
    )
    # Read by uvicorn too (its --workers default): how many processes serve.
    web_concurrency: int = Field(default=1, ge=1, description="Worker processes per instance.")
{%- if db != "sqlite" %}
    service_instances: int = Field(
        default=1, ge=1, description="Instances (containers, pods) running at once, at most."
    )
{%- endif %}
    otel_enabled: bool = Field(
        default=False, description="Trace requests and SQL with OpenTelemetry (the otel extra)."
    )
    otel_service_name: str = "{{ cookiecutter.project_slug }}"

    database_url: str = EXAMPLE_URL
    database_echo: bool = Field(
        default=False, description="Log every SQL statement (through the app's log format)."
    )
    db_slow_query_ms: float | None = Field(
        default=None, gt=0, description="Log statements slower than this; unset disables it."
    )
{%- if db == "sqlite" %}

    # A file database is served by one writer at a time: a small pool is enough,
    # and the busy timeout makes a second writer wait instead of failing at once.
    db_pool_size: int = Field(default=5, ge=1)
    db_max_overflow: int = Field(default=0, ge=0)
    db_pool_timeout: float = Field(default=5.0, gt=0)
    db_busy_timeout: float = Field(default=5.0, ge=0, description="Seconds to wait for a lock.")
{%- elif db == "postgresql" %}

    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=10, ge=0)
    db_pool_timeout: float = Field(default=5.0, gt=0)
    db_pool_recycle: int = Field(default=1800, description="Seconds before reconnecting.")
    db_pool_pre_ping: bool = True
    db_connect_timeout: float = Field(default=5.0, gt=0)
    db_statement_timeout_ms: int = Field(default=30_000, ge=0, description="0 disables it.")
    db_application_name: str = "{{ cookiecutter.project_slug }}"
    db_pgbouncer: bool = Field(
        default=False,
        description="Behind PgBouncer (transaction mode): no prepared-statement cache.",
    )
{%- else %}

    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=10, ge=0)
    db_pool_timeout: float = Field(default=5.0, gt=0)
    # Safely below the server's wait_timeout (28800 s by default, often 300 s or
    # less behind proxies), so the pool never hands out a connection the server closed.
    db_pool_recycle: int = Field(default=280, description="Seconds before reconnecting.")
    db_pool_pre_ping: bool = True
    db_connect_timeout: float = Field(default=5.0, gt=0)
    db_statement_timeout_ms: int = Field(default=30_000, ge=0, description="0 disables it.")
    db_isolation_level: IsolationLevel = "READ COMMITTED"
{%- endif %}
{%- if db != "sqlite" %}

    # A read replica: read connections go there when it is set. Its pool fails faster
    # than the primary's, so a replica that is down is found out quickly, never a hang.
    database_replica_url: str | None = None
    db_replica_pool_size: int = Field(default=10, ge=1)
    db_replica_max_overflow: int = Field(default=10, ge=0)
    db_replica_pool_timeout: float = Field(default=2.0, gt=0)
    db_replica_pool_recycle: int = Field(default={{ 1800 if db == "postgresql" else 280 }})
    db_replica_pool_pre_ping: bool = True
    db_replica_connect_timeout: float = Field(default=2.0, gt=0)
    db_replica_statement_timeout_ms: int = Field(default=30_000, ge=0)
    # Replica fallback (app/db/replica.py): when the replica cannot be reached, reads
    # go to the primary's own pool ("primary") or answer 503 ("fail", to protect the
    # primary), and the replica is tried again every DB_REPLICA_RETRY_SECONDS.
    db_replica_fallback: Literal["primary", "fail"] = "primary"
    db_replica_retry_seconds: float = Field(default=10.0, gt=0)
{%- endif %}

{%- if db == "sqlite" %}

    # Background jobs (scripts/): one connection, and a longer wait for the write
    # lock than a request may take.
    job_db_pool_size: int = Field(default=1, ge=1)
    job_db_max_overflow: int = Field(default=0, ge=0)
    job_db_pool_timeout: float = Field(default=30.0, gt=0)
    job_db_busy_timeout: float = Field(default=30.0, ge=0)
{%- else %}

    # Background jobs (scripts/): few connections, held long, so a job never
    # crowds out the web pools; recycled less often, with longer statements allowed.
    job_db_pool_size: int = Field(default=2, ge=1)
    job_db_max_overflow: int = Field(default=0, ge=0)
    job_db_pool_timeout: float = Field(default=30.0, gt=0)
    job_db_pool_recycle: int = Field(default=3600)
    job_db_pool_pre_ping: bool = True
    job_db_connect_timeout: float = Field(default=10.0, gt=0)
    job_db_statement_timeout_ms: int = Field(default=300_000, ge=0)
{%- endif %}

    # Streamed responses (the export; app/streams.py): a pool of their own with
    # EXPORT_MAX_CONCURRENT connections per process (one more stream is a 503), a
    # reader that takes nothing for EXPORT_IDLE_SECONDS is dropped, and no stream
    # lasts longer than EXPORT_MAX_SECONDS.
    export_max_concurrent: int = Field(default=2, ge=1, le=100)
    export_idle_seconds: float = Field(default=30.0, gt=0)
    export_max_seconds: float = Field(default=600.0, gt=0)

    # The request deadline (app/deadline.py): a request that takes longer is ended
    # and answered 503; streamed responses are bounded by the EXPORT_* limits instead.
    request_timeout_seconds: float = Field(default=30.0, gt=0)
{%- if cookiecutter.auth == "jwt" %}

    # Authentication (app/auth, docs/auth.md).
    jwt_secret_key: str = Field(
        default=PLACEHOLDER, description="Signs access and refresh tokens (HS256)."
    )
    access_token_minutes: int = Field(default=15, ge=1, le=24 * 60)
    refresh_token_days: int = Field(default=14, ge=1, le=365)
    password_min_length: int = Field(default=12, ge=8, le=1024)
    login_max_failures: int = Field(
        default=5, ge=1, description="Password checks an account allows before a lock-out."
    )
    login_lockout_seconds: int = Field(default=300, ge=1)
    # argon2id's cost, OWASP's Password Storage Cheat Sheet: m=19 MiB, t=2, p=1.
    # Raising it rehashes each password at its next successful log-in.
    password_hash_time_cost: int = Field(default=2, ge=1)
    password_hash_memory_kib: int = Field(default=19_456, ge=8)
    password_hash_parallelism: int = Field(default=1, ge=1)
    # Each hash holds PASSWORD_HASH_MEMORY_KIB while it runs: at most this many run at
    # once per process, so memory stays bounded whatever the traffic (2 x 19 MiB);
    # a request that waits longer than PASSWORD_HASH_WAIT_SECONDS for one gets a 503.
    password_hash_concurrency: int = Field(default=2, ge=1, le=64)
    password_hash_wait_seconds: float = Field(default=2.0, gt=0)
    # Requests to each of /auth/token, /auth/register and /auth/refresh from one client
    # address within a sliding window, counted in the database (app/auth/throttle.py).
    auth_throttle_requests: int = Field(default=20, ge=1)
    auth_throttle_window_seconds: int = Field(default=60, ge=1, le=86_400)
    # The proxies whose X-Forwarded-For names the client (a comma-separated list of
    # addresses or CIDRs; uvicorn reads the same variable). Never "*" behind a load
    # balancer that passes a client's own X-Forwarded-For through: docs/security.md.
    forwarded_allow_ips: str = "127.0.0.1"

    @field_validator("jwt_secret_key")
    @classmethod
    def _long_enough(cls, value: str) -> str:
        if value != PLACEHOLDER and len(value.encode()) < 32:
            raise ValueError("JWT_SECRET_KEY must be at least 32 bytes (HS256 needs 256 bits)")
        return value
{%- endif %}

    @field_validator("database_url"{% if db != "sqlite" %}, "database_replica_url"{% endif %})
    @classmethod
    def _check_driver(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        try:
            url = make_url(value)
        except ArgumentError:
            url = None
        if url is None or url.drivername != DRIVER:
            name = (info.field_name or "").upper()
            raise ValueError(f"{name} must be a {DRIVER} URL, e.g. {EXAMPLE_URL!r}; got {value!r}")
        return value

    @model_validator(mode="after")
    def _refuse_placeholders(self) -> Self:
        if self.environment == "development":
            return self
        if self.secret_key == PLACEHOLDER:
            raise ValueError(
                "SECRET_KEY is the placeholder from .env.example; set a random one "
                "(only ENVIRONMENT=development accepts it)"
            )
{%- if cookiecutter.auth == "jwt" %}
        if self.jwt_secret_key == PLACEHOLDER:
            raise ValueError(
                "JWT_SECRET_KEY is the placeholder from .env.example; set a random one "
                "(only ENVIRONMENT=development accepts it)"
            )
{%- endif %}
{%- if db != "sqlite" %}
        for name, url in (("DATABASE_URL", self.url), ("DATABASE_REPLICA_URL", self.replica_url)):
            if url is not None and url.password == PLACEHOLDER:
                raise ValueError(
                    f"{name} uses the placeholder password from .env.example; "
                    "set a real one (only ENVIRONMENT=development accepts it)"
                )
{%- endif %}
        return self

    @property
    def url(self) -> URL:
        return make_url(self.database_url)
{%- if db != "sqlite" %}

    @property
    def replica_url(self) -> URL | None:
        return make_url(self.database_replica_url) if self.database_replica_url else None
{%- endif %}

    @property
    def primary_pool(self) -> PoolOptions:
        return PoolOptions(
            size=self.db_pool_size,
            max_overflow=self.db_max_overflow,
            timeout=self.db_pool_timeout,
{%- if db == "sqlite" %}
            busy_timeout=self.db_busy_timeout,
{%- else %}
            recycle=self.db_pool_recycle,
            pre_ping=self.db_pool_pre_ping,
            connect_timeout=self.db_connect_timeout,
            statement_timeout_ms=self.db_statement_timeout_ms,
{%- endif %}
        )
{%- if db != "sqlite" %}

    @property
    def replica_pool(self) -> PoolOptions:
        return PoolOptions(
            size=self.db_replica_pool_size,
            max_overflow=self.db_replica_max_overflow,
            timeout=self.db_replica_pool_timeout,
            recycle=self.db_replica_pool_recycle,
            pre_ping=self.db_replica_pool_pre_ping,
            connect_timeout=self.db_replica_connect_timeout,
            statement_timeout_ms=self.db_replica_statement_timeout_ms,
        )
{%- endif %}

    @property
    def job_pool(self) -> PoolOptions:
        return PoolOptions(
            size=self.job_db_pool_size,
            max_overflow=self.job_db_max_overflow,
            timeout=self.job_db_pool_timeout,
{%- if db == "sqlite" %}
            busy_timeout=self.job_db_busy_timeout,
{%- else %}
            recycle=self.job_db_pool_recycle,
            pre_ping=self.job_db_pool_pre_ping,
            connect_timeout=self.job_db_connect_timeout,
            statement_timeout_ms=self.job_db_statement_timeout_ms,
{%- endif %}
        )


@lru_cache
def get_settings() -> Settings:
    return Settings()
