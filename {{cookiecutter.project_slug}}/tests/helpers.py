{%- set auth = cookiecutter.auth == "jwt" -%}
"""Helpers shared by the fixtures and the tests."""

import asyncio
import json
import socket
{%- if auth %}
import uuid
{%- endif %}
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI{% if auth %}, Request{% endif %}
from httpx import ASGITransport, AsyncClient
from sqlalchemy import Connection, Engine, event
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import Session

{% if auth -%}
from app.auth.access import Caller, caller_of
{% endif -%}
from app.db.session import Database, create_session_factory
from app.main import create_app
from app.settings import Settings

SERVER_SEND_BUFFER = 32_768


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

    Unhandled errors become 500 responses, as they would for a real client.{% if auth %}
    Requests act as the owner of what they touch (`act_as_owner`).{% endif %}
    """
{%- if auth %}
    act_as_owner(app)
{%- endif %}
    async with app.router.lifespan_context(app):
        transport = ASGITransport(app=app, raise_app_exceptions=False)
        async with AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


@asynccontextmanager
{%- if auth %}
async def running_server(app: FastAPI, *, as_owner: bool = True) -> AsyncIterator[tuple[str, int]]:
    """The app under a real uvicorn on a free loopback port, in this event loop:
    for tests that need real sockets (slow clients, streaming). Yields (host, port).
    Requests act as the owner of what they touch (`act_as_owner`) unless `as_owner`
    is False. uvicorn's own proxy headers are off: the app decides whom it trusts
    (FORWARDED_ALLOW_IPS)."""
    if as_owner:
        act_as_owner(app)
{%- else %}
async def running_server(app: FastAPI) -> AsyncIterator[tuple[str, int]]:
    """The app under a real uvicorn on a free loopback port, in this event loop:
    for tests that need real sockets (slow clients, streaming). Yields (host, port)."""
{%- endif %}
    sock = socket.socket()
    # A small send buffer (the accepted sockets inherit it): a client that stops
    # reading blocks the server's sends after about 100 KB rather than megabytes.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SERVER_SEND_BUFFER)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        app, lifespan="on", log_config=None, timeout_graceful_shutdown=5, proxy_headers=False
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()  # raises why it stopped
            await asyncio.sleep(0.01)
        yield sock.getsockname()
    finally:
        server.should_exit = True
        await task
        sock.close()


def rolled_back_app(connection: AsyncConnection, settings: Settings) -> FastAPI:
    """The real app, every session and connection of it on `connection` (lifespan not
    run){% if auth %}, acting as the owner of whatever it touches (`act_as_owner`){% endif %}."""
    app = create_app(settings)
    app.state.database = RolledBackDatabase(connection)
{%- if auth %}
    act_as_owner(app)
{%- endif %}
    return app


class RolledBackDatabase(Database):
    """Every session and connection of the app on one connection, the test's
    rolled-back transaction; each use in a savepoint, so that a failed statement
    undoes only itself."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection
        self.write_session = create_session_factory(
            connection, join_transaction_mode="create_savepoint"
        )

    @asynccontextmanager
    async def _savepoint(self) -> AsyncIterator[AsyncConnection]:
        async with self.connection.begin_nested():
            yield self.connection

    def read(self) -> AbstractAsyncContextManager[AsyncConnection]:
        return self._savepoint()
{%- if cookiecutter.database != "sqlite" %}

    def primary_read(self) -> AbstractAsyncContextManager[AsyncConnection]:
        return self._savepoint()
{%- endif %}

    def transaction(self) -> AbstractAsyncContextManager[AsyncConnection]:
        return self._savepoint()

    def stream(self) -> AbstractAsyncContextManager[AsyncConnection]:
        return self._savepoint()


@contextmanager
def commits_fail() -> Iterator[None]:
    """Inside the block, every commit fails the way a connection dropped at COMMIT does:
    a session's, and a Core connection's (a WriteConnection commits no session)."""

    def fail(_: Session | Connection) -> None:
        raise OperationalError(
            "COMMIT", {}, ConnectionResetError("connection lost"), connection_invalidated=True
        )

    def drop(connection: Connection) -> None:
        # As the driver would find it: the connection is gone (and its transaction with
        # it), not back in the pool with the transaction still open.
        connection.invalidate()
        fail(connection)

    event.listen(Session, "before_commit", fail)
    event.listen(Engine, "commit", drop)
    try:
        yield
    finally:
        event.remove(Engine, "commit", drop)
        event.remove(Session, "before_commit", fail)
{%- if auth %}


# Who the tests that are not about authentication are, where no user is in the path.
SOMEONE = uuid.UUID("00000000-0000-7000-8000-000000000001")


def _the_admin_in_the_path(request: Request) -> Caller:
    try:
        user_id = uuid.UUID(request.path_params.get("user_id", ""))
    except ValueError:  # no user in the path, or not a UUID (the route answers 422)
        user_id = SOMEONE
    return Caller(user_id, is_admin=True)


def real_hashing_cost(settings: Settings) -> Settings:
    """The settings with the shipped password-hashing cost (the suite's is cheap)."""
    fields = ("password_hash_time_cost", "password_hash_memory_kib", "password_hash_parallelism")
    return settings.model_copy(update={f: Settings.model_fields[f].default for f in fields})


def act_as_owner(app: FastAPI) -> None:
    """Every request acts as the user its path names, an admin: for the tests that
    are not about access (tests/test_auth.py and tests/test_access.py send real
    tokens, and the access rules still run on the caller made here)."""
    app.dependency_overrides[caller_of] = _the_admin_in_the_path
{%- endif %}
