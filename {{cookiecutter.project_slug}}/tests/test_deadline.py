{%- set db = cookiecutter.database -%}
{%- set main = "database" if db == "sqlite" else "primary" -%}
"""The request deadline (REQUEST_TIMEOUT_SECONDS): a request that runs out of time is
answered 503 and the connection it held is discarded; one whose COMMIT was sent
is never cut; a COMMIT after the deadline is refused."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI, Request
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.session import ReadConnection, WriteSession, database
from app.main import create_app
from app.settings import Settings
from tests.helpers import log_entries, running_server, serve

DEADLINE = 0.3
VERSION = text("SELECT version_num FROM alembic_version")
{%- if db == "postgresql" %}
SLOW_STATEMENT = "SELECT pg_sleep(5)"
{%- elif db == "mysql" %}
SLOW_STATEMENT = "SELECT SLEEP(5)"
{%- endif %}


MARK = text("UPDATE alembic_version SET version_num = :value")


@pytest.fixture
async def version_restored(engine: AsyncEngine) -> AsyncIterator[None]:
    """Tests that commit to alembic_version (in every variant, changed back afterwards)."""
    async with engine.connect() as conn:
        original = await conn.scalar(VERSION)
    yield
    async with engine.begin() as conn:
        await conn.execute(MARK, {"value": original})


def deadline_app(settings: Settings) -> FastAPI:
    app = create_app(settings.model_copy(update={"request_timeout_seconds": DEADLINE}))

    @app.get("/_probe/sleep")
    async def sleep() -> None:
        await asyncio.sleep(5)

    @app.post("/_probe/echo")
    async def echo(data: dict[str, str]) -> dict[str, str]:
        return data

    @app.get("/_probe/hold-a-connection")
    async def hold(connection: ReadConnection) -> None:
        await connection.execute(text("SELECT 1"))
        await asyncio.sleep(5)  # an outbound call that hangs, say
{%- if db != "sqlite" %}

    @app.get("/_probe/slow-statement")
    async def slow_statement(connection: ReadConnection) -> None:
        await connection.execute(text(SLOW_STATEMENT))
{%- endif %}

    @app.post("/_probe/commit-then-wait")
    async def commit_then_wait(request: Request) -> dict[str, bool]:
        async with database(request).transaction() as connection:
            await connection.execute(MARK, {"value": "committed"})
        await asyncio.sleep(1)  # the write is done: answering 503 now would be a lie
        return {"ok": True}

    @app.post("/_probe/swallow-the-deadline-then-commit")
    async def swallow_then_commit(session: WriteSession) -> dict[str, bool]:
        await session.execute(MARK, {"value": "too late"})
        # A bug: the cancellation is lost, and the endpoint goes on to commit.
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(5)
        return {"ok": True}

    return app


def _invalidations(engine: AsyncEngine) -> list[object]:
    seen: list[object] = []
    event.listen(engine.sync_engine.pool, "invalidate", lambda *args: seen.append(args))
    return seen


async def test_a_request_past_its_deadline_gets_503_and_a_warning(
    test_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    async with serve(deadline_app(test_settings)) as client:
        started = time.monotonic()
        response = await client.get("/_probe/sleep")
        elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response.headers["retry-after"]
    assert response.json() == {"detail": "the request took too long; retry later"}
    assert DEADLINE <= elapsed < DEADLINE + 0.5
    [warning] = [e for e in log_entries(capsys.readouterr().err) if e["logger"] == "app.deadline"]
    assert warning["message"] == (
        f"GET /_probe/sleep ended after REQUEST_TIMEOUT_SECONDS ({DEADLINE} s)"
    )


@pytest.mark.parametrize("path", ["/_probe/hold-a-connection"{% if db != "sqlite" %}, "/_probe/slow-statement"{% endif %}])
async def test_the_connection_of_a_request_cut_short_is_discarded(
    test_settings: Settings, path: str
) -> None:
    """Invalidated, not returned: a statement it sent may still be running."""
    app = deadline_app(test_settings)
    async with serve(app) as client:
        pool = app.state.engines.pools["{{ main }}"]
{%- if db != "sqlite" %}
        await app.state.connection_budget_check  # the start-up's own use of the pool
{%- endif %}
        invalidated = _invalidations(pool)
        response = await client.get(path)
        checked_out = pool.pool.checkedout()
        after = await client.get("/readyz")
    assert response.status_code == 503
    assert len(invalidated) == 1
    assert checked_out == 0
    assert after.status_code == 200


@pytest.mark.usefixtures("version_restored")
async def test_a_request_whose_commit_was_sent_is_never_cut(
    test_settings: Settings, engine: AsyncEngine
) -> None:
    async with serve(deadline_app(test_settings)) as client:
        response = await client.post("/_probe/commit-then-wait")
    assert response.status_code == 200, response.text
    async with engine.connect() as conn:
        assert await conn.scalar(VERSION) == "committed"


@pytest.mark.usefixtures("version_restored")
async def test_a_commit_after_the_deadline_is_refused(
    test_settings: Settings, engine: AsyncEngine
) -> None:
    async with serve(deadline_app(test_settings)) as client:
        response = await client.post("/_probe/swallow-the-deadline-then-commit")
    assert response.status_code == 503
    async with engine.connect() as conn:
        assert await conn.scalar(VERSION) != "too late"


async def test_a_client_that_sends_its_body_slowly_is_cut_at_the_deadline(
    test_settings: Settings,
) -> None:
    app = deadline_app(test_settings)
    async with running_server(app) as (host, port):
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(
                b"POST /_probe/echo HTTP/1.1\r\nHost: test\r\n"
                b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
            )
            started = time.monotonic()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            elapsed = time.monotonic() - started
        finally:
            writer.close()
    assert head.startswith(b"HTTP/1.1 503 ")
    assert elapsed < DEADLINE + 0.5
{%- if db == "postgresql" %}


@pytest.fixture
async def slow_commits(engine: AsyncEngine) -> AsyncIterator[None]:
    """A table whose every COMMIT takes a second: a deferred constraint trigger that
    sleeps, run by the server after it has received the COMMIT."""
    async with engine.begin() as conn:
        for statement in (
            "CREATE TABLE slow_commits (id int)",
            "CREATE FUNCTION sleep_at_commit() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN PERFORM pg_sleep(1); RETURN NULL; END $$",
            "CREATE CONSTRAINT TRIGGER sleep_at_commit AFTER INSERT ON slow_commits "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION sleep_at_commit()",
        ):
            await conn.execute(text(statement))
    yield
    async with engine.begin() as conn:
        await conn.execute(text("DROP TABLE slow_commits"))
        await conn.execute(text("DROP FUNCTION sleep_at_commit()"))


@pytest.mark.usefixtures("slow_commits")
async def test_a_commit_that_outlasts_the_deadline_is_not_answered_503(
    test_settings: Settings, engine: AsyncEngine
) -> None:
    """Cut while the server commits, the client would hear 503 for a committed row."""
    app = deadline_app(test_settings)

    @app.post("/_probe/slow-commit")
    async def slow_commit(session: WriteSession) -> dict[str, bool]:
        await session.execute(text("INSERT INTO slow_commits VALUES (1)"))
        return {"ok": True}

    async with serve(app) as client:
        response = await client.post("/_probe/slow-commit")
    async with engine.connect() as conn:
        committed = await conn.scalar(text("SELECT count(*) FROM slow_commits"))
    assert (response.status_code, committed) == (200, 1)
{%- endif %}
