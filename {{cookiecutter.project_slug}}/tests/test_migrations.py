{%- set db = cookiecutter.database -%}
"""The migrations build exactly what the models declare, can be undone, and run the
same whatever a tool hands `env.py`. A revision that fails {% if db == "mysql" %}keeps the revisions
before it and its own earlier statements (no transactional DDL). A migration
waits for a lock at most{% elif db == "sqlite" %}rolls the whole run back
(one transaction). A migration waits for a lock at most{% else %}keeps the revisions before it and
leaves nothing of its own. A migration waits for a lock at most{% endif %}
MIGRATION_LOCK_TIMEOUT, retries, and says in one line which lock it gave up on.

Each test migrates a database of its own (`<test database>_migrations`), created
empty for it: the shared test database is never migrated up or down here.
pytest-alembic's built-in tests are bound here explicitly (its own collector does
not work on pytest 9), with a plain pooled AsyncEngine as its docs show.
Docs: https://pytest-alembic.readthedocs.io/en/latest/
"""

import asyncio
import contextlib
{%- if db == "sqlite" %}
import multiprocessing
{%- endif %}
import os
{%- if db == "sqlite" %}
import random
import sqlite3
import time
{%- endif %}
from collections.abc import AsyncIterator, Callable, Iterator
{%- if db == "sqlite" %}
from concurrent.futures import ProcessPoolExecutor
{%- endif %}
from pathlib import Path

import pytest
import pytest_alembic
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from pytest_alembic import tests as builtin
from sqlalchemy import Connection, inspect, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from app.db import migration_guard
from app.db.engine import {% if db == "sqlite" %}BEGIN_MODE, {% endif %}create_engines
from app.settings import Settings, get_settings
from tests.databases import alembic_config_for, drop_database, fresh_database, sibling_url

ROOT = Path(__file__).resolve().parent.parent
VERSIONS = ROOT / "migrations" / "versions"
COMMAND_TIMEOUT = 60  # the longest a test's migration may wait for its lock
{%- if db == "sqlite" %}
NEW_FILE_PAIRS = 150  # of connections that open a new file together
{%- endif %}
REVISION = '''"""A revision of the tests, on top of the real ones."""

import time

import sqlalchemy as sa
from alembic import op

revision = "{revision}"
down_revision = "{down_revision}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    {upgrade}


def downgrade() -> None:
    pass
'''
TABLE = 'op.create_table("{}", sa.Column("id", sa.Integer(), primary_key=True))'
{%- if db == "postgresql" %}
SLEEP = 'op.execute("SELECT pg_sleep({})")'
{%- elif db == "mysql" %}
SLEEP = 'op.execute("SELECT SLEEP({})")'
{%- endif %}


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
def alembic_runner(migrations_url: URL) -> Iterator[pytest_alembic.MigrationContext]:
    """A plain pooled engine, as pytest-alembic's docs show: it runs each step in an
    `asyncio.run` of its own, and env.py must not hand a later one a connection of
    an earlier (closed) event loop."""
    config = pytest_alembic.Config.from_raw_config(alembic_config_for(migrations_url))
    engine = create_async_engine(migrations_url)
    # pytest-alembic's annotation names sync engines only; it takes an AsyncEngine.
    with pytest_alembic.runner(config=config, engine=engine) as runner:  # type: ignore[arg-type]
        yield runner
    asyncio.run(engine.dispose())


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
{%- if db == "sqlite" %}
    # A reader: no wait for the write lock.
    engine = engine.execution_options(**{BEGIN_MODE: "DEFERRED"})
{%- endif %}
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


def _on_top(tmp_path: Path, url: URL, *upgrades: str) -> tuple[Config, list[str]]:
    """The real migrations and, on top of them, one revision per `upgrades` body:
    (the config that sees them all, their revision ids)."""
    revisions, down = [], _head()
    for number, upgrade in enumerate(upgrades, start=1):
        revision = f"ffff_{number:02d}"
        source = REVISION.format(revision=revision, down_revision=down, upgrade=upgrade)
        (tmp_path / f"{revision}.py").write_text(source, encoding="utf-8")
        revisions.append(revision)
        down = revision
    config = alembic_config_for(url)
    config.set_main_option("version_locations", os.pathsep.join([str(VERSIONS), str(tmp_path)]))
    return config, revisions


@pytest.fixture
def limits(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Set MIGRATION_* (and other) settings, as env.py reads them: from the environment."""

    def set_limits(**values: str | None) -> None:
        for name, value in values.items():
            if value is None:
                monkeypatch.delenv(name.upper(), raising=False)
            else:
                monkeypatch.setenv(name.upper(), value)
        get_settings.cache_clear()

    # Short pauses between retries: the backoff's shape is not what is tested here.
    monkeypatch.setattr(migration_guard, "FIRST_PAUSE", 0.2)
    yield set_limits
    get_settings.cache_clear()


async def test_a_failed_revision_{{ "leaves_the_ones_before_it_and_its_earlier_statements" if db == "mysql" else "rolls_back_the_whole_run" if db == "sqlite" else "leaves_the_ones_before_it_and_nothing_of_its_own" }}(
    tmp_path: Path, migrations_url: URL, migrations_engine: AsyncEngine
) -> None:
    config, ({{ "_" if db == "sqlite" else "first" }}, _, _) = _on_top(
        tmp_path,
        migrations_url,
        TABLE.format("first_kept"),
        TABLE.format("half_done") + '\n    op.execute("THIS IS NOT SQL")',
        TABLE.format("never_reached"),
    )
    await asyncio.to_thread(command.upgrade, config, _head())
    before, _ = await _state_of(migrations_engine)
    with pytest.raises(Exception, match="THIS IS NOT SQL"):
        await asyncio.to_thread(command.upgrade, config, "heads")
    tables, version = await _state_of(migrations_engine)
{%- if db == "mysql" %}
    # Each revision commits on its own; and no transactional DDL: the table created
    # before the failure stays too. To recover, undo what ran (here: DROP TABLE
    # half_done), fix the migration, upgrade again.
    assert version == first
    assert tables == before | {"first_kept", "half_done"}
{%- elif db == "sqlite" %}
    # One transaction for the whole run (it holds SQLite's write lock): nothing stays.
    assert version == _head()
    assert tables == before
{%- else %}
    # A transaction per revision: the first stays, the failed one left nothing.
    assert version == first
    assert tables == before | {"first_kept"}
{%- endif %}


async def _hold_a_lock_on_lock_probe(engine: AsyncEngine, release: asyncio.Event) -> None:
    """An ordinary open transaction that has {% if db == "sqlite" %}written to{% else %}read{% endif %} `lock_probe`, until `release`."""
    async with engine.begin() as conn:
{%- if db == "sqlite" %}
        await conn.execute(text("INSERT INTO lock_probe (id) VALUES (1)"))
{%- else %}
        await conn.execute(text("SELECT * FROM lock_probe"))
{%- endif %}
        # Bounded: without a lock timeout the test fails instead of hanging.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(release.wait(), COMMAND_TIMEOUT / 3)
        await conn.rollback()


async def test_a_lock_not_granted_in_time_is_retried_then_given_up_in_one_line(
    tmp_path: Path,
    migrations_url: URL,
    migrations_engine: AsyncEngine,
    limits: Callable[..., None],
) -> None:
    """While an ordinary transaction holds a conflicting lock, the schema change waits
    MIGRATION_LOCK_TIMEOUT, not longer (what queues behind it then moves again); it
    is retried, and reaches head by itself once the transaction ends."""
    config, (table, change) = _on_top(
        tmp_path,
        migrations_url,
        TABLE.format("lock_probe"),
        'op.add_column("lock_probe", sa.Column("note", sa.String(20)))',
    )
    await asyncio.to_thread(command.upgrade, config, table)
    release = asyncio.Event()
    blocker = asyncio.create_task(_hold_a_lock_on_lock_probe(migrations_engine, release))
    await asyncio.sleep(0.2)  # the blocker holds its lock

    limits(migration_lock_timeout="0.5", migration_lock_retries="1")
    with pytest.raises(CommandError) as failed:
        await asyncio.to_thread(command.upgrade, config, "heads")
    message = str(failed.value)
    assert "\n" not in message
    assert message.startswith("migration gave up after 2 attempts: ")
{%- if db == "sqlite" %}
    assert "the database's write lock was not granted within MIGRATION_LOCK_TIMEOUT" in message
{%- else %}
    assert "the lock on lock_probe was not granted within MIGRATION_LOCK_TIMEOUT" in message
{%- endif %}
    assert (await _state_of(migrations_engine))[1] == table

    # Retried until the blocker leaves: it reaches head by itself.
    limits(migration_lock_timeout="0.5", migration_lock_retries="10")
    migrating = asyncio.create_task(asyncio.to_thread(command.upgrade, config, "heads"))
    await asyncio.sleep(1)
    assert not migrating.done()
    release.set()
    await blocker
    await migrating
    assert (await _state_of(migrations_engine))[1] == change
{%- if db != "sqlite" %}


async def test_the_migration_has_its_own_statement_timeout_not_the_webs(
    tmp_path: Path, migrations_url: URL, migrations_engine: AsyncEngine, limits: Callable[..., None]
) -> None:
    """A long backfill is not cut short by the web's statement timeout
    (DB_STATEMENT_TIMEOUT_MS), only by MIGRATION_STATEMENT_TIMEOUT if that is set."""
    config, (_, sleep) = _on_top(tmp_path, migrations_url, TABLE.format("first"), SLEEP.format(1))
{%- if db == "postgresql" %}
    limits(db_statement_timeout_ms="300", migration_statement_timeout="0.3")
    with pytest.raises(Exception, match="statement timeout"):
        await asyncio.to_thread(command.upgrade, config, "heads")
{%- else %}
    async with migrations_engine.connect():
        mariadb = migrations_engine.dialect.is_mariadb  # type: ignore[attr-defined]
    if mariadb:  # MySQL's max_execution_time ends a SLEEP early, without an error
        limits(db_statement_timeout_ms="300", migration_statement_timeout="0.3")
        with pytest.raises(Exception, match="max_statement_time"):
            await asyncio.to_thread(command.upgrade, config, "heads")
{%- endif %}
    limits(db_statement_timeout_ms="300", migration_statement_timeout=None)
    await asyncio.to_thread(command.upgrade, config, "heads")
    assert (await _state_of(migrations_engine))[1] == sleep
{%- endif %}
{%- if db == "postgresql" %}


def test_migrations_refuse_to_run_through_pgbouncer(
    migrations_url: URL, limits: Callable[..., None]
) -> None:
    """The advisory lock and the session's limits need a session of their own."""
    limits(db_pgbouncer="true")
    with pytest.raises(CommandError, match="need a direct connection to PostgreSQL"):
        command.upgrade(alembic_config_for(migrations_url), "head")
{%- endif %}
{%- if db == "sqlite" %}


def _open_a_new_file(path: str, at: float) -> str:
    """In a process of its own: `create_in_wal_mode` from the time `at` on the dot."""
    while time.time() < at:
        pass  # a sleep would wake up to a millisecond late
    limits = migration_guard.MigrationLimits(lock_timeout=5.0, lock_retries=0)
    try:
        migration_guard.create_in_wal_mode(path, limits)
    except sqlite3.OperationalError as error:
        return str(error)
    return "ok"


def test_migrators_that_open_a_new_file_together_all_succeed(tmp_path: Path) -> None:
    """Connections that switch a new file into WAL mode within a few milliseconds of
    each other: SQLite refuses one of them at once, busy timeout or not (about 1 pair
    in 30 with the bare PRAGMA, measured). Many pairs, on new files, all succeed."""
    spawn = multiprocessing.get_context("spawn")  # no fork of pytest's threads
    with ProcessPoolExecutor(2, mp_context=spawn) as pool:
        pool.submit(str).result()  # both started before the clock matters
        pool.submit(str).result()
        for pair in range(NEW_FILE_PAIRS):
            path, at = str(tmp_path / f"new-{pair}.db"), time.time() + 0.02
            offset = random.uniform(0, 0.004)  # noqa: S311 -- not for security
            opened = [pool.submit(_open_a_new_file, path, at + o) for o in (0, offset)]
            assert [result.result() for result in opened] == ["ok", "ok"], pair
{%- endif %}


def test_migrations_do_not_import_the_app() -> None:
    """A migration runs against the code of any later day: it must not depend on it."""
    for migration in VERSIONS.glob("*.py"):
        source = migration.read_text(encoding="utf-8")
        assert "from app" not in source, migration.name
        assert "import app" not in source, migration.name
