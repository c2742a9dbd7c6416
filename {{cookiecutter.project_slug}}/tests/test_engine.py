{%- set db = cookiecutter.database -%}
"""The engines apply the settings chosen for {{ {'sqlite': 'SQLite', 'postgresql': 'PostgreSQL', 'mysql': 'MySQL/MariaDB'}[db] }} to every connection{% if db != "mysql" %}, and reads
and writes get the transactions they need{% endif %}."""
{% if db == "sqlite" %}
import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import StaticPool

from app.db.engine import Engines, create_engines
from app.settings import Settings


async def test_every_connection_enforces_foreign_keys_and_uses_wal(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        assert await conn.scalar(text("PRAGMA foreign_keys")) == 1
        assert await conn.scalar(text("PRAGMA journal_mode")) == "wal"
        assert await conn.scalar(text("PRAGMA busy_timeout")) == 5000


async def test_savepoints_roll_back_inside_the_transaction(engine: AsyncEngine) -> None:
    """SQLAlchemy emits BEGIN itself, so a savepoint belongs to the outer transaction."""
    async with engine.connect() as conn:
        await conn.begin()
        await conn.execute(text("CREATE TEMP TABLE t (x INTEGER)"))
        nested = await conn.begin_nested()
        await conn.execute(text("INSERT INTO t VALUES (1)"))
        await nested.rollback()
        assert await conn.scalar(text("SELECT count(*) FROM t")) == 0
        await conn.rollback()


async def test_reads_run_beside_a_writer_and_writers_take_turns(
    engines: Engines, test_settings: Settings
) -> None:
    """A writer's BEGIN IMMEDIATE holds the write lock; a read (deferred BEGIN) goes on
    at once and sees the last commit; a second writer waits for the lock."""
    update = text("UPDATE alembic_version SET version_num = 'in progress'")
    read = text("SELECT version_num FROM alembic_version")
    async with engines.writer.connect() as writer, engines.reader.connect() as reader:
        await writer.begin()
        await writer.execute(update)
        before = await asyncio.wait_for(reader.scalar(read), timeout=1)
        assert before != "in progress"
        impatient = create_engines(test_settings.model_copy(update={"db_busy_timeout": 0.2}))
        try:
            with pytest.raises(OperationalError, match="database is locked"):
                async with impatient.writer.begin() as second:
                    await second.execute(update)
        finally:
            await impatient.dispose()
        await writer.rollback()


async def test_in_memory_database_shares_one_connection() -> None:
    engines = create_engines(Settings(database_url="sqlite+aiosqlite:///:memory:"))
    try:
        assert isinstance(engines.writer.pool, StaticPool)
        async with engines.writer.begin() as conn:
            await conn.execute(text("CREATE TABLE shared (x INTEGER)"))
        async with engines.reader.connect() as conn:
            assert await conn.scalar(text("SELECT count(*) FROM shared")) == 0
    finally:
        await engines.dispose()


async def test_a_jobs_engines_use_the_job_preset(test_settings: Settings) -> None:
    """One connection that waits longer for the write lock than a request would."""
    preset = test_settings.model_copy(update={"job_db_pool_size": 2, "job_db_busy_timeout": 12})
    engines = create_engines(preset, for_job=True)
    try:
        [engine] = engines.pools.values()
        assert engine.pool.size() == 2  # type: ignore[attr-defined]
        async with engines.writer.connect() as conn:
            assert await conn.scalar(text("PRAGMA busy_timeout")) == 12000
    finally:
        await engines.dispose()


async def test_streams_and_the_probe_have_pools_of_their_own(test_settings: Settings) -> None:
    """Neither a stream nor /readyz takes a connection that a request could use."""
    engines = create_engines(test_settings.model_copy(update={"export_max_concurrent": 3}))
    try:
        sizes = {name: engine.pool.size() for name, engine in engines.pools.items()}  # type: ignore[attr-defined]
        assert sizes == {
            "database": test_settings.db_pool_size,
            "database.streams": 3,
            "database.probe": 1,
        }
        async with engines.streams.connect() as conn:
            assert await conn.scalar(text("SELECT count(*) FROM alembic_version")) == 1
    finally:
        await engines.dispose()
{%- elif db == "postgresql" %}
import asyncio
import re

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.engine import Engines, create_engines
from app.settings import Settings

UNIQUE_STATEMENT_NAME = re.compile(r"__asyncpg_[0-9a-f-]{36}__")
NOW = text("SELECT now()")
TIMEOUT_MS = text("SELECT setting FROM pg_settings WHERE name = 'statement_timeout'")


async def test_connections_carry_application_name_and_statement_timeout(
    engine: AsyncEngine, test_settings: Settings
) -> None:
    async with engine.connect() as conn:
        name = await conn.scalar(text("SHOW application_name"))
        timeout_ms = await conn.scalar(TIMEOUT_MS)
    assert name == test_settings.db_application_name
    assert int(timeout_ms) == test_settings.db_statement_timeout_ms


def test_pool_is_sized_from_settings(engine: AsyncEngine, test_settings: Settings) -> None:
    assert engine.pool.size() == test_settings.db_pool_size  # type: ignore[attr-defined]


async def test_reads_run_without_a_transaction_and_writes_in_one(engines: Engines) -> None:
    """now() is the start of the transaction: two reads see two, a write sees one."""

    async def two_nows(engine: AsyncEngine) -> tuple[object, object]:
        async with engine.connect() as conn:
            first = await conn.scalar(NOW)
            await asyncio.sleep(0.01)
            return first, await conn.scalar(NOW)

    first, second = await two_nows(engines.primary.reader)
    assert first != second
    first, second = await two_nows(engines.writer)
    assert first == second
    async with engines.writer.connect() as conn:
        assert await conn.scalar(text("SHOW transaction_isolation")) == "read committed"


async def test_pgbouncer_mode_uses_unique_statement_names_and_transactions(
    test_settings: Settings,
) -> None:
    """tests/test_pgbouncer.py in the template runs this against a real PgBouncer."""
    settings = test_settings.model_copy(update={"db_pgbouncer": True})
    engines = create_engines(settings)
    try:
        async with engines.writer.connect() as conn:
            for _ in range(3):  # the same statement, repeatedly
                assert await conn.scalar(text("SELECT 1")) == 1
            # What the next transaction meets on another server connection: none of
            # this one's statements. Prepared anew, never taken from a cache, it runs.
            await conn.exec_driver_sql("DEALLOCATE ALL")
            assert await conn.scalar(text("SELECT 1")) == 1
            names = (await conn.scalars(text("SELECT name FROM pg_prepared_statements"))).all()
            timeout = await conn.scalar(text("SHOW statement_timeout"))
        # Not asyncpg's per-connection counter (__asyncpg_stmt_1__), which collides
        # when PgBouncer hands the next transaction another server connection.
        assert names
        assert all(UNIQUE_STATEMENT_NAME.fullmatch(name) for name in names), names
        assert timeout == "0"  # no startup parameter PgBouncer would refuse
        async with engines.primary.reader.connect() as conn:
            assert await conn.scalar(text("SHOW transaction_read_only")) == "on"
    finally:
        await engines.dispose()


async def test_a_jobs_engines_use_the_job_preset_and_no_replica(test_settings: Settings) -> None:
    preset = test_settings.model_copy(
        update={
            "job_db_pool_size": 3,
            "job_db_statement_timeout_ms": 123_000,
            "database_replica_url": test_settings.database_url,
        }
    )
    engines = create_engines(preset, for_job=True)
    try:
        assert list(engines.pools) == ["primary"]  # a job reads what it writes
        assert engines.pools["primary"].pool.size() == 3  # type: ignore[attr-defined]
        async with engines.writer.connect() as conn:
            assert int(await conn.scalar(TIMEOUT_MS)) == 123_000
    finally:
        await engines.dispose()


async def test_streams_and_the_probe_have_pools_of_their_own(test_settings: Settings) -> None:
    """Neither a stream nor /readyz takes a connection that a request could use; a
    stream reads in a READ ONLY transaction that the server ends if left idle."""
    settings = test_settings.model_copy(
        update={"export_max_concurrent": 3, "export_idle_seconds": 7.5}
    )
    engines = create_engines(settings)
    try:
        sizes = {name: engine.pool.size() for name, engine in engines.pools.items()}  # type: ignore[attr-defined]
        assert sizes == {"primary": settings.db_pool_size, "primary.streams": 3, "primary.probe": 1}
        async with engines.primary.streams.connect() as conn:
            assert await conn.scalar(text("SHOW transaction_read_only")) == "on"
            assert await conn.scalar(text("SHOW idle_in_transaction_session_timeout")) == "12500ms"
        async with engines.primary.reader.connect() as conn:  # the session's own is untouched
            assert await conn.scalar(text("SHOW idle_in_transaction_session_timeout")) == "0"
    finally:
        await engines.dispose()
{%- else %}
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.db.engine import create_engines
from app.settings import Settings


async def _statement_timeout_ms(conn: AsyncConnection) -> float:
    """MariaDB's max_statement_time is in seconds, MySQL's max_execution_time in ms."""
    if conn.dialect.is_mariadb:  # type: ignore[attr-defined]
        return float(await conn.scalar(text("SELECT @@max_statement_time"))) * 1000
    return float(await conn.scalar(text("SELECT @@max_execution_time")))


async def test_connections_are_utc_strict_and_utf8mb4(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        time_zone = await conn.scalar(text("SELECT @@session.time_zone"))
        sql_mode = await conn.scalar(text("SELECT @@session.sql_mode"))
        charset = await conn.scalar(text("SELECT @@character_set_connection"))
        isolation = await conn.get_isolation_level()
        emoji = await conn.scalar(text("SELECT :value"), {"value": "naïve 🐍"})
    assert time_zone == "+00:00"
    assert "STRICT_ALL_TABLES" in sql_mode
    assert charset == "utf8mb4"
    assert isolation == "READ COMMITTED"
    assert emoji == "naïve 🐍"


async def test_pool_recycles_before_the_server_drops_idle_connections(
    engine: AsyncEngine, test_settings: Settings
) -> None:
    async with engine.connect() as conn:
        wait_timeout = await conn.scalar(text("SELECT @@session.wait_timeout"))
    assert test_settings.db_pool_recycle < int(wait_timeout)


async def test_a_jobs_engines_use_the_job_preset_and_no_replica(test_settings: Settings) -> None:
    preset = test_settings.model_copy(
        update={
            "job_db_pool_size": 3,
            "job_db_statement_timeout_ms": 123_000,
            "database_replica_url": test_settings.database_url,
        }
    )
    engines = create_engines(preset, for_job=True)
    try:
        assert list(engines.pools) == ["primary"]  # a job reads what it writes
        assert engines.pools["primary"].pool.size() == 3  # type: ignore[attr-defined]
        async with engines.writer.connect() as conn:
            assert await _statement_timeout_ms(conn) == 123_000
    finally:
        await engines.dispose()


async def test_streams_and_the_probe_have_pools_of_their_own(test_settings: Settings) -> None:
    """Neither a stream nor /readyz takes a connection that a request could use."""
    engines = create_engines(test_settings.model_copy(update={"export_max_concurrent": 3}))
    try:
        sizes = {name: engine.pool.size() for name, engine in engines.pools.items()}  # type: ignore[attr-defined]
        assert sizes == {
            "primary": test_settings.db_pool_size,
            "primary.streams": 3,
            "primary.probe": 1,
        }
        async with engines.primary.streams.connect() as conn:
            assert await conn.scalar(text("SELECT @@session.time_zone")) == "+00:00"
    finally:
        await engines.dispose()
{%- endif %}
