"""Alembic environment: async engine, the app's metadata and the app's URL.

Follows Alembic's `async` template, plus the "connection sharing" recipe: a caller
(the tests, a script) may hand in a ready connection as
`config.attributes["connection"]`, otherwise this builds its own engine.
Docs: https://alembic.sqlalchemy.org/en/latest/cookbook.html#using-asyncio-with-alembic
"""

import asyncio
from logging.config import fileConfig
from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.db.types import UTCDateTime
from app.models import Base
from app.settings import get_settings

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name)

target_metadata = Base.metadata


def _database_url() -> str:
    url: str | None = config.attributes.get("database_url")
    return url or get_settings().database_url


def _render_item(type_: str, obj: object, autogen: AutogenContext) -> str | Literal[False]:
    """Write UTCDateTime into new migrations as the plain type it stores, so that
    migrations never import the app (whose code may change after they were written)."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
{%- if cookiecutter.database == "mysql" %}
        autogen.imports.add("from sqlalchemy.dialects import mysql")
        return "mysql.DATETIME(fsp=6)"
{%- else %}
        return "sa.DateTime(timezone=True)"
{%- endif %}
    return False


def _configure(**options: Any) -> None:
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        render_item=_render_item,
{%- if cookiecutter.database == "sqlite" %}
        # SQLite cannot ALTER most things: batch mode copies the table instead.
        render_as_batch=True,
{%- endif %}
        **options,
    )


def run_migrations_offline() -> None:
    """Emit SQL to stdout (`alembic upgrade head --sql`) without a database."""
    _configure(url=_database_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    # NullPool: a migration run is one connection, closed when it ends.
    engine = create_async_engine(_database_url(), poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection: Connection | None = config.attributes.get("connection")
    if connection is None:
        asyncio.run(run_async_migrations())
    else:
        do_run_migrations(connection)


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
