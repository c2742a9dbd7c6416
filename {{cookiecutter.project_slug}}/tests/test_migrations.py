{%- set db = cookiecutter.database -%}
"""The migrations build exactly what the models declare, can be undone, and run the
same whatever a tool hands `env.py`; a migration that fails {% if db == "mysql" %}leaves what this
database cannot roll back, and nothing more{% else %}leaves nothing behind{% endif %}.

Each test migrates a database of its own (`<test database>_migrations`), created
empty for it: the shared test database is never migrated up or down here.
pytest-alembic's built-in tests are bound here explicitly (its own collector does
not work on pytest 9).
Docs: https://pytest-alembic.readthedocs.io/en/latest/
"""

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import pytest_alembic
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from pytest_alembic import tests as builtin
from sqlalchemy import Connection, inspect, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import NullPool

from app.db.engine import create_engines
from app.settings import Settings
from tests.databases import alembic_config_for, drop_database, fresh_database, sibling_url

VERSIONS = Path(__file__).resolve().parent.parent / "migrations" / "versions"
BROKEN = '''"""A migration that fails half-way: a table, then SQL no database accepts."""

import sqlalchemy as sa
from alembic import op

revision = "ffff_broken"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("half_done", sa.Column("id", sa.Integer(), primary_key=True))
    op.execute("THIS IS NOT SQL")


def downgrade() -> None:
    pass
'''


@pytest.fixture
async def migrations_url(test_settings: Settings) -> AsyncIterator[URL]:
    """An empty database of this test's own."""
    url = sibling_url(test_settings.url, "migrations")
    await fresh_database(url, migrate=False)
    yield url
    await drop_database(url)


@pytest.fixture
def migrations_engine(migrations_url: URL, test_settings: Settings) -> Iterator[AsyncEngine]:
    """The app's engine setup on that database, as env.py builds its own."""
    settings = test_settings.model_copy(
        update={"database_url": migrations_url.render_as_string(hide_password=False)}
    )
    engines = create_engines(settings, poolclass=NullPool{% if db == "sqlite" %}, enforce_foreign_keys=False{% endif %})
    yield engines.writer
    asyncio.run(engines.dispose())


@pytest.fixture
def alembic_runner(
    migrations_url: URL, migrations_engine: AsyncEngine
) -> Iterator[pytest_alembic.MigrationContext]:
    config = pytest_alembic.Config.from_raw_config(alembic_config_for(migrations_url))
    # pytest-alembic's annotation names sync engines only; it takes an AsyncEngine.
    with pytest_alembic.runner(config=config, engine=migrations_engine) as runner:  # type: ignore[arg-type]
        yield runner


def test_single_head_revision(alembic_runner: pytest_alembic.MigrationContext) -> None:
    builtin.test_single_head_revision(alembic_runner)


def test_upgrade(alembic_runner: pytest_alembic.MigrationContext) -> None:
    builtin.test_upgrade(alembic_runner)


def test_model_definitions_match_ddl(alembic_runner: pytest_alembic.MigrationContext) -> None:
    builtin.test_model_definitions_match_ddl(alembic_runner)


def test_up_down_consistency(alembic_runner: pytest_alembic.MigrationContext) -> None:
    builtin.test_up_down_consistency(alembic_runner)


def _head() -> str:
    head = ScriptDirectory.from_config(alembic_config_for(URL.create("unused"))).get_current_head()
    assert head is not None
    return head


def _state(sync_connection: Connection) -> tuple[set[str], str | None]:
    tables = set(inspect(sync_connection).get_table_names())
    version = (
        sync_connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        if "alembic_version" in tables
        else None
    )
    return tables, version


async def _state_of(engine: AsyncEngine) -> tuple[set[str], str | None]:
    async with engine.connect() as connection:
        return await connection.run_sync(_state)


Migrate = Callable[[Config, AsyncEngine], None]


def _with_async_engine(config: Config, engine: AsyncEngine) -> None:
    config.attributes["connection"] = engine
    command.upgrade(config, "head")  # env.py runs its own event loop


def _in_run_sync(kind: str) -> Migrate:
    def migrate(config: Config, engine: AsyncEngine) -> None:
        async def go() -> None:
            async with engine.connect() as connection:

                def upgrade(sync_connection: Connection) -> None:
                    config.attributes["connection"] = {
                        "AsyncConnection": connection,
                        "Connection": sync_connection,
                        "Engine": engine.sync_engine,
                    }[kind]
                    command.upgrade(config, "head")

                await connection.run_sync(upgrade)
                await connection.commit()

        asyncio.run(go())

    return migrate


@pytest.mark.parametrize(
    "migrate",
    [
        _with_async_engine,
        _in_run_sync("AsyncConnection"),
        _in_run_sync("Connection"),
        _in_run_sync("Engine"),
    ],
    ids=["AsyncEngine", "AsyncConnection", "Connection", "Engine"],
)
async def test_env_takes_whatever_a_tool_hands_it(
    migrations_url: URL, migrations_engine: AsyncEngine, migrate: Migrate
) -> None:
    config = alembic_config_for(migrations_url)
    await asyncio.to_thread(migrate, config, migrations_engine)
    _, version = await _state_of(migrations_engine)
    assert version == _head()


@pytest.fixture
def broken_migration(tmp_path: Path, migrations_url: URL) -> Config:
    """The real migrations, and a broken one on top of them."""
    (tmp_path / "ffff_broken.py").write_text(BROKEN.format(head=_head()), encoding="utf-8")
    config = alembic_config_for(migrations_url)
    config.set_main_option("version_locations", os.pathsep.join([str(VERSIONS), str(tmp_path)]))
    return config


async def test_a_failed_migration_{{ "leaves_what_ran_before_it_and_the_old_revision" if db == "mysql" else "leaves_nothing_behind" }}(
    broken_migration: Config, migrations_engine: AsyncEngine
) -> None:
    await asyncio.to_thread(command.upgrade, broken_migration, _head())
    before, _ = await _state_of(migrations_engine)
    with pytest.raises(Exception, match="THIS IS NOT SQL"):
        await asyncio.to_thread(command.upgrade, broken_migration, "ffff_broken")
    tables, version = await _state_of(migrations_engine)
    assert version == _head()
{%- if db == "mysql" %}
    # No transactional DDL: the table created before the failure stays. To recover,
    # undo what ran (here: DROP TABLE half_done), fix the migration, upgrade again.
    assert tables == before | {"half_done"}
{%- else %}
    assert tables == before
{%- endif %}


def test_migrations_do_not_import_the_app() -> None:
    """A migration runs against the code of any later day: it must not depend on it."""
    for migration in VERSIONS.glob("*.py"):
        source = migration.read_text(encoding="utf-8")
        assert "from app" not in source, migration.name
        assert "import app" not in source, migration.name
