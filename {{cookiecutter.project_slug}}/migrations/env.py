{%- set db = cookiecutter.database -%}
"""Alembic environment: the app's engine setup, its metadata and its URL.

Follows Alembic's `async` template and its "connection sharing" recipe: a caller
(the tests, pytest-alembic, a script) may hand in what to migrate with as
`config.attributes["connection"]`: a Connection, an Engine, an AsyncEngine, or an
AsyncConnection (then call the command inside `await conn.run_sync(...)`).
Otherwise this builds an engine like the app's, with one connection (NullPool).
Whatever it migrates with, the run is wrapped in app/db/migration_guard.py: one
migrator at a time, MIGRATION_* limits instead of the web's, retries after a lock
timeout.
{%- if db == "sqlite" %}

On SQLite a migration is atomic: SQLAlchemy emits `BEGIN IMMEDIATE` (the driver
would not wrap DDL in a transaction at all) and the whole run, every revision in it
and the version table, commits or rolls back as one. Foreign keys are off while it
runs, as SQLite's ALTER TABLE procedure requires (batch mode recreates tables, and
dropping a referenced table would otherwise cascade), and checked before the commit.
{%- elif db == "postgresql" %}

On PostgreSQL DDL is transactional, and each revision runs in a transaction of its
own (`transaction_per_migration`): a revision that fails leaves nothing behind and
the revisions before it applied, and holds its locks only while it runs. It needs a
direct connection to the server: never through PgBouncer (DB_PGBOUNCER).
{%- else %}

MySQL and MariaDB commit every DDL statement on its own: a migration that fails
half-way leaves its earlier statements applied while the revision stays where it
was (docs/migrations.md says how to recover).
{%- endif %}
Docs: https://alembic.sqlalchemy.org/en/latest/cookbook.html#using-asyncio-with-alembic
"""

import asyncio
from logging.config import fileConfig
from typing import Any, Literal

from alembic import context
{%- if db == "postgresql" %}
from alembic.autogenerate import renderers
{%- endif %}
from alembic.autogenerate.api import AutogenContext
{%- if db == "postgresql" %}
from alembic.autogenerate.render import render_op
from alembic.operations import ops
from alembic.runtime.migration import MigrationContext
from alembic.util import CommandError
{%- endif %}
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import NullPool

from app.db.engine import create_engines
from app.db.migration_guard import (
    MigrationLimits,
{%- if db == "sqlite" %}
    create_in_wal_mode,
{%- endif %}
    one_migrator,
{%- if db == "mysql" %}
    retry_statements,
{%- endif %}
    run_with_retries,
)
from app.db.types import {% if db == "mysql" %}BinaryUUID, {% endif %}UTCDateTime
from app.models import Base
from app.settings import Settings, get_settings

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name)

target_metadata = Base.metadata


def _settings() -> Settings:
    url: str | None = config.attributes.get("database_url")
    settings = get_settings()
    return settings.model_copy(update={"database_url": url}) if url else settings


def _render_item(type_: str, obj: object, autogen: AutogenContext) -> str | Literal[False]:
    """Write the app's column types into new migrations as the plain types they
    store, so that migrations never import the app (whose code may change after
    they were written)."""
    if type_ != "type":
        return False
{%- if db == "mysql" %}
    if isinstance(obj, UTCDateTime):
        autogen.imports.add("from sqlalchemy.dialects import mysql")
        return "mysql.DATETIME(fsp=6)"
    if isinstance(obj, BinaryUUID):
        autogen.imports.add("from sqlalchemy.dialects import mysql")
        return "mysql.BINARY(length=16)"
{%- elif db == "postgresql" %}
    if isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
{%- else %}
    if isinstance(obj, UTCDateTime):
        return "sa.DateTime()"
{%- endif %}
    return False
{%- if db == "postgresql" %}


class _OutsideTheTransaction(ops.MigrateOperation):
    """An index built or dropped CONCURRENTLY, which PostgreSQL does only outside a
    transaction: rendered inside `autocommit_block()`."""

    def __init__(self, operation: ops.CreateIndexOp | ops.DropIndexOp) -> None:
        self.operation = operation

    def reverse(self) -> ops.MigrateOperation:
        return _OutsideTheTransaction(self.operation.reverse())

    def to_diff_tuple(self) -> tuple[Any, ...]:
        return self.operation.to_diff_tuple()


@renderers.dispatch_for(_OutsideTheTransaction)
def _render_outside_the_transaction(
    autogen: AutogenContext, operation: _OutsideTheTransaction
) -> list[str]:
    body = render_op(autogen, operation.operation)
    return ["with op.get_context().autocommit_block():", *body, ""]


def _index_concurrently(
    context: MigrationContext, revision: Any, directives: list[ops.MigrationScript]
) -> None:
    """`make migration`: an index on a table that exists already is built (or dropped)
    CONCURRENTLY and IF [NOT] EXISTS, outside the revision's transaction, so that
    writes to the table go on meanwhile (squawk's require-concurrent-index-creation).
    One on a table that the revision creates or drops stays as it is."""
    for script in directives:
        for container in (*script.upgrade_ops_list, *script.downgrade_ops_list):
            whole = {
                operation.table_name
                for operation in container.ops
                if isinstance(operation, ops.CreateTableOp | ops.DropTableOp)
            }
            _rewrite_indexes(container, whole)


def _rewrite_indexes(container: ops.OpContainer, whole_tables: set[str]) -> None:
    for position, operation in enumerate(container.ops):
        if isinstance(operation, ops.ModifyTableOps):
            _rewrite_indexes(operation, whole_tables)
        elif isinstance(operation, ops.CreateIndexOp | ops.DropIndexOp):
            if operation.table_name in whole_tables:
                continue
            operation.kw["postgresql_concurrently"] = True
            if isinstance(operation, ops.CreateIndexOp):
                operation.if_not_exists = True
            else:
                operation.if_exists = True
            container.ops[position] = _OutsideTheTransaction(operation)
{%- endif %}


def _configure(**options: Any) -> None:
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        render_item=_render_item,
{%- if db == "sqlite" %}
        # SQLite cannot ALTER most things: batch mode copies the table instead.
        render_as_batch=True,
        # The driver does not wrap DDL in transactions; SQLAlchemy's BEGIN does.
        transactional_ddl=True,
{%- elif db == "postgresql" %}
        # Each revision commits on its own and holds its locks only while it runs.
        transaction_per_migration=True,
        process_revision_directives=_index_concurrently,
{%- endif %}
        **options,
    )


def run_migrations_offline() -> None:
    """Emit SQL to stdout (`alembic upgrade head --sql`) without a database."""
    settings = _settings()
    _configure(url=settings.database_url, literal_binds=True, dialect_opts={"paramstyle": "named"})
{%- if db == "postgresql" %}
    # The limits an online run sets on its session, for whoever applies this SQL.
    limits = MigrationLimits.from_settings(settings)
    context.execute(f"SET lock_timeout = {round(limits.lock_timeout * 1000)}")
    context.execute(f"SET statement_timeout = {round((limits.statement_timeout or 0) * 1000)}")
{%- endif %}
    with context.begin_transaction():
        context.run_migrations()


def _run_revisions() -> None:
    with context.begin_transaction():
        context.run_migrations()
{%- if db == "sqlite" %}
        violations = context.get_bind().exec_driver_sql("PRAGMA foreign_key_check").all()
        if violations:
            raise RuntimeError(f"the migration broke foreign keys: {violations[:5]}")
{%- endif %}


def do_run_migrations(connection: Connection) -> None:
    limits = MigrationLimits.from_settings(_settings())
    # In a caller's transaction a lock timeout ends that transaction: no retry.
    retry = not connection.in_transaction()
{%- if db == "mysql" %}
    retry_statements(connection)
{%- endif %}
    with one_migrator(connection, limits):
        _configure(connection=connection)
        run_with_retries(_run_revisions, connection, limits, retry=retry)


async def run_async_migrations(engine: AsyncEngine) -> None:
    """Migrate in this event loop, then close what it opened: a pooled connection
    belongs to the loop that opened it, and each run has a new one (`asyncio.run`).
    Connections that the engine's pool kept from another loop are set aside unused."""
    await engine.dispose(close=False)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if isinstance(connectable, Connection):
        do_run_migrations(connectable)
    elif isinstance(connectable, Engine):
        with connectable.connect() as connection:
            do_run_migrations(connection)
    elif isinstance(connectable, AsyncConnection):
        # Called inside the caller's `await conn.run_sync(...)`: its sync side works.
        do_run_migrations(connectable.sync_connection)  # type: ignore[arg-type]
    elif isinstance(connectable, AsyncEngine):
        asyncio.run(run_async_migrations(connectable))
    else:
        settings = _settings()
{%- if db == "postgresql" %}
        if settings.db_pgbouncer:
            raise CommandError(
                "migrations need a direct connection to PostgreSQL (a session-level advisory "
                "lock and session settings, which PgBouncer's transaction mode does not keep): "
                "point DATABASE_URL at the server and leave DB_PGBOUNCER unset for the migration"
            )
{%- endif %}
{%- if db == "sqlite" %}
        create_in_wal_mode(settings.url.database or "", MigrationLimits.from_settings(settings))
{%- endif %}
        # The app's connection setup, one connection at a time (NullPool).
        engines = create_engines(settings, poolclass=NullPool{% if db == "sqlite" %}, enforce_foreign_keys=False{% endif %})
        asyncio.run(run_async_migrations(engines.writer))


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
