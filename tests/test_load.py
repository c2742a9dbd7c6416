"""A bounded load run against the baked service under uvicorn with several worker
processes, on loopback.

Hundreds of concurrent creates with deliberate duplicates, spread over the workers
(each with its own pool): every answer is a 201 or a 409 (never a 5xx), and
afterwards the database holds exactly the users whose 201 carried their id: no
lost write, no phantom row. Run on every database.
"""

import asyncio
import uuid

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tests.baked_app import serve_baked
from tests.conftest import RUN_ID, Bakery, DatabaseServer, python, run, tail
from tests.variants import DATABASES, TEST_PYTHON_VERSION, Variant

REQUESTS = 300
DISTINCT_EMAILS = 100  # so each email is sent three times, concurrently
CONCURRENCY = 60
WORKERS = 3


async def _drive(base_url: str) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:

        async def create(index: int) -> httpx.Response:
            email = f"load{index % DISTINCT_EMAILS}@example.com"
            return await client.post("/api/v1/users", json={"email": email, "full_name": "L"})

        return await asyncio.gather(*(create(i) for i in range(REQUESTS)))


def _hex(key: object) -> str:
    """A key as 32 hex digits: a UUID, its text, or its 16 bytes (BINARY(16) on MySQL)."""
    if isinstance(key, bytes):
        return uuid.UUID(bytes=key).hex
    return str(key).replace("-", "")


async def _stored_ids(database_url: str) -> set[str]:
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(text("SELECT id FROM users"))
            return {_hex(row[0]) for row in rows}
    finally:
        await engine.dispose()


@pytest.mark.parametrize("database_server", DATABASES, indirect=True)
def test_concurrent_creates_lose_nothing_and_invent_nothing(
    bakery: Bakery, database_server: DatabaseServer, throwaway_databases: list[str]
) -> None:
    variant = Variant(database_server.database, "yes", "no", TEST_PYTHON_VERSION)
    project = bakery.project(variant)
    name = f"ckt_{RUN_ID}_{variant.database}_load"
    throwaway_databases.append(name)
    database_server.create(name)
    url = database_server.url(name)
    migrated = run(
        python("-m", "alembic", "upgrade", "head"), cwd=project, env={"DATABASE_URL": url}
    )
    assert migrated.returncode == 0, tail(migrated.stdout)

    with serve_baked(project, {"DATABASE_URL": url, "WEB_CONCURRENCY": str(WORKERS)}) as base_url:
        responses = asyncio.run(_drive(base_url))

    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {201, 409}, [r.text for r in responses if r.status_code >= 500][:3]
    created = {r.json()["id"].replace("-", "") for r in responses if r.status_code == 201}
    assert len(created) == DISTINCT_EMAILS
    stored = asyncio.run(_stored_ids(url))
    assert stored == created
