"""The request session commits before the response and rolls back on errors.

The probes write to `alembic_version`, the one table every variant has: what a
test reads back afterwards is the outcome, not which hook fired.
"""

import pytest
from fastapi import FastAPI, HTTPException
from httpx import AsyncClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.session import SessionDep
from tests.helpers import commits_fail

WRITE = text("UPDATE alembic_version SET version_num = 'probe'")
READ = text("SELECT version_num FROM alembic_version")


@pytest.fixture
def probe_app(app: FastAPI) -> FastAPI:
    """Two throwaway endpoints that write through the real session dependency."""

    @app.post("/_probe/write")
    async def write(session: SessionDep) -> dict[str, bool]:
        await session.execute(WRITE)
        return {"ok": True}

    @app.post("/_probe/write-then-fail")
    async def write_then_fail(session: SessionDep) -> None:
        await session.execute(WRITE)
        raise HTTPException(status_code=418, detail="handler failed")

    return app


@pytest.mark.usefixtures("probe_app")
async def test_success_commits(client: AsyncClient, connection: AsyncConnection) -> None:
    response = await client.post("/_probe/write")
    assert response.status_code == 200
    assert await connection.scalar(READ) == "probe"


@pytest.mark.usefixtures("probe_app")
async def test_handler_error_rolls_back(client: AsyncClient, connection: AsyncConnection) -> None:
    before = await connection.scalar(READ)
    response = await client.post("/_probe/write-then-fail")
    assert response.status_code == 418
    assert await connection.scalar(READ) == before


@pytest.mark.usefixtures("probe_app")
async def test_failed_commit_is_never_a_2xx_and_writes_nothing(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    before = await connection.scalar(READ)
    with commits_fail():
        response = await client.post("/_probe/write")
    assert response.status_code == 503
    assert response.json()["detail"] == "the database is unavailable; retry later"
    assert await connection.scalar(READ) == before
