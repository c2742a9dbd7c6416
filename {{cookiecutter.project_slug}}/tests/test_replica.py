"""Read connections go to the replica; write sessions, their reads and primary
connections go to the primary; a replica that is down costs reads a fast 503 while
writes go on.

A second database stands in for the replica: it has the schema but none of the
primary's changes, so what a read returns tells which server answered it.
"""

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import URL

from app.db.session import PrimaryConnection, ReadConnection, WriteSession
from app.main import create_app
from app.settings import Settings
from tests.databases import drop_database, fresh_database, sibling_url
from tests.helpers import serve

READ = text("SELECT version_num FROM alembic_version")
WRITE = text("UPDATE alembic_version SET version_num = 'written'")


def _url(url: URL) -> str:
    return url.render_as_string(hide_password=False)


@pytest.fixture
async def primary_and_replica(test_settings: Settings) -> AsyncIterator[Settings]:
    primary = sibling_url(test_settings.url, "primary")
    replica = sibling_url(test_settings.url, "replica")
    for url in (primary, replica):
        await fresh_database(url)
    yield test_settings.model_copy(
        update={"database_url": _url(primary), "database_replica_url": _url(replica)}
    )
    for url in (primary, replica):
        await drop_database(url)


def routing_app(settings: Settings) -> FastAPI:
    app = create_app(settings)

    @app.post("/_probe/write")
    async def write(session: WriteSession) -> dict[str, str | None]:
        await session.execute(WRITE)
        return {"seen": await session.scalar(READ)}  # a read inside the write

    @app.get("/_probe/read")
    async def read(connection: ReadConnection) -> dict[str, str | None]:
        return {"seen": await connection.scalar(READ)}

    @app.get("/_probe/primary-read")
    async def primary_read(connection: PrimaryConnection) -> dict[str, str | None]:
        return {"seen": await connection.scalar(READ)}

    return app


async def test_reads_go_to_the_replica_and_writes_to_the_primary(
    primary_and_replica: Settings,
) -> None:
    async with serve(routing_app(primary_and_replica)) as client:
        written = await client.post("/_probe/write")
        read = await client.get("/_probe/read")
        fresh = await client.get("/_probe/primary-read")
    assert written.json() == {"seen": "written"}
    assert read.json() == {"seen": "0001"}  # the replica has not seen the write
    assert fresh.json() == {"seen": "written"}


@pytest.mark.parametrize("failure", ["refused", "silent"])
async def test_a_replica_that_is_down_fails_reads_fast_and_writes_go_on(
    primary_and_replica: Settings, silent_server: int, failure: str
) -> None:
    port = 1 if failure == "refused" else silent_server
    replica = primary_and_replica.replica_url
    assert replica is not None
    down = primary_and_replica.model_copy(
        update={"database_replica_url": _url(replica.set(host="127.0.0.1", port=port))}
    )
    async with serve(routing_app(down)) as client:
        started = time.monotonic()
        async with asyncio.timeout(15):  # a read that hangs fails the test
            read = await client.get("/_probe/read")
        elapsed = time.monotonic() - started
        written = await client.post("/_probe/write")
        fresh = await client.get("/_probe/primary-read")
    assert read.status_code == 503
    assert read.headers["retry-after"]
    assert elapsed < down.db_replica_connect_timeout + 1
    assert written.json() == {"seen": "written"}
    assert fresh.json() == {"seen": "written"}


async def test_without_a_replica_reads_go_to_the_primary(primary_and_replica: Settings) -> None:
    settings = primary_and_replica.model_copy(update={"database_replica_url": None})
    async with serve(routing_app(settings)) as client:
        await client.post("/_probe/write")
        assert (await client.get("/_probe/read")).json() == {"seen": "written"}
