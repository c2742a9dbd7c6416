{%- set db = cookiecutter.database -%}
"""Faults, each caused for real, and what the service answers.

{% if db == "sqlite" %}A locked database{% else %}An unreachable server, killed connections, slow queries{% endif %}, an exhausted pool, a misconfigured
database, and errors that are not the database's at all.

A database outage is answered fast with 503 + Retry-After and recovers by itself;
a configuration error or a bug is a logged 500, never a retryable 503.
"""

import asyncio
import time

import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response
from sqlalchemy import text
{%- if db != "sqlite" %}
from sqlalchemy.ext.asyncio import AsyncEngine
{%- endif %}

from app.db.session import ReadConnection, WriteSession
from app.main import create_app
from app.settings import Settings
from tests.helpers import log_entries, serve

{% if db == "sqlite" -%}
# A file under a directory that does not exist: it cannot be opened.
MISCONFIGURED_URL = "sqlite+aiosqlite:////nonexistent-directory/misconfigured.db"
{%- elif db == "postgresql" -%}
MISCONFIGURED_URLS = {
    "unknown database": "postgresql+asyncpg://postgres@127.0.0.1:5432/no_such_database_ckt",
    "unknown user": "postgresql+asyncpg://no_such_user_ckt@127.0.0.1:5432/postgres",
}
SLOW_QUERY = "SELECT pg_sleep(2)"
{%- else -%}
MISCONFIGURED_URLS = {
    "unknown database": "mysql+aiomysql://root@127.0.0.1:3306/no_such_database_ckt",
    "refused login": "mysql+aiomysql://no_such_user_ckt:wrong@127.0.0.1:3306/mysql",
}
# A billion-row cross join: slow on MySQL and MariaDB alike, with no SLEEP(), which
# MySQL's max_execution_time interrupts without an error.
DIGITS = "(" + " UNION ALL ".join(f"SELECT {n} AS n" for n in range(10)) + ")"
SLOW_QUERY = "SELECT COUNT(*) FROM " + ", ".join(f"{DIGITS} AS d{i}" for i in range(9))  # noqa: S608
{%- endif %}


PROBES = [("GET", "/_probe/read"), ("POST", "/_probe/write")]


def app_with_probes(
    settings: Settings, *, read_sql: str = "SELECT 1", write_sql: str = "SELECT 1"
) -> FastAPI:
    """The real app plus endpoints that run SQL through a read and a write session,
    and one that fails the way code that is not the database's fails."""
    app = create_app(settings)

    @app.get("/_probe/read")
    async def read(connection: ReadConnection) -> dict[str, bool]:
        await connection.execute(text(read_sql))
        return {"ok": True}

    @app.post("/_probe/write")
    async def write(session: WriteSession) -> dict[str, bool]:
        await session.execute(text(write_sql))
        return {"ok": True}

    @app.get("/_probe/upstream/{kind}")
    async def upstream(kind: str) -> None:
        # What an outbound HTTP call raises when the other service is down or slow.
        raise TimeoutError("upstream timed out") if kind == "timeout" else ConnectionError(kind)

    return app


async def timed(client: AsyncClient, method: str, path: str) -> tuple[Response, float]:
    """The response and how long it took; a request that hangs fails the test."""
    started = time.monotonic()
    async with asyncio.timeout(15):
        response = await client.request(method, path)
    return response, time.monotonic() - started


def assert_unavailable(response: Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"]
    assert response.json() == {"detail": "the database is unavailable; retry later"}


def assert_internal_error(response: Response) -> None:
    assert response.status_code == 500, response.text
    assert "retry-after" not in response.headers
    assert response.json() == {"detail": "internal error"}
{%- if db != "sqlite" %}


@pytest.mark.parametrize("failure", ["refused", "silent"])
async def test_unreachable_database_starts_and_answers_503_fast(
    test_settings: Settings, silent_server: int, failure: str
) -> None:
    port = 1 if failure == "refused" else silent_server
    url = test_settings.url.set(host="127.0.0.1", port=port)
    unreachable = test_settings.model_copy(
        update={"database_url": url.render_as_string(hide_password=False), "db_connect_timeout": 1}
    )
    async with serve(app_with_probes(unreachable)) as client:
        for method, path in PROBES:
            response, elapsed = await timed(client, method, path)
            assert_unavailable(response)
            assert elapsed < 3
{%- else %}


async def test_locked_database_answers_503_after_the_busy_timeout(
    test_settings: Settings,
) -> None:
    """Another writer holds the lock past DB_BUSY_TIMEOUT: retry later. Reads go on."""
    impatient = test_settings.model_copy(update={"db_busy_timeout": 0.3})
    app = app_with_probes(
        impatient,
        read_sql="SELECT version_num FROM alembic_version",
        write_sql="UPDATE alembic_version SET version_num = version_num",
    )
    async with serve(app) as client, app.state.engines.writer.connect() as holder:
        await holder.begin()  # BEGIN IMMEDIATE: the write lock, held
        response, elapsed = await timed(client, "POST", "/_probe/write")
        assert_unavailable(response)
        assert 0.25 < elapsed < 2
        assert (await client.get("/_probe/read")).status_code == 200
        await holder.rollback()
        assert (await client.post("/_probe/write")).status_code == 200
{%- endif %}


async def test_misconfigured_database_is_a_logged_500_not_a_503(
    test_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """{% if db == "sqlite" %}A database file that cannot be opened needs{% else %}Bad credentials or a missing database need{% endif %} an operator: retrying cannot help."""
{%- if db == "sqlite" %}
    urls = {"unopenable file": MISCONFIGURED_URL}
{%- else %}
    urls = MISCONFIGURED_URLS
{%- endif %}
    for problem, url in urls.items():
        misconfigured = test_settings.model_copy(update={"database_url": url})
        async with serve(app_with_probes(misconfigured)) as client:
            response = await client.get("/_probe/read")
        assert_internal_error(response)
        errors = [e for e in log_entries(capsys.readouterr().err) if e["level"] == "ERROR"]
        assert any("database configuration error" in e["message"] for e in errors), problem


@pytest.mark.parametrize("kind", ["timeout", "refused"])
async def test_other_codes_timeouts_are_500_with_a_traceback_not_503(
    test_settings: Settings, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    """A TimeoutError or ConnectionError from an outbound call is not a database outage."""
    async with serve(app_with_probes(test_settings)) as client:
        response = await client.get(f"/_probe/upstream/{kind}", headers={"X-Request-ID": "up-1"})
    assert_internal_error(response)
    [error] = [e for e in log_entries(capsys.readouterr().err) if e["level"] == "ERROR"]
    raised = "TimeoutError: upstream timed out" if kind == "timeout" else "ConnectionError: refused"
    assert error["exception"].rstrip().endswith(raised)
    assert error["request_id"] == "up-1"


async def test_exhausted_pool_answers_503_then_recovers(test_settings: Settings) -> None:
    tiny = test_settings.model_copy(
        update={"db_pool_size": 1, "db_max_overflow": 0, "db_pool_timeout": 0.5}
    )
    app = app_with_probes(tiny)
    async with serve(app) as client:
        async with app.state.engines.writer.connect():  # the only connection, held
            response, elapsed = await timed(client, "GET", "/_probe/read")
            assert_unavailable(response)
            assert 0.4 < elapsed < 3
        assert (await client.get("/_probe/read")).status_code == 200


@pytest.mark.usefixtures("migrated_database")
async def test_errors_are_told_apart_by_their_codes(
    test_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """A unique violation is a 409, logged without the row's values (the driver's
    message can quote them: an email, say); broken SQL is a bug: a logged 500, never a
    409 or a 503 that would send clients into retries."""
    duplicate = "INSERT INTO alembic_version SELECT version_num FROM alembic_version"
    async with serve(app_with_probes(test_settings, write_sql=duplicate)) as client:
        conflict = await client.post("/_probe/write")
    [logged] = [
        e["message"] for e in log_entries(capsys.readouterr().err) if e["logger"] == "app.errors"
    ]
    assert logged.startswith("conflict")
    assert "0001" not in logged  # the duplicate value
    broken = app_with_probes(test_settings, read_sql="SELECT * FROM no_such_table")
    async with serve(broken) as client:
        bug = await client.get("/_probe/read")
    assert conflict.status_code == 409
    assert_internal_error(bug)


async def test_shutdown_returns_every_connection(test_settings: Settings) -> None:
    app = app_with_probes(test_settings)
    async with serve(app) as client:
        assert (await client.get("/_probe/read")).status_code == 200
        pool = app.state.engines.writer.pool
    assert pool.checkedin() == 0
    assert pool.checkedout() == 0
{%- if db != "sqlite" %}


async def test_killed_connection_is_replaced_without_restart(
    engine: AsyncEngine, test_settings: Settings
) -> None:
    app = app_with_probes(test_settings)
    async with serve(app) as client:
        assert (await client.get("/_probe/read")).status_code == 200
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
        assert (await client.get("/_probe/read")).status_code == 200


async def test_slow_query_is_cut_by_the_statement_timeout(test_settings: Settings) -> None:
    impatient = test_settings.model_copy(update={"db_statement_timeout_ms": 200})
    async with serve(app_with_probes(impatient, read_sql=SLOW_QUERY)) as client:
        response, elapsed = await timed(client, "GET", "/_probe/read")
    assert_unavailable(response)
    assert elapsed < 1.5
{%- endif %}
{%- if db == "mysql" %}


async def test_writes_are_bounded_where_the_server_allows_it(
    engine: AsyncEngine, test_settings: Settings
) -> None:
    """MariaDB's max_statement_time cuts an UPDATE too; MySQL's max_execution_time
    applies to SELECT only, so there the same UPDATE runs to its end."""
    impatient = test_settings.model_copy(update={"db_statement_timeout_ms": 200})
    slow_update = "UPDATE alembic_version SET version_num = version_num WHERE SLEEP(1) = 0"
    async with serve(app_with_probes(impatient, write_sql=slow_update)) as client:
        response, elapsed = await timed(client, "POST", "/_probe/write")
    if engine.dialect.is_mariadb:  # type: ignore[attr-defined]
        assert_unavailable(response)
        assert elapsed < 0.9
    else:
        assert response.status_code == 200
        assert elapsed >= 1
{%- endif %}
