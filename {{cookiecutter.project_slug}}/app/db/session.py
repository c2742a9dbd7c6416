{%- set db = cookiecutter.database -%}
"""What an endpoint opens on the database, declared in its signature.

- `WriteSession`: an ORM session in one transaction on the {% if db == "sqlite" %}database (`BEGIN IMMEDIATE`){% else %}primary{% endif %}, for units
  of work (entities, relationships, optimistic locking, savepoints). It is
  committed when the endpoint returns and *before* the response is sent
  (`scope="function"`): a commit that fails becomes an error response, never a 2xx.
- `ReadConnection`: a Core connection that never writes (app.db.read_only) and
  never takes a write lock{% if db == "sqlite" %} (a deferred `BEGIN`: in WAL mode it reads beside the
  writer){% else %}; the replica's when DATABASE_REPLICA_URL is set, so it may
  lag behind the latest writes{% endif %}. Reads select the columns they need: no identity
  map, no unit of work to pay for.
{%- if db != "sqlite" %}
- `PrimaryConnection`: a Core connection to the primary, for reads whose callers
  must see what they have just written, and for writes of one statement, which need
  no unit of work. {% if db == "postgresql" %}It is in autocommit: each statement is its own transaction.{% else %}Its transaction is committed when the endpoint returns, before the response.{% endif %}
{%- endif %}
Docs: https://fastapi.tiangolo.com/tutorial/dependencies/dependencies-with-yield/
"""

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from app.db.engine import Engines, create_engines
from app.db.soft_delete import hide_soft_deleted
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


class Database:
    """Where sessions and connections come from: a request's (`app.state.database`)
    or a background job's (`job_database`)."""

    def __init__(self, engines: Engines) -> None:
        self.engines = engines
        self.write_session = create_session_factory(engines.writer)
{%- if db == "postgresql" %}
        # Server-side cursors (streaming) exist only inside a transaction.
        self._streaming = engines.reader.execution_options(
            isolation_level="READ COMMITTED", postgresql_readonly=True
        )
{%- endif %}

    def read(self) -> AbstractAsyncContextManager[AsyncConnection]:
        return self.engines.reader.connect()
{%- if db != "sqlite" %}

    def primary(self) -> AbstractAsyncContextManager[AsyncConnection]:
        return self.engines.primary.begin()
{%- endif %}

    def transaction(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A Core connection in one write transaction, committed when the block ends
        without an error and rolled back when it raises."""
        return self.engines.writer.begin()

    def stream(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A read connection for a response that streams (it outlives the request's)."""
{%- if db == "postgresql" %}
        return self._streaming.begin()
{%- else %}
        return self.engines.reader.connect()
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
    """Commit if the endpoint succeeded, roll back if it raised, always close."""
    async with database(request).write_session() as session, session.begin():
        yield session


async def _read_connection(request: Request) -> AsyncIterator[AsyncConnection]:
    # Closing the connection ends its read: there is nothing to commit.
    async with database(request).read() as connection:
        yield connection
{%- if db != "sqlite" %}


async def _primary_connection(request: Request) -> AsyncIterator[AsyncConnection]:
    async with database(request).primary() as connection:
        yield connection
{%- endif %}


WriteSession = Annotated[AsyncSession, Depends(_write_session, scope="function")]
# Nothing to commit: the connection goes back to the pool after the response is sent.
ReadConnection = Annotated[AsyncConnection, Depends(_read_connection)]
{%- if db != "sqlite" %}
PrimaryConnection = Annotated[AsyncConnection, Depends(_primary_connection, scope="function")]
{%- endif %}
