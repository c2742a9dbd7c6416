{%- set db = cookiecutter.database -%}
"""Doing a task's work once, though RabbitMQ may deliver the task more than once.

Delivery is at least once: a worker that dies after the work but before its
acknowledgement gets the task again, and so does a relay that dies after
publishing but before marking the row sent. Each task carries its outbox id
(`outbox_id(context)`), and a task records it in `processed_tasks`:

- a task that writes to the database records the id in the *same transaction* as
  its writes (`record_processed` first: False means another delivery did it, and
  the task returns). The two commit together or not at all, so the work is done
  exactly once.
- a task with an effect outside the database (an email, a payment) cannot share a
  transaction with it: it checks `is_processed` first, passes the outbox id on as
  the outside service's idempotency key (the email's Message-ID), and records the
  id after the effect. Only a worker that dies between the two repeats the effect,
  under the same key.
"""

import uuid

from sqlalchemy import select
from sqlalchemy.dialects.{{ {'sqlite': 'sqlite', 'postgresql': 'postgresql', 'mysql': 'mysql'}[db] }} import insert
from sqlalchemy.ext.asyncio import AsyncConnection
from taskiq import Context

from app.db.outbox import ProcessedTask
from app.db.types import utcnow

_RECORD = insert(ProcessedTask){% if db == "mysql" %}.prefix_with("IGNORE"){% else %}.on_conflict_do_nothing(){% endif %}


def outbox_id(context: Context) -> uuid.UUID:
    """The id of the outbox row this task came from: the relay publishes it as the
    task's id, and retries keep it."""
    return uuid.UUID(context.message.task_id)


async def record_processed(connection: AsyncConnection, task_id: uuid.UUID) -> bool:
    """Record `task_id` as done in the connection's transaction. False if it was
    already: a concurrent delivery waits for the first to commit, then gets False."""
    result = await connection.execute(_RECORD, {"outbox_id": task_id, "processed_at": utcnow()})
    return result.rowcount == 1


async def is_processed(connection: AsyncConnection, task_id: uuid.UUID) -> bool:
    found = await connection.scalar(
        select(ProcessedTask.outbox_id).where(ProcessedTask.outbox_id == task_id)
    )
    return found is not None
