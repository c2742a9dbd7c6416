{%- set db = cookiecutter.database -%}
"""Deleting what the outbox no longer needs: rows sent, and ids of tasks done, before
a cutoff, batch by batch, each batch its own transaction.

A processed id guards against a second delivery of its task, which can only come
while RabbitMQ still holds a copy (in a queue, a retry queue or the dead-letter
queue): keep them longer than a message stays there.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, delete, select

from app.db.outbox import OutboxMessage, ProcessedTask
from app.db.session import Database

_SENT = (
    select(OutboxMessage.id)
    .where(OutboxMessage.sent_at < bindparam("cutoff"))
    .order_by(OutboxMessage.sent_at)
    .limit(bindparam("batch_size"))
{%- if db != "sqlite" %}
    .with_for_update(skip_locked=True)
{%- endif %}
)
_DONE = (
    select(ProcessedTask.outbox_id)
    .where(ProcessedTask.processed_at < bindparam("cutoff"))
    .order_by(ProcessedTask.processed_at)
    .limit(bindparam("batch_size"))
{%- if db != "sqlite" %}
    .with_for_update(skip_locked=True)
{%- endif %}
)
_DELETE_SENT = delete(OutboxMessage).where(OutboxMessage.id.in_(bindparam("ids", expanding=True)))
_DELETE_DONE = delete(ProcessedTask).where(
    ProcessedTask.outbox_id.in_(bindparam("ids", expanding=True))
)


@dataclass(frozen=True)
class PurgedOutbox:
    sent: int = 0
    processed: int = 0


async def purge_outbox(
    database: Database,
    cutoff: datetime,
    batch_size: int,
    *,
    should_stop: Callable[[], bool] = lambda: False,
) -> PurgedOutbox:
    """Delete sent outbox rows, then processed ids, older than `cutoff`."""
    counts = []
    for batch, remove in ((_SENT, _DELETE_SENT), (_DONE, _DELETE_DONE)):
        total = 0
        while not should_stop():
            params = {"cutoff": cutoff, "batch_size": batch_size}
            async with database.transaction() as connection:
                ids = (await connection.scalars(batch, params)).all()
                if ids:
                    await connection.execute(remove, {"ids": ids})
            total += len(ids)
            if len(ids) < batch_size:
                break
        counts.append(total)
    return PurgedOutbox(sent=counts[0], processed=counts[1])
