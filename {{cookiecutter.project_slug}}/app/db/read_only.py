"""Connections that refuse to write: what makes a read connection safe to hand out.

A `before_execute` hook on the read engine looks at each statement before it is
sent: INSERT, UPDATE, DELETE, `SELECT ... FOR UPDATE` and `text()` SQL that does not
start like a query raise `ReadOnlyError`, a bug in the endpoint (a 500), instead of
{% if cookiecutter.database == "sqlite" %}writing through a connection whose deferred `BEGIN` never took the write lock.
{%- elif cookiecutter.database == "postgresql" %}writing through a connection that is in autocommit or points at a replica.
{%- else %}writing through a connection that may point at a replica.
{%- endif %}
Docs: https://docs.sqlalchemy.org/en/20/core/events.html#sqlalchemy.events.ConnectionEvents.before_execute
"""

import re
from typing import Any

from sqlalchemy import TextClause, event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.base import Executable

# text() on a read connection must start like a query.
READING_SQL = re.compile(r"\s*(SELECT|WITH|VALUES|SHOW|EXPLAIN|TABLE)\b", re.IGNORECASE)


class ReadOnlyError(RuntimeError):
    """A read connection was asked to write: the endpoint needs a write session."""


def _why_not(statement: Executable) -> str | None:
    if isinstance(statement, TextClause):
        return None if READING_SQL.match(statement.text) else f"SQL {statement.text[:40]!r}"
    if getattr(statement, "is_dml", False):
        return "INSERT, UPDATE or DELETE"
    if getattr(statement, "_for_update_arg", None) is not None:
        return "SELECT ... FOR UPDATE"
    return None


def refuse_writes(engine: AsyncEngine) -> AsyncEngine:
    """Install the check on `engine` (its own connections only) and return it."""

    @event.listens_for(engine.sync_engine, "before_execute")
    def _check(_conn: Connection, statement: Executable, *_: Any) -> None:
        why = _why_not(statement)
        if why is not None:
            raise ReadOnlyError(f"{why} on a read connection: use a write session")

    return engine
