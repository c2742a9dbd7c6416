{%- set db = cookiecutter.database -%}
"""Create the database named in a URL if it does not exist yet.

Used by `python -m scripts.db create`, the post-generation hook and the test
fixtures (which create `<name>_test`). Migrations then build the schema.
"""
{% if db == "sqlite" %}
import asyncio
from pathlib import Path

from sqlalchemy.engine import URL


def _prepare_folder(path: Path) -> bool:
    path.parent.mkdir(parents=True, exist_ok=True)
    return not path.exists()


async def create_database_if_missing(url: URL) -> bool:
    """SQLite creates the file on first connect; only its folder must exist."""
    if url.database in (None, "", ":memory:"):
        return False
    return await asyncio.to_thread(_prepare_folder, Path(url.database))
{%- elif db == "postgresql" %}
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool


async def create_database_if_missing(url: URL) -> bool:
    name = url.database
    if not name:
        raise ValueError("the database URL names no database")
    # CREATE DATABASE cannot run in a transaction, hence AUTOCOMMIT, and not while
    # connected to the database itself, hence the server's "postgres" database.
    engine = create_async_engine(
        url.set(database="postgres"), poolclass=NullPool, isolation_level="AUTOCOMMIT"
    )
    try:
        async with engine.connect() as conn:
            exists = await conn.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            )
            if exists:
                return False
            # Identifiers cannot be bound parameters: the dialect quotes the name.
            quoted = conn.dialect.identifier_preparer.quote(name)
            await conn.exec_driver_sql("CREATE DATABASE " + quoted + " ENCODING 'UTF8'")
            return True
    finally:
        await engine.dispose()
{%- else %}
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool


async def create_database_if_missing(url: URL) -> bool:
    name = url.database
    if not name:
        raise ValueError("the database URL names no database")
    engine = create_async_engine(url.set(database=""), poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            exists = await conn.scalar(
                text("SELECT 1 FROM information_schema.schemata WHERE schema_name = :name"),
                {"name": name},
            )
            if exists:
                return False
            # Identifiers cannot be bound parameters: the dialect quotes the name.
            quoted = conn.dialect.identifier_preparer.quote(name)
            await conn.exec_driver_sql(
                "CREATE DATABASE " + quoted + " CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )
            return True
    finally:
        await engine.dispose()
{%- endif %}
