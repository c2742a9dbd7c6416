"""The PostgreSQL service behind a real PgBouncer in transaction mode, with several
uvicorn workers: concurrent writes and reads answer without an error, every 201 is
one stored row and nothing else is, and each worker logs which limits apply. Without
DB_PGBOUNCER the same traffic breaks, which is why the switch exists."""

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tests.baked_app import serve_baked
from tests.conftest import IN_CI, RUN_ID, Bakery, PostgresServer, python, run, tail
from tests.pgbouncer import PgBouncer, PgBouncerError, running_pgbouncer
from tests.variants import TEST_PYTHON_VERSION, Variant

WORKERS = 4
CREATES = 240
DISTINCT_EMAILS = 80  # each email three times, concurrently
READS = 240
CONCURRENCY = 60
USERS = "/api/v1/users"
Answer = httpx.Response | str  # a response, or why the client got none


@pytest.fixture(scope="module")
def pgbouncer(postgres_server: PostgresServer) -> Iterator[PgBouncer]:
    try:
        with running_pgbouncer() as bouncer:
            yield bouncer
    except PgBouncerError as error:
        if IN_CI:
            pytest.fail(f"CI=true and {error}", pytrace=False)
        pytest.skip(str(error))


@pytest.fixture(scope="module")
def project(bakery: Bakery, postgres_server: PostgresServer) -> Iterator[tuple[Path, str]]:
    """The baked example service, its database migrated directly (not through PgBouncer)."""
    path = bakery.project(Variant("postgresql", "yes", "no", TEST_PYTHON_VERSION))
    name = f"ckt_{RUN_ID}_pgbouncer"
    postgres_server.create(name)
    migrated = run(
        python("-m", "alembic", "upgrade", "head"),
        cwd=path,
        env={"DATABASE_URL": postgres_server.url(name)},
    )
    assert migrated.returncode == 0, tail(migrated.stdout)
    yield path, name
    postgres_server.drop(name)


async def _traffic(
    base_url: str, tag: str, *, creates: int = CREATES, reads: int = READS, timeout: float = 30
) -> tuple[list[Answer], list[Answer]]:
    """A seed user, then creates (with duplicates) and reads (lists, and the seed by
    id), all at once."""
    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=timeout) as client:

        async def create(index: int) -> httpx.Response:
            email = f"{tag}-{index % DISTINCT_EMAILS}@example.com"
            return await client.post(USERS, json={"email": email, "full_name": "P"})

        seed = await client.post(USERS, json={"email": f"seed-{tag}@example.com", "full_name": "S"})
        seed_id = seed.json()["id"] if seed.status_code == 201 else str(uuid.uuid4())

        async def read(index: int) -> httpx.Response:
            return await client.get(USERS if index % 2 else f"{USERS}/{seed_id}")

        results = await asyncio.gather(
            *(create(i) for i in range(creates)),
            *(read(i) for i in range(reads)),
            return_exceptions=True,
        )
    answers: list[Answer] = [r if isinstance(r, httpx.Response) else repr(r) for r in results]
    return [seed, *answers[:creates]], answers[creates:]


def _status(answer: Answer) -> int | str:
    return answer.status_code if isinstance(answer, httpx.Response) else answer


async def _stored_ids(url: str) -> set[str]:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            return {str(row[0]) for row in await connection.execute(text("SELECT id FROM users"))}
    finally:
        await engine.dispose()


def _environment(bouncer: PgBouncer, database: str, *, switch: bool) -> dict[str, str]:
    return {
        "DATABASE_URL": bouncer.url(database),
        "DB_PGBOUNCER": "true" if switch else "false",
        "WEB_CONCURRENCY": str(WORKERS),
    }


def test_several_workers_behind_pgbouncer_lose_nothing(
    project: tuple[Path, str], pgbouncer: PgBouncer, postgres_server: PostgresServer
) -> None:
    path, name = project
    output: list[str] = []
    env = _environment(pgbouncer, name, switch=True)
    with serve_baked(path, env, output=output) as base_url:
        creates, reads = asyncio.run(_traffic(base_url, "bouncer"))

    assert {_status(a) for a in creates} <= {201, 409}, {_status(a) for a in creates}
    assert {_status(a) for a in reads} == {200}, {_status(a) for a in reads}
    created = {
        a.json()["id"] for a in creates if isinstance(a, httpx.Response) and a.status_code == 201
    }
    assert len(created) == DISTINCT_EMAILS + 1  # the seed, and each email once
    assert asyncio.run(_stored_ids(postgres_server.url(name))) == created
    [log] = output
    assert log.count("behind PgBouncer: the pools can open") == WORKERS
    assert "Traceback" not in log


def test_without_the_switch_the_same_traffic_breaks(
    project: tuple[Path, str], pgbouncer: PgBouncer
) -> None:
    """asyncpg's statement cache and statements outside transactions meet a different
    server connection each time: prepared statements go missing, requests fail or hang."""
    path, name = project
    env = _environment(pgbouncer, name, switch=False)
    # Requests may hang: the server must not wait long for them when it stops.
    with serve_baked(path, env, args=("--timeout-graceful-shutdown", "2")) as base_url:
        creates, reads = asyncio.run(
            _traffic(base_url, uuid.uuid4().hex[:6], creates=60, reads=60, timeout=10)
        )
    failures = [_status(a) for a in creates + reads if _status(a) not in (200, 201, 409)]
    assert failures, "every request succeeded: the test no longer shows the switch is needed"
