{%- set db = cookiecutter.database -%}
"""Configuration from the environment and `.env`.

Pool defaults are the ones chosen for {{ {'sqlite': 'SQLite', 'postgresql': 'PostgreSQL', 'mysql': 'MySQL/MariaDB'}[db] }}: the README's
"Connection pool" table says why. Every value can be overridden by the upper-case
environment variable of the same name (e.g. `DB_POOL_SIZE=20`).
Docs: https://docs.pydantic.dev/latest/concepts/pydantic_settings/
"""

from functools import lru_cache
{%- if db == "sqlite" %}
from typing import Literal

from pydantic import Field, field_validator
{%- else %}
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator
{%- endif %}
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

DRIVER = "{{ cookiecutter.__url_scheme }}"
EXAMPLE_URL = "{{ cookiecutter.__database_url }}"
{%- if db != "sqlite" %}
PLACEHOLDER_PASSWORD = "change-me"  # noqa: S105 -- the placeholder to refuse, not a secret
{%- endif %}
{%- if db == "mysql" %}
IsolationLevel = Literal["READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE"]
{%- endif %}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    debug: bool = False
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"
    log_requests: bool = Field(default=True, description="One log line per request.")

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
        description="Behind PgBouncer (transaction mode): no statement cache, no app pool.",
    )
{%- else %}

    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=10, ge=0)
    db_pool_timeout: float = Field(default=5.0, gt=0)
    # Safely below the server's wait_timeout (28800 s by default, often 300 s or
    # less behind proxies), so the pool never hands out a connection the server closed.
    db_pool_recycle: int = Field(default=280, description="Seconds before reconnecting.")
    db_pool_pre_ping: bool = True
    db_connect_timeout: int = Field(default=5, gt=0)
    db_statement_timeout_ms: int = Field(default=30_000, ge=0, description="0 disables it.")
    db_isolation_level: IsolationLevel = "READ COMMITTED"
{%- endif %}

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        try:
            url = make_url(value)
        except ArgumentError:
            url = None
        if url is None or url.drivername != DRIVER:
            raise ValueError(
                f"DATABASE_URL must be a {DRIVER} URL, e.g. {EXAMPLE_URL!r}; got {value!r}"
            )
        return value
{%- if db != "sqlite" %}

    @model_validator(mode="after")
    def _refuse_placeholder_password(self) -> Self:
        if self.environment != "development" and self.url.password == PLACEHOLDER_PASSWORD:
            raise ValueError(
                "DATABASE_URL uses the placeholder password from .env.example; "
                "set a real one (only ENVIRONMENT=development accepts it)"
            )
        return self
{%- endif %}

    @property
    def url(self) -> URL:
        return make_url(self.database_url)


@lru_cache
def get_settings() -> Settings:
    return Settings()
