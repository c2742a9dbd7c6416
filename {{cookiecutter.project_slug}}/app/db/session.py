{%- set db = cookiecutter.database -%}
"""What an endpoint opens on the database, declared in its signature.

Each name means the same on every database:

- `WriteSession`: an ORM session in one transaction on the {% if db == "sqlite" %}database (`BEGIN IMMEDIATE`){% else %}primary{% endif %}, for units
  of work (entities, relationships, optimistic locking, savepoints).
- `WriteConnection`: a Core connection in one transaction on the {% if db == "sqlite" %}database{% else %}primary{% endif %}, for
  writes that need no unit of work (an INSERT, a bulk statement{% if cookiecutter.task_queue == "taskiq" %}, an outbox row{% endif %}).
- `ReadConnection`: a Core connection that never writes (app.db.read_only) and
  never takes a write lock{% if db == "sqlite" %} (a deferred `BEGIN`: in WAL mode it reads beside the
  writer){% else %}; the replica's when DATABASE_REPLICA_URL is set, so it may
  lag behind the latest writes, and the primary's while the replica is down
  (app.db.replica){% endif %}. Reads select the columns they need: no identity map, no
  unit of work to pay for.
{%- if db != "sqlite" %}
- `PrimaryReadConnection`: a `ReadConnection` on the primary, for reads whose
  callers must see what they have just written.
{%- endif %}

The two write handles commit when the endpoint returns and *before* the response is
sent (`scope="function"`): a commit that fails becomes an error response, never a
2xx; an endpoint that raises writes nothing. A request cut short by its deadline
(app.deadline) is cancelled: the connection it held is invalidated rather than
returned to the pool, since a statement it sent may still be running on the server.
Docs: https://fastapi.tiangolo.com/tutorial/dependencies/dependencies-with-yield/
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from app.db.engine import Engines, create_engines
from app.db.pool import connected
from app.db.soft_delete import hide_soft_deleted
from app.deadline import before_commit
from app.settings import Settings


class AppSession(Session):
    """This service's ORM session: soft-deleted rows are hidden from its queries."""


event.listen(AppSession, "do_orm_execute", hide_soft_deleted)


def create_session_factory(bind: Any, **options: Any) -> async_sessionmaker[AsyncSession]:
    # expire_on_commit=False: attributes stay readable after commit without
    # lazy I/O (which async code cannot do implicitly: MissingGreenlet).
    # autoflush=False: flushes happen where the code says so, not mid-query.
    return async_sessionmaker(
        bind, sync_session_class=AppSession, expire_on_commit=False, autoflush=False, **options
    )


async def _release(connection: AsyncConnection, *, discard: bool) -> None:
    if discard:
        await connection.invalidate()
    await connection.close()


@asynccontextmanager
async def _holding(
    connection: AsyncConnection, *, discard_unless_done: bool = False
) -> AsyncIterator[AsyncConnection]:
    """Close `connection` when the block ends (which rolls back what was not
    committed); invalidate it instead if the block was cancelled, or, with
    `discard_unless_done`, if it ended in any other way than reaching its end. The
    release is shielded: a cancelled request still gives its connection back."""
    try:
        yield connection
    except BaseException as exc:
        discard = discard_unless_done or isinstance(exc, asyncio.CancelledError)
        await asyncio.shield(_release(connection, discard=discard))
        raise
    await asyncio.shield(_release(connection, discard=False))


class Database:
    """Where sessions and connections come from: a request's (`app.state.database`)
    or a background job's (`job_database`)."""

    def __init__(self, engines: Engines) -> None:
        self.engines = engines
        self.write_session = create_session_factory(engines.writer)
        # The last moment a request's deadline may still cancel it (app.deadline).
        event.listen(engines.writer.sync_engine, "commit", before_commit)

    def transaction(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A Core connection in one write transaction, committed when the block ends
        without an error and rolled back when it raises."""
        return self._transaction()

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncConnection]:
        async with _holding(await connected(self.engines.writer)) as connection:
            await connection.begin()
            yield connection
            await connection.commit()
{%- if db == "sqlite" %}

    def read(self) -> AbstractAsyncContextManager[AsyncConnection]:
        return self._reading(self.engines.reader)

    def stream(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A read connection for a streamed response (app.streams), from the pool kept
        for streams. It is invalidated unless the stream reaches its end."""
        return self._reading(self.engines.streams, discard_unless_done=True)

    @asynccontextmanager
    async def _reading(
        self, engine: AsyncEngine, *, discard_unless_done: bool = False
    ) -> AsyncIterator[AsyncConnection]:
        connection = await connected(engine)
        async with _holding(connection, discard_unless_done=discard_unless_done):
            yield connection
{%- else %}

    def read(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A read connection: the replica's, or the primary's while it is down."""
        replica = self.engines.replica
        return self._reading(self.engines.primary.reader, replica.reader if replica else None)

    def primary_read(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A read connection on the primary: it sees every committed write."""
        return self._reading(self.engines.primary.reader, None)

    def stream(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A read connection for a streamed response (app.streams), from the pool kept
        for streams on the server reads go to. It is invalidated unless the stream
        reaches its end: a stream cut short may have rows still on their way."""
        replica = self.engines.replica
        return self._reading(
            self.engines.primary.streams,
            replica.streams if replica else None,
            discard_unless_done=True,
        )

    @asynccontextmanager
    async def _reading(
        self,
        on_primary: AsyncEngine,
        on_replica: AsyncEngine | None,
        *,
        discard_unless_done: bool = False,
    ) -> AsyncIterator[AsyncConnection]:
        fallback = self.engines.fallback
        if on_replica is None or fallback is None:
            connection = await connected(on_primary)
        else:
            connection = await fallback.connect(on_replica, on_primary)
        async with _holding(connection, discard_unless_done=discard_unless_done):
            yield connection
{%- endif %}


@asynccontextmanager
async def job_database(settings: Settings) -> AsyncIterator[Database]:
    """A background job's database: engines of its own on the job pool preset
    (JOB_DB_*), disposed when the job ends. A job opens a session or transaction per
    unit of work (`db.write_session()`, `db.transaction()`), never one for the whole
    run: each unit commits on its own, and a failure or an interruption loses only
    the unit it was in."""
    engines = create_engines(settings, for_job=True)
    try:
        yield Database(engines)
    finally:
        await engines.dispose()


def database(request: Request) -> Database:
    db: Database = request.app.state.database
    return db


async def _write_session(request: Request) -> AsyncIterator[AsyncSession]:
    """Commit if the endpoint succeeded, roll back if it raised, always close; a
    cancelled request's connection is invalidated, not returned to the pool."""
    async with database(request).write_session() as session:
        try:
            yield session
        except asyncio.CancelledError:
            await asyncio.shield(session.invalidate())
            raise
        except BaseException:
            await session.rollback()
            raise
        await session.commit()


async def _write_connection(request: Request) -> AsyncIterator[AsyncConnection]:
    async with database(request).transaction() as connection:
        yield connection


async def _read_connection(request: Request) -> AsyncIterator[AsyncConnection]:
    # Closing the connection ends its read: there is nothing to commit.
    async with database(request).read() as connection:
        yield connection
{%- if db != "sqlite" %}


async def _primary_read_connection(request: Request) -> AsyncIterator[AsyncConnection]:
    async with database(request).primary_read() as connection:
        yield connection
{%- endif %}


WriteSession = Annotated[AsyncSession, Depends(_write_session, scope="function")]
WriteConnection = Annotated[AsyncConnection, Depends(_write_connection, scope="function")]
# Nothing to commit; back to the pool before the response is sent, so that a client
# that reads its response slowly holds no connection.
ReadConnection = Annotated[AsyncConnection, Depends(_read_connection, scope="function")]
{%- if db != "sqlite" %}
PrimaryReadConnection = Annotated[
    AsyncConnection, Depends(_primary_read_connection, scope="function")
]
{%- endif %}
