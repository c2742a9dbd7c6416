{%- set db = cookiecutter.database -%}
"""The transactional outbox: a task to run, written in the caller's own transaction.

`enqueue()` inserts a row into `outbox` on the connection of the endpoint's write
session or transaction, so the task exists exactly when the request's writes
commit: a rolled-back request leaves no task behind, and a process that dies after
the commit loses none. The relay (app.tasks.relay) publishes the rows to RabbitMQ
and marks them sent once the broker has confirmed them; the worker records each
task it has done in `processed_tasks` (app.tasks.once), so a task delivered twice
does its work once. The purge job removes
sent rows and processed ids once they are old (app.tasks.purge).
"""

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
{%- if cookiecutter.python_version == "3.11" %}
from typing import Any, ParamSpec
{%- else %}
from typing import Any
{%- endif %}

from pydantic_core import to_jsonable_python
from sqlalchemy import JSON, Index, String, insert{% if db != "mysql" %}, text{% endif %}
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base
from app.db.keys import new_id
from app.db.types import SERVER_NOW, UTCDateTime, utcnow
from app.request_id import request_id_var
{%- if cookiecutter.python_version == "3.11" or db == "postgresql" %}
{% endif %}
{%- if cookiecutter.python_version == "3.11" %}
P = ParamSpec("P")
{%- endif %}
{%- if db == "postgresql" %}
# The relays LISTEN here (app.tasks.relay); PostgreSQL delivers a NOTIFY only on commit.
NOTIFY_CHANNEL = "outbox"
{%- endif %}


class OutboxMessage(Base):
    """A task to publish: its name, its keyword arguments (JSON) and the request id
    of the request that asked for it. `claimed_until` is a relay's lease, `sent_at`
    is set once RabbitMQ confirmed the message."""

    __tablename__ = "outbox"
    __table_args__ = (
        # The relay's queue: unsent rows, oldest first (UUIDv7 keys are time-ordered).
{%- if db == "mysql" %}
        Index("ix_outbox_sent_at_id", "sent_at", "id"),
{%- else %}
        Index("ix_outbox_pending_id", "id", {{ db }}_where=text("sent_at IS NULL")),
        # The purge's: sent rows, oldest first.
        Index("ix_outbox_sent_at", "sent_at", {{ db }}_where=text("sent_at IS NOT NULL")),
{%- endif %}
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    task: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    request_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=SERVER_NOW)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ProcessedTask(Base):
    """The outbox id of a task whose work is done, written in the same transaction as
    that work: a second delivery of the task finds it and does nothing."""

    __tablename__ = "processed_tasks"

    outbox_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    processed_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=SERVER_NOW, index=True
    )


class NotInATransactionError(RuntimeError):
    """enqueue() was handed a connection whose statements commit one by one."""


async def enqueue{% if cookiecutter.python_version != "3.11" %}[**P]{% endif %}(
    target: AsyncSession | AsyncConnection,
    task: Callable[P, Awaitable[Any]],
    /,
    *args: P.args,
    **kwargs: P.kwargs,
) -> uuid.UUID:
    """Write `task(**kwargs)` to the outbox in `target`'s transaction; returns its id,
    which is also the task's id in RabbitMQ and its idempotency key.

    `target` is a WriteSession, or a connection in a transaction (`db.transaction()`);
    an autocommit connection is refused, since its row would commit on its own.
    Arguments are keyword arguments, stored as JSON (UUIDs and datetimes as text; the
    task's type hints turn them back).
    """
    if args:
        raise TypeError("enqueue() takes the task's arguments by keyword only")
    connection = await target.connection() if isinstance(target, AsyncSession) else target
    if not connection.in_transaction(){% if db == "postgresql" %} or await _is_autocommit(connection){% endif %}:
        raise NotInATransactionError(
            "enqueue() needs a write session or a transaction: on an autocommit "
            "connection the task would commit whether or not the request does"
        )
    message_id = new_id()
    await connection.execute(
        insert(OutboxMessage),
        {
            "id": message_id,
            "task": task_name(task),
            "payload": to_jsonable_python(kwargs),
            "request_id": request_id_var.get(),
            "created_at": utcnow(),
        },
    )
{%- if db == "postgresql" %}
    await connection.exec_driver_sql(f"NOTIFY {NOTIFY_CHANNEL}")
{%- endif %}
    return message_id


def task_name(task: Callable[..., Any]) -> str:
    """A task's name in the outbox and in RabbitMQ: its module and function name."""
    return f"{task.__module__}:{task.__qualname__}"

{%- if db == "postgresql" %}


async def _is_autocommit(connection: AsyncConnection) -> bool:
    """The primary's own engine runs in autocommit (reads need no transaction): a
    `begin()` on it is no transaction."""
    raw = (await connection.get_raw_connection()).dbapi_connection
    return raw is not None and connection.dialect.detect_autocommit_setting(raw)
{%- endif %}
