"""Read connections go to the replica; write sessions, their reads and primary reads
go to the primary. A replica that cannot be reached sends reads to the primary's
pool (DB_REPLICA_FALLBACK=primary), with one WARNING, a metric, and a re-check every
DB_REPLICA_RETRY_SECONDS that brings them back; or fails them fast (=fail). Writes go
on either way.

A second database stands in for the replica: it has the schema but none of the
primary's changes, so what a read returns tells which server answered it. The
template's tests repeat this on a real streaming replica.
"""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Self

import pytest
from fastapi import FastAPI
from httpx import Response
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.engine import URL

from app.db.session import PrimaryReadConnection, ReadConnection, WriteSession
from app.main import create_app
from app.settings import Settings
from tests.databases import drop_database, fresh_database, sibling_url
from tests.helpers import log_entries, serve

READ = text("SELECT version_num FROM alembic_version")
WRITE = text("UPDATE alembic_version SET version_num = 'written'")
ON_THE_REPLICA = {"seen": "0001"}  # the replica never sees the primary's write
ON_THE_PRIMARY = {"seen": "written"}


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
    async def primary_read(connection: PrimaryReadConnection) -> dict[str, str | None]:
        return {"seen": await connection.scalar(READ)}

    return app


def _replica_warnings(capsys: pytest.CaptureFixture[str]) -> list[str]:
    entries = log_entries(capsys.readouterr().err)
    return [
        e["message"] for e in entries if e["logger"] == "app.db.replica" and e["level"] == "WARNING"
    ]


def _fallback_reads() -> float:
    return REGISTRY.get_sample_value("db_replica_fallback_reads_total") or 0.0


def _replica_at(settings: Settings, port: int, **more: object) -> Settings:
    replica = settings.replica_url
    assert replica is not None
    moved = _url(replica.set(host="127.0.0.1", port=port))
    return settings.model_copy(update={"database_replica_url": moved, **more})


async def test_reads_go_to_the_replica_and_writes_to_the_primary(
    primary_and_replica: Settings,
) -> None:
    async with serve(routing_app(primary_and_replica)) as client:
        written = await client.post("/_probe/write")
        read = await client.get("/_probe/read")
        fresh = await client.get("/_probe/primary-read")
    assert written.json() == ON_THE_PRIMARY
    assert read.json() == ON_THE_REPLICA
    assert fresh.json() == ON_THE_PRIMARY


@pytest.mark.parametrize("failure", ["refused", "silent"])
async def test_with_the_replica_down_reads_fall_back_to_the_primary(
    primary_and_replica: Settings,
    silent_server: int,
    failure: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Fast (at most DB_REPLICA_CONNECT_TIMEOUT for the read that finds it down, then
    at once), on the primary's own pool, one WARNING, every such read counted."""
    down = _replica_at(primary_and_replica, 1 if failure == "refused" else silent_server)
    app = routing_app(down)
    async with serve(app) as client:
        await app.state.connection_budget_check  # the start-up's own use of the pool
        await client.post("/_probe/write")
        before = _fallback_reads()
        started = time.monotonic()
        async with asyncio.timeout(15):  # a read that hangs fails the test
            reads = [await client.get("/_probe/read") for _ in range(3)]
        elapsed = time.monotonic() - started
        checked_out = app.state.engines.pools["primary"].pool.checkedout()
    assert [r.json() for r in reads] == [ON_THE_PRIMARY] * 3
    assert elapsed < down.db_replica_connect_timeout + 1
    assert _fallback_reads() - before == 3
    [warning] = _replica_warnings(capsys)
    assert warning.startswith("the replica cannot be reached, reads go to the primary")
    assert checked_out == 0  # the fallback's connections went back to the primary's pool


async def test_fallback_fail_answers_503_fast_and_writes_go_on(
    primary_and_replica: Settings,
) -> None:
    down = _replica_at(primary_and_replica, 1, db_replica_fallback="fail")
    async with serve(routing_app(down)) as client:
        started = time.monotonic()
        async with asyncio.timeout(15):
            read = await client.get("/_probe/read")
        elapsed = time.monotonic() - started
        written = await client.post("/_probe/write")
        fresh = await client.get("/_probe/primary-read")
    assert read.status_code == 503
    assert read.headers["retry-after"]
    assert elapsed < down.db_replica_connect_timeout + 1
    assert written.json() == ON_THE_PRIMARY
    assert fresh.json() == ON_THE_PRIMARY


class Switch:
    """A TCP forwarder to the replica that can refuse connections, as a replica that
    stops and starts again does."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.up = False
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.up:
            writer.close()  # as good as refused: the driver's handshake fails
            return
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))


async def test_reads_go_back_to_the_replica_once_it_answers_again(
    primary_and_replica: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    replica = primary_and_replica.replica_url
    assert replica is not None
    async with Switch((replica.host or "127.0.0.1", replica.port or {{ 5432 if cookiecutter.database == "postgresql" else 3306 }})) as switch:
        settings = _replica_at(primary_and_replica, switch.port, db_replica_retry_seconds=0.3)
        async with serve(routing_app(settings)) as client:
            await client.post("/_probe/write")
            assert (await client.get("/_probe/read")).json() == ON_THE_PRIMARY
            switch.up = True
            deadline = time.monotonic() + 5
            while (await client.get("/_probe/read")).json() != ON_THE_REPLICA:
                assert time.monotonic() < deadline, "reads never went back to the replica"
                await asyncio.sleep(0.1)
    assert _replica_warnings(capsys)[-1] == "the replica answers again: reads go back to it"


async def test_without_a_replica_reads_go_to_the_primary(primary_and_replica: Settings) -> None:
    settings = primary_and_replica.model_copy(update={"database_replica_url": None})
    async with serve(routing_app(settings)) as client:
        await client.post("/_probe/write")
        assert (await client.get("/_probe/read")).json() == ON_THE_PRIMARY


async def test_readiness_reports_the_replica_and_stays_ready_without_it(
    primary_and_replica: Settings, silent_server: int
) -> None:
    """Every instance shares the replica: its outage must not take them all out of
    the load balancer, writes included."""
    up = await _readyz(primary_and_replica)
    assert (up.status_code, up.json()) == (
        200,
        {"status": "ok", "checks": {"primary": "ok", "replica": "ok"}, "reads_from": "replica"},
    )
    for port, answer in ((1, "error"), (silent_server, "timeout")):
        down = _replica_at(primary_and_replica, port, readiness_timeout=0.5)
        response = await _readyz(down, read_first=True)
        assert (response.status_code, response.json()) == (
            200,
            {
                "status": "ok",
                "checks": {"primary": "ok", "replica": answer},
                "reads_from": "primary",
            },
        )


async def _readyz(settings: Settings, *, read_first: bool = False) -> Response:
    async with serve(routing_app(settings)) as client:
        if read_first:
            await client.get("/_probe/read")  # finds the replica down
        return await client.get("/readyz")
