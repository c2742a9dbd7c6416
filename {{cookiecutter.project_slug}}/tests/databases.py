{%- set db = cookiecutter.database -%}
"""Scratch databases beside the test database: created empty, migrated on request,
dropped afterwards, for tests that must not touch the shared one."""

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import URL
{%- if db != "sqlite" %}
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool
{%- endif %}

from app.db.create_database import create_database_if_missing

ALEMBIC_INI = str(Path(__file__).resolve().parent.parent / "alembic.ini")


def sibling_url(test_url: URL, suffix: str) -> URL:
    """`<test database>_<suffix>` on the same server."""
{%- if db == "sqlite" %}
    path = Path(test_url.database or "")
    return test_url.set(database=str(path.with_name(f"{path.stem}_{suffix}{path.suffix}")))
{%- else %}
    return test_url.set(database=f"{test_url.database}_{suffix}")
{%- endif %}


def alembic_config_for(url: URL) -> Config:
    config = Config(ALEMBIC_INI)
    config.attributes["database_url"] = url.render_as_string(hide_password=False)
    config.attributes["configure_logger"] = False
    return config
{% if db == "sqlite" %}

def _remove_files(database: str) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
{% endif %}

async def drop_database(url: URL) -> None:
{%- if db == "sqlite" %}
    await asyncio.to_thread(_remove_files, url.database or "")
{%- elif db == "postgresql" %}
    admin = create_async_engine(
        url.set(database="postgres"), poolclass=NullPool, isolation_level="AUTOCOMMIT"
    )
    try:
        async with admin.connect() as conn:
            quoted = conn.dialect.identifier_preparer.quote(url.database or "")
            await conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")
    finally:
        await admin.dispose()
{%- else %}
    admin = create_async_engine(url.set(database=""), poolclass=NullPool)
    try:
        async with admin.connect() as conn:
            quoted = conn.dialect.identifier_preparer.quote(url.database or "")
            await conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted}")
    finally:
        await admin.dispose()
{%- endif %}


async def fresh_database(url: URL, *, migrate: bool = True) -> None:
    """An empty database at `url` (dropped first if it exists), at head if `migrate`."""
    await drop_database(url)
    await create_database_if_missing(url)
    if migrate:
        # Alembic's env.py runs its own event loop: in a thread, not in this one.
        await asyncio.to_thread(command.upgrade, alembic_config_for(url), "head")
