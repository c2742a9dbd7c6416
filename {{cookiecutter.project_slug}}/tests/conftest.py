{%- set db = cookiecutter.database -%}
{%- set auth = cookiecutter.auth == "jwt" -%}
"""Fixtures: a dedicated test database built by the real migrations, and one
rolled-back transaction per test.

Each test gets a connection with an open outer transaction; sessions join it
through savepoints (`join_transaction_mode="create_savepoint"`), so application
code may commit or roll back freely and the test still ends with a ROLLBACK.
Docs: https://docs.sqlalchemy.org/en/20/orm/session_transaction.html#joining-a-session-into-an-external-transaction-such-as-for-test-suites
{%- if auth %}

Every test but tests/test_auth.py acts as the owner of whatever it touches
(`act_as_owner`): authentication is not what those tests are about.
tests/test_auth.py uses `auth_client`, which checks tokens for real.
{%- endif %}
"""

import asyncio
import logging
import os
import socket
from collections.abc import AsyncIterator, Iterator
{%- if db == "sqlite" %}
from pathlib import Path
{%- endif %}
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from app.db.create_database import create_database_if_missing
from app.db.engine import Engines, create_engines
from app.db.session import create_session_factory
from app.main import create_app
from app.models import Base
from app.settings import Settings
from tests.helpers import {% if auth %}RolledBackDatabase, {% endif %}rolled_back_app, run_in_thread, serve
from tests.scratch_models import ScratchBase

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TABLES = Base.metadata.sorted_tables


class SuiteSettings(BaseSettings):
    """Where the tests run: TEST_DATABASE_URL from the environment or `.env`."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    test_database_url: str = "{{ cookiecutter.__test_database_url }}"


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """An app's lifespan configures logging onto the stderr of the test that started
    it; the next test must not write to that (closed) stream."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level


@pytest.fixture(scope="session")
def test_settings() -> Settings:
    settings = Settings(
        database_url=SuiteSettings().test_database_url,
        environment="test",
        secret_key="test-only-secret-key-of-32-bytes",  # noqa: S106 -- signs the cursors
        metrics_token=None,  # /metrics open, whatever .env says (tests/test_edge.py sets one)
{%- if auth %}
        jwt_secret_key="test-only-jwt-secret-key-of-32-bytes",  # noqa: S106
        # Cheap hashes: the suite registers many users (tests/test_auth.py checks
        # the real cost where time matters).
        password_hash_time_cost=1,
        password_hash_memory_kib=1024,
        password_hash_parallelism=1,
{%- endif %}
    )
{%- if db == "sqlite" %}
    name = Path(settings.url.database or "").stem
{%- else %}
    name = settings.url.database or ""
{%- endif %}
    if not name.endswith("_test"):
        pytest.exit(
            f"refusing to run: TEST_DATABASE_URL must name a database ending in '_test', "
            f"got {name!r}",
            returncode=2,
        )
    return settings


@pytest.fixture(scope="session")
def alembic_config(test_settings: Settings) -> Config:
    config = Config(os.path.join(PROJECT_ROOT, "alembic.ini"))
    config.attributes["database_url"] = test_settings.database_url
    config.attributes["configure_logger"] = False
    return config


@pytest.fixture(scope="session")
def migrated_database(test_settings: Settings, alembic_config: Config) -> None:
    """Create the test database if needed and rebuild its schema from the migrations."""
    run_in_thread(asyncio.run, create_database_if_missing(test_settings.url))
    run_in_thread(command.downgrade, alembic_config, "base")
    run_in_thread(command.upgrade, alembic_config, "head")


@pytest.fixture(scope="session")
async def engines(migrated_database: None, test_settings: Settings) -> AsyncIterator[Engines]:
    engines = create_engines(test_settings)
    yield engines
    await engines.dispose()


@pytest.fixture(scope="session")
def engine(engines: Engines) -> AsyncEngine:
    """The writer: transactions on the test database."""
    return engines.writer


@pytest.fixture(autouse=True)
async def _nothing_left_behind(engine: AsyncEngine) -> AsyncIterator[None]:
    """Every test leaves the shared test database as it found it, empty: a test
    whose writes commit says so (`committed`, `live_client`), which cleans up after
    it; any other would hand its rows to the tests after it."""
    yield
    async with engine.connect() as conn:
        counts = {t.name: await conn.scalar(select(func.count()).select_from(t)) for t in TABLES}
    assert {name: n for name, n in counts.items() if n} == {}, "rows left behind"


@pytest.fixture
async def connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    async with engine.connect() as conn:
        transaction = await conn.begin()
        try:
            yield conn
        finally:
            await transaction.rollback()


@pytest.fixture
async def widgets(connection: AsyncConnection) -> AsyncIterator[None]:
    """The test-only `Widget` table, on the test's connection (tests/scratch_models.py)."""
    await connection.run_sync(ScratchBase.metadata.create_all)
    yield
    await connection.run_sync(ScratchBase.metadata.drop_all)


@pytest.fixture
async def session(connection: AsyncConnection) -> AsyncIterator[AsyncSession]:
    factory = create_session_factory(connection, join_transaction_mode="create_savepoint")
    async with factory() as session:
        yield session


@pytest.fixture
def app(connection: AsyncConnection, test_settings: Settings) -> FastAPI:
    """The real app, its sessions and connections on the test's (lifespan not run)."""
    return rolled_back_app(connection, test_settings)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[AsyncClient]:
    # Unhandled errors become 500 responses, as they would for a real client.
    # (The lifespan is not run: the sessions are the test's, set above.)
    transport = ASGITransport(app=app, raise_app_exceptions=False)
    async with AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


@pytest.fixture
async def committed(engine: AsyncEngine) -> AsyncIterator[None]:
    """For tests whose writes really commit: every table is emptied afterwards."""
    yield
    async with engine.begin() as conn:
        for table in reversed(TABLES):
            await conn.execute(table.delete())


@pytest.fixture
async def live_client(committed: None, test_settings: Settings) -> AsyncIterator[AsyncClient]:
    """The app with its own engines and real commits, for concurrency tests; its
    lifespan runs as in production."""
    async with serve(create_app(test_settings)) as client:
        yield client


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never says a word: a hung server."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


@pytest.fixture
def statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """Every SQL statement sent while the test runs, to make N+1 visible."""
    sent: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    yield sent
    event.remove(engine.sync_engine, "before_cursor_execute", record)
{%- if auth %}


@pytest.fixture
async def auth_client(
    connection: AsyncConnection, test_settings: Settings
) -> AsyncIterator[AsyncClient]:
    """The app as `client`, but checking access tokens for real."""
    app = create_app(test_settings)
    app.state.database = RolledBackDatabase(connection)
    transport = ASGITransport(app=app, raise_app_exceptions=False)
    async with AsyncClient(transport=transport, base_url="http://test") as client:
        yield client
{%- endif %}
