{%- set db = cookiecutter.database -%}
{%- if db == "sqlite" -%}
"""The engines for SQLite: pool sizing, per-connection setup, BEGIN for reads and writes.

Reads and writes share one pool. SQLAlchemy, not the sqlite3 driver, emits BEGIN
(the driver skips it before SELECT and SAVEPOINT, which breaks savepoints and
repeatable reads): a deferred `BEGIN` for reads, which in WAL mode run beside the one
writer and never wait for it, and `BEGIN IMMEDIATE` for writes, which takes the
write lock up front, so a transaction that reads and then writes waits its turn
instead of failing half-way with "database is locked".
Docs: https://docs.sqlalchemy.org/en/20/dialects/sqlite.html#sqlite-transactions
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, Pool, StaticPool

from app.db.pool import CountingPool
from app.db.read_only import refuse_writes
from app.settings import PoolOptions, Settings

# The execution option that makes a connection's transactions writers.
BEGIN_MODE = "sqlite_begin"


@dataclass(frozen=True)
class Engines:
    """The engines of one process, all on the one pool in `pools`.

    `writer`: write sessions (BEGIN IMMEDIATE). `reader`: read connections (deferred
    BEGIN), which refuse to write (app.db.read_only). `pools`: the engine that owns
    the pool, by name (probes and metrics report it).
    """

    writer: AsyncEngine
    reader: AsyncEngine
    pools: Mapping[str, AsyncEngine]

    async def dispose(self) -> None:
        for engine in self.pools.values():
            await engine.dispose()


def create_engines(
    settings: Settings,
    *,
    for_job: bool = False,
    poolclass: type[Pool] | None = None,
    enforce_foreign_keys: bool = True,
) -> Engines:
    """`for_job`: a background job's engines, on the job pool preset (JOB_DB_*).
    `poolclass` replaces the pool (e.g. NullPool for a one-off migration run);
    migrations turn foreign keys off while they run (migrations/env.py)."""
    pool = settings.job_pool if for_job else settings.primary_pool
    engine = _create_engine(settings, pool, poolclass=poolclass)
    _configure_sqlite(engine, enforce_foreign_keys=enforce_foreign_keys)
    writer = engine.execution_options(**{BEGIN_MODE: "IMMEDIATE"})
    reader = refuse_writes(engine.execution_options(**{BEGIN_MODE: "DEFERRED"}))
    return Engines(writer=writer, reader=reader, pools={"database": engine})


def _create_engine(
    settings: Settings, pool: PoolOptions, *, poolclass: type[Pool] | None
) -> AsyncEngine:
    url = settings.url
    # sqlite3's `timeout` is the busy timeout: a second writer waits, then fails.
    connect_args = {"timeout": pool.busy_timeout}
    options: dict[str, Any]
    if url.database in (None, "", ":memory:"):
        # Every connection to ":memory:" is a new, empty database: share one.
        options = {"poolclass": StaticPool}
    elif poolclass is not None:
        options = {"poolclass": poolclass}
    else:
        options = {
            "poolclass": CountingPool,
            "pool_logging_name": "database",
            "pool_size": pool.size,
            "max_overflow": pool.max_overflow,
            "pool_timeout": pool.timeout,
        }
    return create_async_engine(
        url, connect_args=connect_args, hide_parameters=not settings.database_echo, **options
    )


def _configure_sqlite(engine: AsyncEngine, *, enforce_foreign_keys: bool) -> None:
    """Enforce foreign keys, use WAL, and let SQLAlchemy own BEGIN."""
    foreign_keys = "ON" if enforce_foreign_keys else "OFF"

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA foreign_keys={foreign_keys}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get(BEGIN_MODE, "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")
{%- elif db == "postgresql" -%}
"""Engines for PostgreSQL: the primary's pool, a replica's, and what each connection is told.

Connections run in autocommit unless a write session needs a transaction: a read
then costs no BEGIN and no COMMIT. Under READ COMMITTED, PostgreSQL's default, every
statement takes a fresh snapshot even inside a transaction, so a transaction around
a read buys no consistency and costs two round trips; and in autocommit the pool's
pre-ping is one statement instead of three (asyncpg pings inside a transaction
otherwise). Write sessions get a READ COMMITTED transaction on the same pool, set
per checkout at no round trip's cost. Behind PgBouncer (transaction mode) every
connection runs transactions instead (reads READ ONLY ones), since PgBouncer keeps
a statement's prepare and its execution on one server only within one.
Docs: https://docs.sqlalchemy.org/en/20/dialects/postgresql.html#module-sqlalchemy.dialects.postgresql.asyncpg
      https://docs.sqlalchemy.org/en/20/core/connections.html#dbapi-autocommit
"""

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Dialect
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, Pool

from app.db.pool import CountingPool
from app.db.read_only import refuse_writes
from app.settings import PoolOptions, Settings


@dataclass(frozen=True)
class Engines:
    """The engines of one process.

    `writer`: write sessions, transactions on the primary. `primary`: the primary in
    autocommit, for reads that must see the latest writes and for writes of one
    statement. `reader`: read connections, which refuse to write (app.db.read_only):
    the replica when DATABASE_REPLICA_URL is set, else the primary's pool.
    `pools`: the engine that owns each pool, by name (`primary`, `replica`).
    """

    writer: AsyncEngine
    primary: AsyncEngine
    reader: AsyncEngine
    pools: Mapping[str, AsyncEngine]

    async def dispose(self) -> None:
        for engine in self.pools.values():
            await engine.dispose()


def create_engines(
    settings: Settings, *, for_job: bool = False, poolclass: type[Pool] | None = None
) -> Engines:
    """`for_job`: a background job's engines, on the job pool preset (JOB_DB_*) and
    without the replica: a job reads what it has just written.
    `poolclass` replaces the pool (e.g. NullPool for a one-off migration run)."""
    pool = settings.job_pool if for_job else settings.primary_pool
    primary = _create_engine("primary", settings.url, pool, settings, poolclass)
    writer = (
        primary
        if settings.db_pgbouncer
        else primary.execution_options(isolation_level="READ COMMITTED")
    )
    replica = (
        _create_engine("replica", settings.replica_url, settings.replica_pool, settings, poolclass)
        if settings.replica_url is not None and not for_job
        else None
    )
    reading = replica or primary
    reader = refuse_writes(
        reading.execution_options(postgresql_readonly=True)
        if settings.db_pgbouncer
        else reading.execution_options()
    )
    pools = {"primary": primary} if replica is None else {"primary": primary, "replica": replica}
    return Engines(writer=writer, primary=primary, reader=reader, pools=pools)


def _create_engine(
    name: str, url: URL, pool: PoolOptions, settings: Settings, poolclass: type[Pool] | None
) -> AsyncEngine:
    pooling: dict[str, Any] = (
        {"poolclass": poolclass}
        if poolclass is not None
        else {
            "poolclass": CountingPool,
            "pool_logging_name": name,
            "pool_size": pool.size,
            "max_overflow": pool.max_overflow,
            "pool_timeout": pool.timeout,
            "pool_recycle": pool.recycle,
            "pool_pre_ping": pool.pre_ping,
        }
    )
    # Errors and their logs never show a statement's values (emails, hashes), unless
    # DATABASE_ECHO asks for every statement with its values (development only).
    pooling["hide_parameters"] = not settings.database_echo
    if settings.db_pgbouncer:
        engine = create_async_engine(url, connect_args=_pgbouncer_connect_args(pool), **pooling)
    else:
        connect_args = {
            "timeout": pool.connect_timeout,
            "server_settings": {
                "application_name": settings.db_application_name,
                "statement_timeout": str(pool.statement_timeout_ms),
            },
        }
        engine = create_async_engine(
            url, isolation_level="AUTOCOMMIT", connect_args=connect_args, **pooling
        )
    _report_connect_failures_as_driver_errors(engine)
    return engine


def _pgbouncer_connect_args(pool: PoolOptions) -> dict[str, Any]:
    """PgBouncer in transaction mode gives each transaction whichever server
    connection is free. Prepared statements get unique names and are never cached,
    so no server connection sees a name twice, and every access runs in a
    transaction (create_engines), which keeps a statement's prepare and its
    execution on one server. The pool stays: it holds client connections to
    PgBouncer, which cost PgBouncer little, bound what each worker opens, and spare
    each request a connection set-up (docs/operations.md#pgbouncer says why that matters).
    PgBouncer refuses unknown startup parameters, so the statement timeout is not
    sent: set it on the database role (ALTER ROLE ... SET statement_timeout).
    Docs: https://docs.sqlalchemy.org/en/20/dialects/postgresql.html#prepared-statement-name-with-pgbouncer
    """
    return {
        "timeout": pool.connect_timeout,
        "statement_cache_size": 0,
        "prepared_statement_cache_size": 0,
        "prepared_statement_name_func": lambda: f"__asyncpg_{uuid.uuid4()}__",
    }


def _report_connect_failures_as_driver_errors(engine: AsyncEngine) -> None:
    """asyncpg raises a refused connection, an unknown host or a connect timeout as
    a builtin OSError/TimeoutError, which other code raises too. Re-raised as
    SQLAlchemy's OperationalError, with no connection to use, they are database
    failures like any other, and the error handlers can tell an outage from a bug."""

    @event.listens_for(engine.sync_engine, "do_connect")
    def _connect(dialect: Dialect, _record: ConnectionPoolEntry, cargs: Any, cparams: Any) -> Any:
        try:
            return dialect.connect(*cargs, **cparams)
        except (OSError, TimeoutError) as exc:
            raise OperationalError("connect", None, exc, connection_invalidated=True) from exc
{%- else -%}
"""Engines for MySQL/MariaDB: the primary's pool, a replica's, and each connection's setup.

Reads and writes share the primary's pool. InnoDB starts a transaction at the first
statement, so none sends a BEGIN: a read costs its SELECTs and the ROLLBACK that
ends it, a plain SELECT takes no locks, and under REPEATABLE READ its statements
share one snapshot. (Autocommit would save nothing: switching it per connection
costs a round trip each way, and the driver still sends the COMMIT.) The replica,
when configured, has a pool of its own.
Docs: https://docs.sqlalchemy.org/en/20/dialects/mysql.html#module-sqlalchemy.dialects.mysql.aiomysql
"""

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiomysql
from sqlalchemy import event
from sqlalchemy.engine import URL, Dialect
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, Pool

from app.db.pool import CountingPool
from app.db.read_only import refuse_writes
from app.settings import PoolOptions, Settings

CANNOT_CONNECT = 2003
# UTC so DATETIME columns hold UTC; strict mode so bad data is an error, not a
# silent truncation.
SESSION_SETUP = (
    "SET time_zone = '+00:00', sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ZERO_IN_DATE,"
    "ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'"
)


@dataclass(frozen=True)
class Engines:
    """The engines of one process.

    `writer`: write sessions on the primary. `primary`: the primary, for reads that
    must see the latest writes and for writes of one statement. `reader`: read
    connections, which refuse to write (app.db.read_only): the replica when
    DATABASE_REPLICA_URL is set, else the primary's pool. `pools`: the engine that
    owns each pool, by name (`primary`, `replica`).
    """

    writer: AsyncEngine
    primary: AsyncEngine
    reader: AsyncEngine
    pools: Mapping[str, AsyncEngine]

    async def dispose(self) -> None:
        for engine in self.pools.values():
            await engine.dispose()


def create_engines(
    settings: Settings, *, for_job: bool = False, poolclass: type[Pool] | None = None
) -> Engines:
    """`for_job`: a background job's engines, on the job pool preset (JOB_DB_*) and
    without the replica: a job reads what it has just written.
    `poolclass` replaces the pool (e.g. NullPool for a one-off migration run)."""
    pool = settings.job_pool if for_job else settings.primary_pool
    primary = _create_engine("primary", settings.url, pool, settings, poolclass)
    replica = (
        _create_engine("replica", settings.replica_url, settings.replica_pool, settings, poolclass)
        if settings.replica_url is not None and not for_job
        else None
    )
    reader = refuse_writes((replica or primary).execution_options())
    pools = {"primary": primary} if replica is None else {"primary": primary, "replica": replica}
    return Engines(writer=primary, primary=primary, reader=reader, pools=pools)


def _create_engine(
    name: str, url: URL, pool: PoolOptions, settings: Settings, poolclass: type[Pool] | None
) -> AsyncEngine:
    pooling: dict[str, Any] = (
        {"poolclass": poolclass}
        if poolclass is not None
        else {
            "poolclass": CountingPool,
            "pool_logging_name": name,
            "pool_size": pool.size,
            "max_overflow": pool.max_overflow,
            "pool_timeout": pool.timeout,
            "pool_recycle": pool.recycle,
            "pool_pre_ping": pool.pre_ping,
        }
    )
    engine = create_async_engine(
        url,
        isolation_level=settings.db_isolation_level,
        connect_args={
            "charset": "utf8mb4",
            "connect_timeout": pool.connect_timeout,
            "init_command": SESSION_SETUP,
        },
        # Errors and their logs never show a statement's values (emails, hashes),
        # unless DATABASE_ECHO asks for every statement with its values (development).
        hide_parameters=not settings.database_echo,
        **pooling,
    )
    _limit_statement_time(engine, pool.statement_timeout_ms)
    _bound_connect_time(engine, pool.connect_timeout)
    return engine


def _bound_connect_time(engine: AsyncEngine, timeout: float) -> None:
    """aiomysql's connect_timeout covers opening the TCP connection only: a server
    that accepts it and then says nothing would hang every request that needs it.
    The whole handshake is bounded here, and running out of time is reported as
    the driver's "cannot connect" (2003), like a refused connection."""

    @event.listens_for(engine.sync_engine, "do_connect")
    def _connect(dialect: Dialect, _record: ConnectionPoolEntry, _cargs: Any, cparams: Any) -> None:
        async def connect(*args: Any, **kwargs: Any) -> Any:
            try:
                return await asyncio.wait_for(aiomysql.connect(*args, **kwargs), timeout)
            except TimeoutError as exc:
                message = f"no handshake from the server within {timeout} s"
                raise dialect.loaded_dbapi.OperationalError(CANNOT_CONNECT, message) from exc

        cparams["async_creator_fn"] = connect


def _limit_statement_time(engine: AsyncEngine, timeout_ms: int) -> None:
    """MariaDB's `max_statement_time` bounds every statement; MySQL's
    `max_execution_time` bounds read-only SELECTs only (writes wait at most
    `innodb_lock_wait_timeout` for a lock). Which server answers is known once
    connected, so the choice is made per connection."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        cursor = dbapi_connection.cursor()
        if engine.dialect.is_mariadb:  # type: ignore[attr-defined]
            cursor.execute("SET SESSION max_statement_time = %s", (timeout_ms / 1000,))
        else:
            cursor.execute("SET SESSION max_execution_time = %s", (timeout_ms,))
        cursor.close()
{%- endif %}
