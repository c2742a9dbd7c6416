"""Helpers shared by the fixtures and the tests."""

import json
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import event
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session


def log_entries(captured: str) -> list[dict[str, Any]]:
    """The app's JSON log lines in captured stderr (the app logs JSON by default)."""
    return [json.loads(line) for line in captured.splitlines() if line.startswith("{")]


def run_in_thread(func: Callable[..., object], *args: Any) -> None:
    """Alembic's env.py calls asyncio.run(), which cannot run inside the test loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(func, *args).result()


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[AsyncClient]:
    """Run the app's lifespan (engine created, then disposed) around a client.

    Unhandled errors become 500 responses, as they would for a real client.
    """
    async with app.router.lifespan_context(app):
        transport = ASGITransport(app=app, raise_app_exceptions=False)
        async with AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


@contextmanager
def commits_fail() -> Iterator[None]:
    """Inside the block, every commit fails the way a connection dropped at COMMIT does."""

    def fail(_: Session) -> None:
        raise OperationalError(
            "COMMIT", {}, ConnectionResetError("connection lost"), connection_invalidated=True
        )

    event.listen(Session, "before_commit", fail)
    try:
        yield
    finally:
        event.remove(Session, "before_commit", fail)
