"""The request session commits before the response and rolls back on errors."""

from collections.abc import Iterator

import pytest
from fastapi import FastAPI, HTTPException
from httpx import AsyncClient
from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app.db.session import SessionDep


@pytest.fixture
def probe_app(app: FastAPI) -> FastAPI:
    """Two throwaway endpoints that use the real session dependency."""

    @app.post("/_probe/ok")
    async def ok(session: SessionDep) -> dict[str, bool]:
        await session.execute(text("SELECT 1"))
        return {"ok": True}

    @app.post("/_probe/fails")
    async def fails(session: SessionDep) -> None:
        await session.execute(text("SELECT 1"))
        raise HTTPException(status_code=418, detail="handler failed")

    return app


@pytest.fixture
def events() -> Iterator[list[str]]:
    """Record commits and rollbacks of every ORM session."""
    seen: list[str] = []

    def on_commit(_: Session) -> None:
        seen.append("commit")

    def on_rollback(_: Session, _previous: object) -> None:
        seen.append("rollback")

    event.listen(Session, "after_commit", on_commit)
    event.listen(Session, "after_soft_rollback", on_rollback)
    yield seen
    event.remove(Session, "after_commit", on_commit)
    event.remove(Session, "after_soft_rollback", on_rollback)


@pytest.fixture
def failing_commit() -> Iterator[None]:
    """Make every commit fail the way a dropped connection does."""

    def fail(_: Session) -> None:
        raise OperationalError(
            "COMMIT", {}, ConnectionResetError("connection lost"), connection_invalidated=True
        )

    event.listen(Session, "before_commit", fail)
    yield
    event.remove(Session, "before_commit", fail)


async def test_success_commits(probe_app: FastAPI, client: AsyncClient, events: list[str]) -> None:
    response = await client.post("/_probe/ok")
    assert response.status_code == 200
    assert "commit" in events


async def test_handler_error_rolls_back(
    probe_app: FastAPI, client: AsyncClient, events: list[str]
) -> None:
    response = await client.post("/_probe/fails")
    assert response.status_code == 418
    assert "commit" not in events
    assert "rollback" in events


@pytest.mark.usefixtures("failing_commit")
async def test_failed_commit_is_never_a_2xx(probe_app: FastAPI, client: AsyncClient) -> None:
    response = await client.post("/_probe/ok")
    assert response.status_code == 503
    assert response.json()["detail"] == "the database is unavailable; retry later"
