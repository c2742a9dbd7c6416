"""The outbox as the web's `/metrics` shows it: rows not yet published, and the age of
the oldest. A growing backlog or age means the relays are down, too few, or cannot
reach RabbitMQ (docs/operations.md#task-queue). Read at each scrape, from the
read connection, within READINESS_TIMEOUT; on failure the gauges keep their last
values and a warning is logged.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from prometheus_client import Gauge
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from app.db.outbox import OutboxMessage
from app.db.types import utcnow

if TYPE_CHECKING:  # app.db.session imports the pool, which imports app.metrics
    from app.db.session import Database

logger = logging.getLogger(__name__)
PENDING = Gauge("outbox_pending", "Outbox rows not yet published.", multiprocess_mode="mostrecent")
OLDEST_AGE = Gauge(
    "outbox_oldest_pending_age_seconds",
    "Age of the oldest unpublished outbox row (0 when none).",
    multiprocess_mode="mostrecent",
)
_SUMMARY = select(func.count(), func.min(OutboxMessage.created_at)).where(
    OutboxMessage.sent_at.is_(None)
)


async def observe_outbox(database: Database, seconds: float) -> None:
    try:
        async with asyncio.timeout(seconds), database.read() as connection:
            count, oldest = (await connection.execute(_SUMMARY)).one()
    except (SQLAlchemyError, TimeoutError) as exc:
        logger.warning("outbox gauges not refreshed: %r", exc)
        return
    PENDING.set(count)
    OLDEST_AGE.set(0 if oldest is None else (utcnow() - oldest).total_seconds())
