"""A task that does nothing but be done once: the shape to copy for a task of your own.

Enqueue it from an endpoint, in the endpoint's write session or transaction:

    await enqueue(session, noop, note="hello")

A task is an async function with keyword arguments that JSON can carry (UUIDs and
datetimes arrive as text and are parsed back by the type hints), and `context`
for the worker's database and settings. Delivery is at least once: record the
outbox id in the same transaction as the task's writes (app.tasks.once), and add
the function to TASKS (app.tasks.broker). docs/tasks.md says more.
"""

import logging

from taskiq import Context, TaskiqDepends

from app.db.session import Database
from app.tasks.once import outbox_id, record_processed

logger = logging.getLogger(__name__)


async def noop(note: str = "", context: Context = TaskiqDepends()) -> None:
    database: Database = context.state.database
    task_id = outbox_id(context)
    async with database.transaction() as connection:
        if not await record_processed(connection, task_id):
            logger.info("task %s: already done", task_id)
            return
        # The task's own writes go here, on `connection`: they commit together with
        # the record above, or not at all.
    logger.info("task %s: done (%s)", task_id, note)
