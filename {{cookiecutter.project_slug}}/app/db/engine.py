{%- set db = cookiecutter.database -%}
{%- if db == "sqlite" -%}
"""The engines for SQLite: pool sizing, per-connection setup, BEGIN for reads and writes.

Requests read and write through one pool. SQLAlchemy, not the sqlite3 driver, emits
BEGIN (the driver skips it before SELECT and SAVEPOINT, which breaks savepoints and
repeatable reads): a deferred `BEGIN` for reads, which in WAL mode run beside the one
writer and never wait for it, and `BEGIN IMMEDIATE` for writes, which takes the
write lock up front, so a transaction that reads and then writes waits its turn
instead of failing half-way with "database is locked". Streamed responses read
through a small pool of their own, and /readyz through one connection of its own,
so neither competes with requests.
Docs: https://docs.sqlalchemy.org/en/20/dialects/sqlite.html#sqlite-transactions
"""

from collections.abc import Mapping
from dataclasses import dataclass, replace
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
    """The engines of one process.

    `writer`: write transactions (BEGIN IMMEDIATE). `reader`: read connections
    (deferred BEGIN), which refuse to write (app.db.read_only). `streams`: reads
    for streamed responses, on a pool of EXPORT_MAX_CONCURRENT connections.
    `probe`: /readyz's one connection. `pools`: every engine that owns a pool, by
    name (`database`, `database.streams`, `database.probe`), for the metrics.
    """

    writer: AsyncEngine
    reader: AsyncEngine
    streams: AsyncEngine
    probe: AsyncEngine
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
    migrations turn foreign keys off while they run (migrations/env.py). A job or a
    one-off run serves no streams and no probes: those use its one pool too."""
    pool = settings.job_pool if for_job else settings.primary_pool
    engine = _create_engine("database", settings, pool, poolclass, enforce_foreign_keys)
    pools = {"database": engine}
    streams = probe = engine
    if not (for_job or poolclass or _in_memory(settings)):
        stream_pool = replace(pool, size=settings.export_max_concurrent, max_overflow=0)
        streams = _create_engine("database.streams", settings, stream_pool, None, True)
        probe_pool = replace(pool, size=1, max_overflow=0, timeout=settings.readiness_timeout)
        probe = _create_engine("database.probe", settings, probe_pool, None, True)
        pools |= {"database.streams": streams, "database.probe": probe}
    writer = engine.execution_options(**{BEGIN_MODE: "IMMEDIATE"})
    reader = refuse_writes(engine.execution_options(**{BEGIN_MODE: "DEFERRED"}))
    streams = refuse_writes(streams.execution_options(**{BEGIN_MODE: "DEFERRED"}))
    return Engines(writer=writer, reader=reader, streams=streams, probe=probe, pools=pools)


def _in_memory(settings: Settings) -> bool:
    return settings.url.database in (None, "", ":memory:")


def _create_engine(
    name: str,
    settings: Settings,
    pool: PoolOptions,
    poolclass: type[Pool] | None,
    enforce_foreign_keys: bool,
) -> AsyncEngine:
    # sqlite3's `timeout` is the busy timeout: a second writer waits, then fails.
    connect_args = {"timeout": pool.busy_timeout}
    options: dict[str, Any]
    if _in_memory(settings):
        # Every connection to ":memory:" is a new, empty database: share one.
        options = {"poolclass": StaticPool}
    elif poolclass is not None:
        options = {"poolclass": poolclass}
    else:
        options = {
            "poolclass": CountingPool,
            "pool_logging_name": name,
            "pool_size": pool.size,
            "max_overflow": pool.max_overflow,
            "pool_timeout": pool.timeout,
        }
    engine = create_async_engine(
        settings.url,
        connect_args=connect_args,
        hide_parameters=not settings.database_echo,
        **options,
    )
    _configure_sqlite(engine, enforce_foreign_keys=enforce_foreign_keys)
    return engine


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
"""Engines for PostgreSQL: the primary's pools, a replica's, and what each connection is told.

Reads run in autocommit: a read then costs no BEGIN and no COMMIT. Under READ
COMMITTED, PostgreSQL's default, every statement takes a fresh snapshot even inside a
transaction, so a transaction around a read buys no consistency and costs two round
trips; and in autocommit the pool's pre-ping is one statement instead of three
(asyncpg pings inside a transaction otherwise). Writes get a READ COMMITTED
transaction on the same pool, set per checkout at no round trip's cost. Behind
PgBouncer (transaction mode) every connection runs transactions instead (reads READ
ONLY ones), since PgBouncer keeps a statement's prepare and its execution on one
server only within one.

Besides the request pools, each server has a small pool for streamed responses (a
stream holds its connection for as long as the client reads) and one connection for
/readyz, so that neither competes with requests.
Docs: https://docs.sqlalchemy.org/en/20/dialects/postgresql.html#module-sqlalchemy.dialects.postgresql.asyncpg
      https://docs.sqlalchemy.org/en/20/core/connections.html#dbapi-autocommit
"""

import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Dialect
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, Pool

from app.db.pool import CountingPool
from app.db.read_only import refuse_writes
from app.db.replica import ReplicaFallback
from app.settings import PoolOptions, Settings

# The server ends a stream's transaction that stays idle this long after the app
# would have dropped its reader (EXPORT_IDLE_SECONDS): a backstop if the app stalls.
STREAM_IDLE_MARGIN_SECONDS = 5


@dataclass(frozen=True)
class Server:
    """One server's engines: reads (which refuse to write), streamed reads, the probe."""

    reader: AsyncEngine
    streams: AsyncEngine
    probe: AsyncEngine


@dataclass(frozen=True)
class Engines:
    """The engines of one process.

    `writer`: transactions on the primary (write sessions, `Database.transaction()`).
    `primary`: the primary's reads, streams and probe; `replica`: the replica's, when
    DATABASE_REPLICA_URL is set, with `fallback` deciding where reads go while it is
    down (app.db.replica). `pools`: every engine that owns a pool, by name
    (`primary`, `primary.streams`, `primary.probe`, and the same for `replica`), for
    the metrics and the connection budget.
    """

    writer: AsyncEngine
    primary: Server
    replica: Server | None
    fallback: ReplicaFallback | None
    pools: Mapping[str, AsyncEngine]

    async def dispose(self) -> None:
        if self.fallback is not None:
            await self.fallback.close()
        for engine in self.pools.values():
            await engine.dispose()


def create_engines(
    settings: Settings, *, for_job: bool = False, poolclass: type[Pool] | None = None
) -> Engines:
    """`for_job`: a background job's engines, on the job pool preset (JOB_DB_*) and
    without the replica: a job reads what it has just written. `poolclass` replaces
    the pool (e.g. NullPool for a one-off migration run). A job or a one-off run
    serves no streams and no probes: those use its one pool too."""
    pool = settings.job_pool if for_job else settings.primary_pool
    serves_requests = not for_job and poolclass is None
    pools: dict[str, AsyncEngine] = {}
    primary = _server("primary", settings.url, pool, settings, poolclass, serves_requests, pools)
    base = pools["primary"]
    writer = (
        base if settings.db_pgbouncer else base.execution_options(isolation_level="READ COMMITTED")
    )
    replica = fallback = None
    if settings.replica_url is not None and serves_requests:
        replica = _server(
            "replica", settings.replica_url, settings.replica_pool, settings, None, True, pools
        )
        fallback = ReplicaFallback(
            pools["replica"],
            policy=settings.db_replica_fallback,
            retry_seconds=settings.db_replica_retry_seconds,
            check_timeout=settings.db_replica_connect_timeout,
        )
    return Engines(writer=writer, primary=primary, replica=replica, fallback=fallback, pools=pools)


def _server(
    name: str,
    url: URL,
    pool: PoolOptions,
    settings: Settings,
    poolclass: type[Pool] | None,
    serves_requests: bool,
    pools: dict[str, AsyncEngine],
) -> Server:
    """One server's engines, added to `pools` by name."""
    base = pools[name] = _create_engine(name, url, pool, settings, poolclass)
    streams = probe = base
    if serves_requests:
        stream_pool = replace(pool, size=settings.export_max_concurrent, max_overflow=0)
        streams = pools[f"{name}.streams"] = _create_engine(
            f"{name}.streams", url, stream_pool, settings, None
        )
        probe_pool = replace(pool, size=1, max_overflow=0, timeout=settings.readiness_timeout)
        probe = pools[f"{name}.probe"] = _create_engine(
            f"{name}.probe", url, probe_pool, settings, None
        )
    # A stream reads from a server-side cursor, which exists only inside a
    # transaction: a READ ONLY one, that the server ends if it is left idle.
    streams = streams.execution_options(isolation_level="READ COMMITTED", postgresql_readonly=True)
    _end_idle_streams(streams, settings.export_idle_seconds + STREAM_IDLE_MARGIN_SECONDS)
    reader = base.execution_options(postgresql_readonly=True) if settings.db_pgbouncer else base
    return Server(
        reader=refuse_writes(reader.execution_options()),
        streams=refuse_writes(streams),
        probe=probe,
    )


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


def _end_idle_streams(streams: AsyncEngine, seconds: float) -> None:
    """Each stream's transaction gets `idle_in_transaction_session_timeout`: a
    transaction (SET LOCAL), so it holds behind PgBouncer too."""
    timeout = f"{math.ceil(seconds * 1000)}ms"

    @event.listens_for(streams.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql(f"SET LOCAL idle_in_transaction_session_timeout = '{timeout}'")
{%- else -%}
"""Engines for MySQL/MariaDB: the primary's pools, a replica's, and each connection's setup.

Reads and writes share the primary's pool. InnoDB starts a transaction at the first
statement, so none sends a BEGIN: a read costs its SELECTs and the ROLLBACK that
ends it, a plain SELECT takes no locks, and under REPEATABLE READ its statements
share one snapshot. (Autocommit would save nothing: switching it per connection
costs a round trip each way, and the driver still sends the COMMIT.) The replica,
when configured, has a pool of its own. Besides the request pools, each server has
a small pool for streamed responses (a stream holds its connection for as long as
the client reads) and one connection for /readyz, so that neither competes with
requests.
Docs: https://docs.sqlalchemy.org/en/20/dialects/mysql.html#module-sqlalchemy.dialects.mysql.aiomysql
"""

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import aiomysql
from sqlalchemy import event
from sqlalchemy.engine import URL, Dialect
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, Pool

from app.db.pool import CountingPool
from app.db.read_only import refuse_writes
from app.db.replica import ReplicaFallback
from app.settings import PoolOptions, Settings

CANNOT_CONNECT = 2003
# UTC so DATETIME columns hold UTC; strict mode so bad data is an error, not a
# silent truncation.
SESSION_SETUP = (
    "SET time_zone = '+00:00', sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ZERO_IN_DATE,"
    "ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'"
)


@dataclass(frozen=True)
class Server:
    """One server's engines: reads (which refuse to write), streamed reads, the probe."""

    reader: AsyncEngine
    streams: AsyncEngine
    probe: AsyncEngine


@dataclass(frozen=True)
class Engines:
    """The engines of one process.

    `writer`: transactions on the primary (write sessions, `Database.transaction()`).
    `primary`: the primary's reads, streams and probe; `replica`: the replica's, when
    DATABASE_REPLICA_URL is set, with `fallback` deciding where reads go while it is
    down (app.db.replica). `pools`: every engine that owns a pool, by name
    (`primary`, `primary.streams`, `primary.probe`, and the same for `replica`), for
    the metrics and the connection budget.
    """

    writer: AsyncEngine
    primary: Server
    replica: Server | None
    fallback: ReplicaFallback | None
    pools: Mapping[str, AsyncEngine]

    async def dispose(self) -> None:
        if self.fallback is not None:
            await self.fallback.close()
        for engine in self.pools.values():
            await engine.dispose()


def create_engines(
    settings: Settings, *, for_job: bool = False, poolclass: type[Pool] | None = None
) -> Engines:
    """`for_job`: a background job's engines, on the job pool preset (JOB_DB_*) and
    without the replica: a job reads what it has just written. `poolclass` replaces
    the pool (e.g. NullPool for a one-off migration run). A job or a one-off run
    serves no streams and no probes: those use its one pool too."""
    pool = settings.job_pool if for_job else settings.primary_pool
    serves_requests = not for_job and poolclass is None
    pools: dict[str, AsyncEngine] = {}
    primary = _server("primary", settings.url, pool, settings, poolclass, serves_requests, pools)
    replica = fallback = None
    if settings.replica_url is not None and serves_requests:
        replica = _server(
            "replica", settings.replica_url, settings.replica_pool, settings, None, True, pools
        )
        fallback = ReplicaFallback(
            pools["replica"],
            policy=settings.db_replica_fallback,
            retry_seconds=settings.db_replica_retry_seconds,
            check_timeout=settings.db_replica_connect_timeout,
        )
    return Engines(
        writer=pools["primary"], primary=primary, replica=replica, fallback=fallback, pools=pools
    )


def _server(
    name: str,
    url: URL,
    pool: PoolOptions,
    settings: Settings,
    poolclass: type[Pool] | None,
    serves_requests: bool,
    pools: dict[str, AsyncEngine],
) -> Server:
    """One server's engines, added to `pools` by name."""
    base = pools[name] = _create_engine(name, url, pool, settings, poolclass)
    streams = probe = base
    if serves_requests:
        stream_pool = replace(pool, size=settings.export_max_concurrent, max_overflow=0)
        streams = pools[f"{name}.streams"] = _create_engine(
            f"{name}.streams", url, stream_pool, settings, None
        )
        probe_pool = replace(pool, size=1, max_overflow=0, timeout=settings.readiness_timeout)
        probe = pools[f"{name}.probe"] = _create_engine(
            f"{name}.probe", url, probe_pool, settings, None
        )
    return Server(
        reader=refuse_writes(base.execution_options()),
        streams=refuse_writes(streams.execution_options()),
        probe=probe,
    )


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
