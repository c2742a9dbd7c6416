{%- set db = cookiecutter.database -%}
"""The relay: publishes committed outbox rows to RabbitMQ, and marks them sent once
RabbitMQ has confirmed them.

One batch is three short steps, none of which holds a transaction open while it
waits for the broker:
1. claim: in one transaction, the oldest unsent rows that no other relay holds
{%- if db == "sqlite" %}
   (`BEGIN IMMEDIATE`: relays take turns) get a lease of RELAY_LEASE_SECONDS;
{%- else %}
   (`FOR UPDATE SKIP LOCKED`: a second relay takes the next rows instead of
   waiting) get a lease of RELAY_LEASE_SECONDS;
{%- endif %}
2. publish: each row as a persistent, mandatory message, confirmed by RabbitMQ
   (app.tasks.publisher);
3. mark: the confirmed rows get `sent_at`; the others lose their lease at once.
A relay that dies anywhere leaves its rows claimed until the lease ends; then a relay
publishes them again. So a task may be published twice, never lost, and the worker
does its work once (app.tasks.once). Rows go out oldest first; with several relays
(or several workers) no order is guaranteed.
{%- if db == "postgresql" %}

`enqueue()` sends a NOTIFY with each row, which PostgreSQL delivers on commit: the
relay LISTENs, so it wakes as soon as a task commits. LISTEN does not work through
PgBouncer's transaction mode (DB_PGBOUNCER=true), and a notification can be lost
with its connection: polling every RELAY_POLL_SECONDS stays in every case.
{%- else %}

The relay looks at the outbox every RELAY_POLL_SECONDS, and at once again while it
finds full batches.
{%- endif %}
"""

import asyncio
{%- if db == "postgresql" %}
import contextlib
{%- endif %}
import logging
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import SQLAlchemyError
from taskiq import TaskiqMessage

from app.db.outbox import {% if db == "postgresql" %}NOTIFY_CHANNEL, {% endif %}OutboxMessage
from app.db.session import Database
from app.db.types import utcnow
from app.settings import Settings
from app.tasks import metrics
from app.tasks.publisher import Publisher, PublishFailedError

logger = logging.getLogger(__name__)
MAX_BACKOFF_SECONDS = 10.0
{%- if db == "postgresql" %}
LISTEN_RETRY_SECONDS = 5.0
{%- endif %}

_CLAIM = (
    select(OutboxMessage.id, OutboxMessage.task, OutboxMessage.payload, OutboxMessage.request_id)
    .where(
        OutboxMessage.sent_at.is_(None),
        or_(
            OutboxMessage.claimed_until.is_(None),
            OutboxMessage.claimed_until < bindparam("now"),
        ),
    )
    .order_by(OutboxMessage.id)
    .limit(bindparam("batch_size"))
{%- if db != "sqlite" %}
    .with_for_update(skip_locked=True)
{%- endif %}
)
_IDS = OutboxMessage.id.in_(bindparam("ids", expanding=True))
_LEASE = update(OutboxMessage).where(_IDS).values(claimed_until=bindparam("until"))
_MARK_SENT = update(OutboxMessage).where(_IDS).values(sent_at=bindparam("now"), claimed_until=None)
_RELEASE = (
    update(OutboxMessage).where(_IDS, OutboxMessage.sent_at.is_(None)).values(claimed_until=None)
)


class Relay:
    def __init__(self, database: Database, publisher: Publisher, settings: Settings) -> None:
        self.database = database
        self.publisher = publisher
        self.settings = settings
        self.wake = asyncio.Event()

    async def relay_batch(self) -> int:
        """Claim, publish and mark one batch; returns how many rows it claimed.
        Raises PublishFailedError when some were not confirmed (they are released)."""
        rows = await self._claim()
        if not rows:
            return 0
        outcomes = await asyncio.gather(
            *(self.publisher.publish_task(self._message(row)) for row in rows),
            return_exceptions=True,
        )
        sent = [row.id for row, outcome in zip(rows, outcomes, strict=True) if outcome is None]
        if sent:
            await self._mark_sent(sent)
            metrics.RELAYED.inc(len(sent))
        errors = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
        if errors:
            await self._release([row.id for row in rows if row.id not in set(sent)])
            raise errors[0]
        return len(rows)

    async def run(self, stop: asyncio.Event) -> None:
{%- if db == "postgresql" %}
        """Relay until `stop` is set, LISTENing for wake-ups (unless behind PgBouncer)."""
        listener = None if self.settings.db_pgbouncer else asyncio.create_task(self._listen())
        try:
            await self._relay_until(stop)
        finally:
            if listener is not None:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener

    async def _relay_until(self, stop: asyncio.Event) -> None:
        """Full batches back to back, else wait for a NOTIFY or the next poll; after
        a failure, wait longer each time (up to MAX_BACKOFF_SECONDS)."""
{%- else %}
        """Relay until `stop` is set: full batches back to back, else wait for the next
        poll; after a failure, wait longer each time (up to MAX_BACKOFF_SECONDS)."""
{%- endif %}
        poll = self.settings.relay_poll_seconds
        backoff = poll
        while not stop.is_set():
            self.wake.clear()
            try:
                claimed = await self.relay_batch()
                backoff = poll
            except (SQLAlchemyError, PublishFailedError) as exc:
                logger.warning("relay: %r; trying again in %.1f s", exc, backoff)
                await _first_of(stop, seconds=backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                continue
            if claimed < self.settings.relay_batch_size:
                await _first_of(stop, self.wake, seconds=poll)

    def _message(self, row: Row[Any]) -> TaskiqMessage:
        labels = {
            "request_id": row.request_id,
            "attempt": 1,
            "timeout": self.settings.task_timeout_seconds,
        }
        return TaskiqMessage(
            task_id=str(row.id), task_name=row.task, labels=labels, args=[], kwargs=row.payload
        )

    async def _claim(self) -> list[Row[Any]]:
        now = utcnow()
        lease = timedelta(seconds=self.settings.relay_lease_seconds)
        async with self.database.transaction() as connection:
            result = await connection.execute(
                _CLAIM, {"now": now, "batch_size": self.settings.relay_batch_size}
            )
            rows = list(result.all())
            if rows:
                ids = [row.id for row in rows]
                await connection.execute(_LEASE, {"ids": ids, "until": now + lease})
        return rows

    async def _mark_sent(self, ids: list[uuid.UUID]) -> None:
        async with self.database.transaction() as connection:
            await connection.execute(_MARK_SENT, {"ids": ids, "now": utcnow()})

    async def _release(self, ids: list[uuid.UUID]) -> None:
        async with self.database.transaction() as connection:
            await connection.execute(_RELEASE, {"ids": ids})
{%- if db == "postgresql" %}

    async def _listen(self) -> None:
        """Set `wake` on each NOTIFY, on a connection of its own (from the pool, in
        autocommit); reconnect after losing it. Polling covers the gaps."""
        while True:
            try:
                await self._listen_until_lost()
            except (SQLAlchemyError, OSError) as exc:
                logger.warning("LISTEN %s failed (%r); polling only", NOTIFY_CHANNEL, exc)
            await asyncio.sleep(LISTEN_RETRY_SECONDS)

    async def _listen_until_lost(self) -> None:
        lost = asyncio.Event()
        async with self.database.engines.pools["primary"].connect() as connection:
            driver: Any = (await connection.get_raw_connection()).driver_connection
            await driver.add_listener(NOTIFY_CHANNEL, self._notified)
            driver.add_termination_listener(lambda _: lost.set())
            self.wake.set()  # whatever committed while nobody listened
            try:
                await lost.wait()
            finally:
                with contextlib.suppress(Exception):
                    await driver.remove_listener(NOTIFY_CHANNEL, self._notified)

    def _notified(self, *_: object) -> None:
        self.wake.set()
{%- endif %}


async def _first_of(*events: asyncio.Event, seconds: float) -> None:
    """Return when one of `events` is set, or after `seconds`."""
    waiters = [asyncio.create_task(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
