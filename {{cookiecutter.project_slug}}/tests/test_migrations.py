"""The migrations build exactly what the models declare, and can be undone."""

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.models import Base
from tests.helpers import run_in_thread


def _diff(sync_connection: Connection) -> list[object]:
    context = MigrationContext.configure(sync_connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


def _tables(sync_connection: Connection) -> set[str]:
    return set(inspect(sync_connection).get_table_names())


def test_single_head(alembic_config: Config) -> None:
    assert len(ScriptDirectory.from_config(alembic_config).get_heads()) == 1


async def test_models_match_migrations(connection: AsyncConnection) -> None:
    assert await connection.run_sync(_diff) == []


@pytest.mark.usefixtures("migrated_database")
async def test_upgrade_downgrade_upgrade(alembic_config: Config, engine: AsyncEngine) -> None:
    expected = set(Base.metadata.tables) | {"alembic_version"}

    run_in_thread(command.downgrade, alembic_config, "base")
    async with engine.connect() as conn:
        assert await conn.run_sync(_tables) == {"alembic_version"}

    run_in_thread(command.upgrade, alembic_config, "head")
    async with engine.connect() as conn:
        assert await conn.run_sync(_tables) == expected
        assert await conn.run_sync(_diff) == []


def test_migrations_do_not_import_the_app() -> None:
    """A migration runs against the code of any later day: it must not depend on it."""
    versions = Path(__file__).resolve().parent.parent / "migrations" / "versions"
    for migration in versions.glob("*.py"):
        source = migration.read_text(encoding="utf-8")
        assert "from app" not in source, migration.name
        assert "import app" not in source, migration.name
