{%- set db = cookiecutter.database -%}
"""Faults: an unreachable database, an exhausted pool{% if db != "sqlite" %}, killed connections, slow queries{% endif %}.

The app must answer fast with 503 + Retry-After, never hang or 500, and recover
by itself once the database is back.
"""

import time

import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response
from sqlalchemy import text
{%- if db != "sqlite" %}
from sqlalchemy.ext.asyncio import AsyncEngine
{%- endif %}

from app.db.session import SessionDep
from app.main import create_app
from app.settings import Settings
from tests.helpers import serve

{% if db == "sqlite" -%}
UNREACHABLE_URL = "sqlite+aiosqlite:////nonexistent-directory/unreachable.db"
{%- elif db == "postgresql" -%}
UNREACHABLE_URL = "postgresql+asyncpg://postgres@127.0.0.1:1/unreachable"
SLOW_QUERY = "SELECT pg_sleep(2)"
{%- else -%}
UNREACHABLE_URL = "mysql+aiomysql://root@127.0.0.1:1/unreachable"
SLOW_QUERY = "SELECT SLEEP(2)"
{%- endif %}


def app_with_probe(settings: Settings, sql: str = "SELECT 1") -> FastAPI:
    """The real app plus an endpoint that runs `sql` through the request session."""
    app = create_app(settings)

    @app.get("/_probe")
    async def probe(session: SessionDep) -> dict[str, bool]:
        await session.execute(text(sql))
        return {"ok": True}

    return app


async def timed_get(client: AsyncClient, path: str) -> tuple[Response, float]:
    started = time.monotonic()
    response = await client.get(path)
    return response, time.monotonic() - started


def assert_unavailable(response: Response) -> None:
    assert response.status_code == 503
    assert response.headers["retry-after"]
    assert response.json() == {"detail": "the database is unavailable; retry later"}


async def test_unreachable_database_starts_and_answers_503_fast() -> None:
    async with serve(app_with_probe(Settings(database_url=UNREACHABLE_URL))) as client:
        for path in ("/health", "/_probe"):
            response, elapsed = await timed_get(client, path)
            assert_unavailable(response)
            assert elapsed < 3


async def test_exhausted_pool_answers_503_then_recovers(test_settings: Settings) -> None:
    tiny = test_settings.model_copy(
        update={"db_pool_size": 1, "db_max_overflow": 0, "db_pool_timeout": 0.5}
    )
    app = app_with_probe(tiny)
    async with serve(app) as client:
        async with app.state.engine.connect():  # the only connection, held
            response, elapsed = await timed_get(client, "/_probe")
            assert_unavailable(response)
            assert 0.4 < elapsed < 3
        assert (await client.get("/_probe")).status_code == 200


@pytest.mark.usefixtures("migrated_database")
async def test_errors_are_told_apart_by_their_codes(test_settings: Settings) -> None:
    """A unique violation is a 409; broken SQL is a bug: a logged 500, never a 409 or a
    503 that would send clients into retries."""
    duplicate = "INSERT INTO alembic_version SELECT version_num FROM alembic_version"
    async with serve(app_with_probe(test_settings, duplicate)) as client:
        conflict = await client.get("/_probe")
    async with serve(app_with_probe(test_settings, "SELECT * FROM no_such_table")) as client:
        bug = await client.get("/_probe")
    assert conflict.status_code == 409
    assert bug.status_code == 500
    assert bug.json() == {"detail": "internal error"}


async def test_shutdown_returns_every_connection(test_settings: Settings) -> None:
    app = app_with_probe(test_settings)
    async with serve(app) as client:
        assert (await client.get("/_probe")).status_code == 200
        pool = app.state.engine.pool
        assert pool.checkedin() == 1
    assert app.state.engine.pool.checkedin() == 0
    assert app.state.engine.pool.checkedout() == 0
{%- if db != "sqlite" %}


async def test_killed_connection_is_replaced_without_restart(
    engine: AsyncEngine, test_settings: Settings
) -> None:
    app = app_with_probe(test_settings)
    async with serve(app) as client:
        assert (await client.get("/_probe")).status_code == 200
        async with engine.connect() as admin:
{%- if db == "postgresql" %}
            await admin.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
{%- else %}
            others = await admin.scalars(
                text(
                    "SELECT id FROM information_schema.processlist "
                    "WHERE db = DATABASE() AND id <> CONNECTION_ID()"
                )
            )
            for connection_id in others.all():
                await admin.execute(text("KILL :id"), {"id": connection_id})
{%- endif %}
        # The pooled connection is dead; pre-ping notices and reconnects.
        assert (await client.get("/_probe")).status_code == 200


async def test_slow_query_is_cut_by_the_statement_timeout(test_settings: Settings) -> None:
    impatient = test_settings.model_copy(update={"db_statement_timeout_ms": 200})
    async with serve(app_with_probe(impatient, SLOW_QUERY)) as client:
        response, elapsed = await timed_get(client, "/_probe")
    assert_unavailable(response)
    assert elapsed < 1.5
{%- endif %}
