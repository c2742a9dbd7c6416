"""The session dependencies: a write commits before the response and rolls back on
errors; a read never writes, whatever the endpoint tries.

The endpoints below are throwaway probes on the real dependencies; what a test reads
back afterwards is the outcome (rows on the test's connection), not which hook fired.
"""

import pytest
from fastapi import FastAPI, HTTPException
from httpx import AsyncClient
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.session import ReadSession, WriteSession
from tests.helpers import commits_fail
from tests.scratch_models import Widget

pytestmark = pytest.mark.usefixtures("widgets")
COUNT = select(func.count()).select_from(Widget.__table__)


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

    @app.post("/_probe/read-adds")
    async def read_adds(session: ReadSession) -> None:
        session.add(Widget(name="sneaked in"))

    @app.post("/_probe/read-updates")
    async def read_updates(session: ReadSession) -> None:
        await session.execute(update(Widget).values(name="renamed"))

    @app.post("/_probe/read-locks")
    async def read_locks(session: ReadSession) -> None:
        await session.execute(select(Widget).with_for_update())

    @app.post("/_probe/read-changes-and-leaves")
    async def read_changes(session: ReadSession) -> None:
        widget = (await session.scalars(select(Widget))).first()
        assert widget is not None
        widget.name = "changed in a read session"

    return app


@pytest.mark.usefixtures("probe_app")
async def test_success_commits(client: AsyncClient, connection: AsyncConnection) -> None:
    response = await client.post("/_probe/write")
    assert response.status_code == 200
    assert await connection.scalar(COUNT) == 1


@pytest.mark.usefixtures("probe_app")
async def test_handler_error_rolls_back(client: AsyncClient, connection: AsyncConnection) -> None:
    response = await client.post("/_probe/write-then-fail")
    assert response.status_code == 418
    assert await connection.scalar(COUNT) == 0


@pytest.mark.usefixtures("probe_app")
async def test_failed_commit_is_never_a_2xx_and_writes_nothing(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    with commits_fail():
        response = await client.post("/_probe/write")
    assert response.status_code == 503
    assert response.json()["detail"] == "the database is unavailable; retry later"
    assert await connection.scalar(COUNT) == 0


@pytest.mark.usefixtures("probe_app")
@pytest.mark.parametrize(
    "probe", ["read-adds", "read-updates", "read-locks", "read-changes-and-leaves"]
)
async def test_a_read_session_refuses_to_write(
    client: AsyncClient, connection: AsyncConnection, probe: str
) -> None:
    assert (await client.post("/_probe/write")).status_code == 200
    response = await client.post(f"/_probe/{probe}")
    assert response.status_code == 500
    assert response.json() == {"detail": "internal error"}
    names = (await connection.scalars(select(Widget.__table__.c.name))).all()
    assert names == ["written"]
