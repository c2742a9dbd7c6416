{%- set db = cookiecutter.database -%}
"""Configuration from the environment and `.env`.

Pool defaults are the ones chosen for {{ {'sqlite': 'SQLite', 'postgresql': 'PostgreSQL', 'mysql': 'MySQL/MariaDB'}[db] }}: docs/configuration.md says why.
Every value can be overridden by the upper-case environment variable of the same
name (e.g. `DB_POOL_SIZE=20`).
Docs: https://docs.pydantic.dev/latest/concepts/pydantic_settings/
"""

import secrets
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Literal, Self
from urllib.parse import urlsplit

from pydantic import (
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

DRIVER = "{{ cookiecutter.__url_scheme }}"
EXAMPLE_URL = "{{ cookiecutter.__database_url }}"
# .env.example holds this placeholder; only ENVIRONMENT=development accepts it.
PLACEHOLDER = "change-me"
# The keys that sign what clients hold{% if cookiecutter.auth == "jwt" %} (cursors, tokens){% else %} (cursors){% endif %}: HMAC-SHA256 wants 256 bits.
SIGNING_KEYS = ("secret_key",{% if cookiecutter.auth == "jwt" %} "jwt_secret_key"{% endif %})
SECRET_MIN_BYTES = 32
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
    # hide_input_in_errors: a refused setting is never printed, nor any other (secrets).
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", hide_input_in_errors=True
    )

    # The signing keys this process made up (development only): said at start-up.
    _made_up_keys: list[str] = PrivateAttr(default_factory=list)

    # Never silently development: that is the one environment that makes up its own keys.
    environment: Literal["development", "test", "production"] = "production"
    debug: bool = False
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"
    log_requests: bool = Field(default=True, description="One log line per request.")
    # repr=False: no key in a repr of the settings (a log line, a traceback).
    secret_key: str = Field(
        default="", repr=False, description="Signs pagination cursors (32+ bytes)."
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

    # The edge (app/edge.py, docs/security.md)
    max_request_bytes: int = Field(
        default=1_048_576, ge=1, description="The largest request body; a larger one gets 413."
    )
{%- if cookiecutter.__users == "yes" %}
    bulk_max_request_bytes: int = Field(
        default=8 * 1_048_576, ge=1, description="The same for the bulk endpoints (app/edge.py)."
    )
{%- endif %}
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Origins browsers may call from, comma-separated."
    )
    docs_enabled: bool | None = Field(
        default=None, description="Serve /docs, /redoc, /openapi.json; unset: in development."
    )
    metrics_token: str | None = Field(
        default=None, repr=False, description="The bearer token /metrics asks; unset: none."
    )

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

    # Migrations (migrations/env.py, docs/migrations.md): limits of their own, never
    # the web's. A statement that waits longer than the lock timeout for a lock gives
    # up, so the requests queued behind it move again, and is retried with backoff.
    migration_lock_timeout: float = Field(
        default=5.0, gt=0, description="Seconds a migration waits for a lock before it retries."
    )
    migration_lock_retries: int = Field(
        default=5, ge=0, description="Retries after a lock timeout; then the migration fails."
    )
{%- if db != "sqlite" %}
    migration_statement_timeout: float | None = Field(
        default=None, gt=0, description="Seconds a migration statement may run; unset: no limit."
    )
{%- endif %}
{%- if cookiecutter.task_queue == "taskiq" %}

    # Task queue (app/tasks, docs/operations.md): RabbitMQ, the outbox's relay, and the
    # worker's own database pool (WORKER_DB_*), which runs many tasks at once.
    broker_url: str = Field(
        default="amqp://guest:guest@127.0.0.1:5672/", description="RabbitMQ's AMQP URL."
    )
    task_queue_name: str = Field(
        default="{{ cookiecutter.project_slug }}",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$",
        description="The exchange and queue; `.retry-N` and `.dead-letter` queues beside it.",
    )
    task_max_attempts: int = Field(default=5, ge=1, le=50, description="Then dead-lettered.")
    task_retry_delay_seconds: float = Field(
        default=10.0, gt=0, description="Before the 2nd attempt; doubled for each next one."
    )
    task_retry_max_delay_seconds: float = Field(default=900.0, gt=0)
    task_timeout_seconds: float = Field(default=300.0, gt=0, description="One attempt, at most.")
    worker_db_pool_size: int = Field(default=5, ge=1)
    worker_db_max_overflow: int = Field(default=10, ge=0)
{%- if db != "sqlite" %}
    worker_db_pool_recycle: int = Field(default=7200, description="Seconds before reconnecting.")
{%- endif %}
    worker_metrics_port: int = Field(default=9100, ge=1, le=65535)
    worker_shutdown_seconds: float = Field(
        default=25.0, ge=0, description="On SIGTERM: how long tasks in hand may take to finish."
    )
    relay_batch_size: int = Field(default=100, ge=1, le=10_000)
    relay_poll_seconds: float = Field(default=1.0, gt=0, description="Between looks at the outbox.")
    relay_lease_seconds: float = Field(
        default=60.0, gt=0, description="A claimed row returns to the queue after this."
    )
    relay_publish_timeout_seconds: float = Field(default=10.0, gt=0)
{%- if cookiecutter.include_example_models == "yes" %}
    smtp_url: str = Field(
        default="smtp://127.0.0.1:1025",
        description="smtp://[user:password@]host:port (STARTTLS when offered), or smtps://.",
    )
    smtp_timeout_seconds: float = Field(default=10.0, gt=0)
    mail_from: str = "{{ cookiecutter.project_slug }}@example.com"
{%- endif %}

    @field_validator("broker_url")
    @classmethod
    def _check_broker_url(cls, value: str) -> str:
        if not value.startswith(("amqp://", "amqps://")):
            raise ValueError("BROKER_URL must be an amqp:// or amqps:// URL")
        return value

    @model_validator(mode="after")
    def _refuse_broker_placeholder(self) -> Self:
        if self.environment != "development" and f":{PLACEHOLDER}@" in self.broker_url:
            raise ValueError(
                "BROKER_URL uses the placeholder password from .env.example; "
                "set a real one (only ENVIRONMENT=development accepts it)"
            )
        return self
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
        default="", repr=False, description="Signs access and refresh tokens (HS256, 32+ bytes)."
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
            # The password, if any, stays out of the message (it goes to the logs).
            got = repr(url.render_as_string(hide_password=True)) if url else "something else"
            raise ValueError(f"{name} must be a {DRIVER} URL, e.g. {EXAMPLE_URL!r}; got {got}")
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("cors_origins")
    @classmethod
    def _check_origins(cls, origins: list[str]) -> list[str]:
        # Browsers send an origin in lower case: scheme://host[:port], nothing more.
        origins = [origin.lower() for origin in origins]
        for origin in origins:
            parts = urlsplit(origin)
            if (
                parts.scheme not in ("http", "https")
                or not parts.hostname
                or parts.username is not None
                or origin != f"{parts.scheme}://{parts.netloc}"
            ):
                raise ValueError(
                    "CORS_ORIGINS lists origins such as https://app.example.com "
                    "(scheme, host, port if any; no path, no '*')"
                )
        return origins

    @model_validator(mode="after")
    def _check_signing_keys(self) -> Self:
        """Every signing key is a real one. Unset or the placeholder, it stops the
        service, except with ENVIRONMENT=development set: that makes up a random key
        for this process (a warning at start-up says so). A key anyone knows would
        let anyone sign what this service trusts."""
        problems = []
        for field in SIGNING_KEYS:
            name, key = field.upper(), getattr(self, field)
            if key in ("", PLACEHOLDER) and self.environment == "development":
                setattr(self, field, secrets.token_urlsafe(SECRET_MIN_BYTES))
                self._made_up_keys.append(name)
            elif key == "":
                problems.append(
                    f"{name} is not set; set a random one of at least {SECRET_MIN_BYTES} bytes "
                    "(python -c 'import secrets; print(secrets.token_urlsafe(32))'), "
                    "or ENVIRONMENT=development for a key made up per process"
                )
            elif key == PLACEHOLDER:
                problems.append(
                    f"{name} is the placeholder from .env.example; set a random one "
                    "(only ENVIRONMENT=development accepts it)"
                )
            elif len(key.encode()) < SECRET_MIN_BYTES:
                problems.append(f"{name} must be at least {SECRET_MIN_BYTES} bytes")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _refuse_placeholders(self) -> Self:
        token = self.metrics_token
        if token not in (None, PLACEHOLDER) and len(token.encode()) < SECRET_MIN_BYTES:
            raise ValueError(f"METRICS_TOKEN must be at least {SECRET_MIN_BYTES} bytes")
        if self.environment == "development":
            return self
        if self.metrics_token == PLACEHOLDER:
            raise ValueError(
                "METRICS_TOKEN is the placeholder from .env.example; set a random one "
                "(only ENVIRONMENT=development accepts it)"
            )
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
    def docs_served(self) -> bool:
        """/docs, /redoc and /openapi.json: DOCS_ENABLED, else only in development."""
        if self.docs_enabled is None:
            return self.environment == "development"
        return self.docs_enabled

    @property
    def startup_warnings(self) -> list[str]:
        """What the service says once it has started: a key made up for this process,
        /metrics open in production."""
        warnings = [
            f"{name} is unset or the placeholder: this process signs with a random key of its own "
            "(ENVIRONMENT=development only); what it signed is void after a restart "
            "and in any other process"
            for name in self._made_up_keys
        ]
        if self.environment == "production" and self.metrics_token is None:
            warnings.append("METRICS_TOKEN is not set: /metrics answers anyone who reaches it")
        return warnings

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
    """This process's settings. Bad ones stop it with one line that names each
    variable and the rule, never a value (the app, alembic and the scripts alike)."""
    try:
        return Settings()
    except ValidationError as error:
        raise SystemExit(f"invalid settings: {describe(error)}") from None


def describe(error: ValidationError) -> str:
    """A ValidationError of Settings in one line, without the input."""
    problems = []
    for problem in error.errors(include_input=False, include_url=False):
        message = problem["msg"].removeprefix("Value error, ")
        name = str(problem["loc"][0]).upper() if problem["loc"] else ""
        problems.append(message if not name or name in message else f"{name}: {message}")
    return "; ".join(problems)
