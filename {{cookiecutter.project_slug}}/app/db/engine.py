{%- set db = cookiecutter.database -%}
"""The async engine: pool sizing and per-connection setup for {{ {'sqlite': 'SQLite', 'postgresql': 'PostgreSQL', 'mysql': 'MySQL/MariaDB'}[db] }}.

Docs: https://docs.sqlalchemy.org/en/20/orm/extensions/asyncio.html
{%- if db == "sqlite" %}
      https://docs.sqlalchemy.org/en/20/dialects/sqlite.html#sqlite-transactions
{%- elif db == "postgresql" %}
      https://docs.sqlalchemy.org/en/20/dialects/postgresql.html#module-sqlalchemy.dialects.postgresql.asyncpg
{%- else %}
      https://docs.sqlalchemy.org/en/20/dialects/mysql.html#module-sqlalchemy.dialects.mysql.aiomysql
{%- endif %}
"""
{% if db == "sqlite" %}
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool

from app.settings import Settings


def create_engine(settings: Settings) -> AsyncEngine:
    url = settings.url
    # sqlite3's `timeout` is the busy timeout: a second writer waits, then fails.
    connect_args = {"timeout": settings.db_busy_timeout}
    if url.database in (None, "", ":memory:"):
        # Every connection to ":memory:" is a new, empty database: share one.
        engine = create_async_engine(url, poolclass=StaticPool, connect_args=connect_args)
    else:
        engine = create_async_engine(
            url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout,
            connect_args=connect_args,
        )
    _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: AsyncEngine) -> None:
    """Enforce foreign keys, use WAL, and let SQLAlchemy own BEGIN.

    The sqlite3 driver skips BEGIN before SELECT and SAVEPOINT, which breaks
    savepoints and repeatable reads; emitting BEGIN ourselves is the fix the
    SQLAlchemy docs give. IMMEDIATE takes the write lock up front: a transaction
    that read first and wrote later could otherwise fail at once with "database
    is locked" when another writer got in between, instead of waiting its turn.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
{%- elif db == "postgresql" %}
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from app.settings import Settings


def create_engine(settings: Settings) -> AsyncEngine:
    if settings.db_pgbouncer:
        return _create_pgbouncer_engine(settings)
    connect_args: dict[str, Any] = {
        "timeout": settings.db_connect_timeout,
        "server_settings": {
            "application_name": settings.db_application_name,
            "statement_timeout": str(settings.db_statement_timeout_ms),
        },
    }
    return create_async_engine(
        settings.url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        pool_recycle=settings.db_pool_recycle,
        pool_pre_ping=settings.db_pool_pre_ping,
        connect_args=connect_args,
    )


def _create_pgbouncer_engine(settings: Settings) -> AsyncEngine:
    """PgBouncer in transaction mode hands each transaction a different server
    connection: PgBouncer is the pool, and prepared statements get unique names
    and are never cached, so no server connection sees a name twice. It also
    refuses unknown startup parameters, so the statement timeout is not sent:
    set it on the database role (ALTER ROLE ... SET statement_timeout).
    Docs: https://docs.sqlalchemy.org/en/20/dialects/postgresql.html#prepared-statement-name-with-pgbouncer
    """
    return create_async_engine(
        settings.url,
        poolclass=NullPool,
        connect_args={
            "timeout": settings.db_connect_timeout,
            "statement_cache_size": 0,
            "prepared_statement_cache_size": 0,
            "prepared_statement_name_func": lambda: f"__asyncpg_{uuid.uuid4()}__",
        },
    )
{%- else %}
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from app.settings import Settings

# UTC so DATETIME columns hold UTC; strict mode so bad data is an error, not a
# silent truncation.
SESSION_SETUP = (
    "SET time_zone = '+00:00', sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ZERO_IN_DATE,"
    "ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'"
)


def create_engine(settings: Settings) -> AsyncEngine:
    engine = create_async_engine(
        settings.url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        pool_recycle=settings.db_pool_recycle,
        pool_pre_ping=settings.db_pool_pre_ping,
        isolation_level=settings.db_isolation_level,
        connect_args={
            "charset": "utf8mb4",
            "connect_timeout": settings.db_connect_timeout,
            "init_command": SESSION_SETUP,
        },
    )
    _limit_statement_time(engine, settings.db_statement_timeout_ms)
    return engine


def _limit_statement_time(engine: AsyncEngine, timeout_ms: int) -> None:
    """MariaDB and MySQL name the per-statement limit differently (and MySQL's
    applies to SELECT only); which one is running is known once connected."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        cursor = dbapi_connection.cursor()
        if engine.dialect.is_mariadb:  # type: ignore[attr-defined]
            cursor.execute("SET SESSION max_statement_time = %s", (timeout_ms / 1000,))
        else:
            cursor.execute("SET SESSION max_execution_time = %s", (timeout_ms,))
        cursor.close()
{%- endif %}
