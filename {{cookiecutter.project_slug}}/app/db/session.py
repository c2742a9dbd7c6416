{%- set db = cookiecutter.database -%}
"""Sessions: one per request, declared by each endpoint as a read or a write.

- `WriteSession`: a transaction on the {% if db == "sqlite" %}database (`BEGIN IMMEDIATE`){% else %}primary{% endif %}, committed when the endpoint
  returns and *before* the response is sent (`scope="function"`): a commit that
  fails becomes an error response, never a 2xx. Its reads see its own writes.
- `ReadSession`: never writes and never takes a write lock{% if db == "sqlite" %} (a deferred `BEGIN`:
  in WAL mode it reads beside the writer){% else %}; it goes to the replica
  when DATABASE_REPLICA_URL is set, so it may lag behind the latest writes{% endif %}.
{%- if db != "sqlite" %}
- `PrimaryReadSession`: a read on the primary, for endpoints whose callers must
  see what they have just written (read-your-writes).
{%- endif %}

Read sessions refuse to write: `add()`, a flush, INSERT/UPDATE/DELETE, `SELECT ...
FOR UPDATE` and `text()` SQL that does not start like a query raise
`ReadOnlySessionError` (a 500: the endpoint has a bug), and so does an endpoint that
leaves changed objects behind, which would otherwise be dropped without a word.
Docs: https://fastapi.tiangolo.com/tutorial/dependencies/dependencies-with-yield/
"""

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import TextClause, event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker
from sqlalchemy.orm import ORMExecuteState, Session

from app.db.engine import Engines
from app.db.soft_delete import hide_soft_deleted

# text() in a read session must start like a query; anything else is refused.
READING_SQL = re.compile(r"\s*(SELECT|WITH|VALUES|SHOW|EXPLAIN|TABLE)\b", re.IGNORECASE)


class ReadOnlySessionError(RuntimeError):
    """A read session was asked to write: the endpoint needs a WriteSession."""


class AppSession(Session):
    """This service's ORM session: soft-deleted rows are hidden from its queries."""


class ReadOnlySession(AppSession):
    """An AppSession that refuses every write."""


def _refuse(what: str) -> ReadOnlySessionError:
    return ReadOnlySessionError(
        f"{what} in a read session: declare the endpoint's session a WriteSession"
    )


def _refuse_writes(state: ORMExecuteState) -> None:
    statement = state.statement
    if isinstance(statement, TextClause):
        if not READING_SQL.match(statement.text):
            raise _refuse(f"SQL that does not read ({statement.text[:30]!r})")
    elif state.is_insert or state.is_update or state.is_delete:
        raise _refuse("INSERT, UPDATE or DELETE")
    elif getattr(statement, "_for_update_arg", None) is not None:
        raise _refuse("SELECT ... FOR UPDATE")


def _refuse_add(_session: Session, _instance: object) -> None:
    raise _refuse("add()")


def _refuse_flush(_session: Session, _context: object, _instances: object) -> None:
    raise _refuse("flush()")


event.listen(AppSession, "do_orm_execute", hide_soft_deleted)
event.listen(ReadOnlySession, "do_orm_execute", _refuse_writes)
event.listen(ReadOnlySession, "before_attach", _refuse_add)
event.listen(ReadOnlySession, "before_flush", _refuse_flush)


def _sessionmaker(bind: Any, session_class: type[Session], **options: Any) -> Any:
    # expire_on_commit=False: attributes stay readable after commit without
    # lazy I/O (which async code cannot do implicitly: MissingGreenlet).
    # autoflush=False: flushes happen where the code says so, not mid-query.
    return async_sessionmaker(
        bind, sync_session_class=session_class, expire_on_commit=False, autoflush=False, **options
    )


@dataclass(frozen=True)
class SessionFactories:
    """One session factory per kind of session (see the module docstring)."""

    write: async_sessionmaker[AsyncSession]
    read: async_sessionmaker[AsyncSession]
{%- if db != "sqlite" %}
    primary_read: async_sessionmaker[AsyncSession]
{%- endif %}
{%- if db == "postgresql" %}
    # A read in a READ ONLY transaction: PostgreSQL opens server-side cursors (for
    # streaming) only inside one.
    stream: async_sessionmaker[AsyncSession]
{%- endif %}


def create_session_factories(engines: Engines) -> SessionFactories:
    return SessionFactories(
        write=_sessionmaker(engines.writer, AppSession),
        read=_sessionmaker(engines.reader, ReadOnlySession),
{%- if db != "sqlite" %}
        primary_read=_sessionmaker(engines.primary_reader, ReadOnlySession),
{%- endif %}
{%- if db == "postgresql" %}
        stream=_sessionmaker(
            engines.reader.execution_options(
                isolation_level="READ COMMITTED", postgresql_readonly=True
            ),
            ReadOnlySession,
        ),
{%- endif %}
    )


def session_factories_on(connection: AsyncConnection, **options: Any) -> SessionFactories:
    """Every kind of session on one connection (the tests' rolled-back transaction)."""
    return SessionFactories(
        write=_sessionmaker(connection, AppSession, **options),
        read=_sessionmaker(connection, ReadOnlySession, **options),
{%- if db != "sqlite" %}
        primary_read=_sessionmaker(connection, ReadOnlySession, **options),
{%- endif %}
{%- if db == "postgresql" %}
        stream=_sessionmaker(connection, ReadOnlySession, **options),
{%- endif %}
    )


def session_factories(request: Request) -> SessionFactories:
    factories: SessionFactories = request.app.state.sessions
    return factories


async def _write_session(request: Request) -> AsyncIterator[AsyncSession]:
    """Commit if the endpoint succeeded, roll back if it raised, always close."""
    async with session_factories(request).write() as session, session.begin():
        yield session


def _check_nothing_changed(session: AsyncSession) -> None:
    if session.dirty or session.deleted:
        raise _refuse("changed objects left")


async def _read_session(request: Request) -> AsyncIterator[AsyncSession]:
    # Closing the session ends the read transaction: there is nothing to commit.
    async with session_factories(request).read() as session:
        yield session
        _check_nothing_changed(session)
{%- if db != "sqlite" %}


async def _primary_read_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with session_factories(request).primary_read() as session:
        yield session
        _check_nothing_changed(session)
{%- endif %}


WriteSession = Annotated[AsyncSession, Depends(_write_session, scope="function")]
ReadSession = Annotated[AsyncSession, Depends(_read_session, scope="function")]
{%- if db != "sqlite" %}
PrimaryReadSession = Annotated[AsyncSession, Depends(_primary_read_session, scope="function")]
{%- endif %}
