{%- set db = cookiecutter.database -%}
"""What an endpoint opens: a write session commits before the response and rolls back
on errors; a read connection never writes, whatever the endpoint tries.

The endpoints below are throwaway probes on the real dependencies; what a test reads
back afterwards is the outcome, not which hook fired.
"""

import pytest
from fastapi import FastAPI, HTTPException
from httpx import AsyncClient
from sqlalchemy import column, false, func, insert, select, table, text, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.base import Executable

from app.db.session import ReadConnection, WriteSession
from app.main import create_app
from app.settings import Settings
from tests.helpers import commits_fail, log_entries, serve
from tests.scratch_models import Widget

COUNT = select(func.count()).select_from(Widget.__table__)
# alembic_version is in every variant: writes to it that change nothing stand in for
# real ones, so a missing guard shows as a 200, not as damage.
VERSION = table("alembic_version", column("version_num"))


@pytest.fixture
def probe_app(app: FastAPI) -> FastAPI:
    @app.post("/_probe/write")
    async def write(session: WriteSession) -> dict[str, bool]:
        session.add(Widget(name="written"))
        return {"ok": True}

    @app.post("/_probe/write-then-fail")
    async def write_then_fail(session: WriteSession) -> None:
        session.add(Widget(name="doomed"))
        await session.flush()
        raise HTTPException(status_code=418, detail="handler failed")

    return app


@pytest.mark.usefixtures("probe_app", "widgets")
async def test_success_commits(client: AsyncClient, connection: AsyncConnection) -> None:
    response = await client.post("/_probe/write")
    assert response.status_code == 200
    assert await connection.scalar(COUNT) == 1


@pytest.mark.usefixtures("probe_app", "widgets")
async def test_handler_error_rolls_back(client: AsyncClient, connection: AsyncConnection) -> None:
    response = await client.post("/_probe/write-then-fail")
    assert response.status_code == 418
    assert await connection.scalar(COUNT) == 0


@pytest.mark.usefixtures("probe_app", "widgets")
async def test_failed_commit_is_never_a_2xx_and_writes_nothing(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    with commits_fail():
        response = await client.post("/_probe/write")
    assert response.status_code == 503
    assert response.json()["detail"] == "the database is unavailable; retry later"
    assert await connection.scalar(COUNT) == 0


WRITES_ON_A_READ_CONNECTION: dict[str, Executable] = {
    "insert": insert(VERSION).from_select(
        ["version_num"], select(VERSION.c.version_num).where(false())
    ),
    "update": update(VERSION).values(version_num=VERSION.c.version_num),
    "for update": select(VERSION.c.version_num).with_for_update(),
    "text": text("UPDATE alembic_version SET version_num = version_num"),
}


@pytest.mark.parametrize("kind", WRITES_ON_A_READ_CONNECTION)
async def test_a_read_connection_refuses_to_write(
    test_settings: Settings, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    """On real engines{% if db == "postgresql" %} (a read is in autocommit, or on a replica){% elif db == "mysql" %} (a read may be on a replica){% endif %}: refused before it is sent."""
    app = create_app(test_settings)

    @app.post("/_probe/read-writes")
    async def read_writes(connection: ReadConnection) -> None:
        await connection.execute(WRITES_ON_A_READ_CONNECTION[kind])

    @app.get("/_probe/read")
    async def read(connection: ReadConnection) -> dict[str, str | None]:
        return {"version": await connection.scalar(select(VERSION.c.version_num))}

    async with serve(app) as client:
        refused = await client.post("/_probe/read-writes")
        allowed = await client.get("/_probe/read")
    assert refused.status_code == 500
    assert refused.json() == {"detail": "internal error"}
    [error] = [e for e in log_entries(capsys.readouterr().err) if e["level"] == "ERROR"]
    assert "ReadOnlyError" in error["exception"]
    assert allowed.status_code == 200
