"""A worker and its relay, running until told to stop (scripts/worker.py runs it).

The worker consumes the task queue with taskiq's receiver: at most
`worker_capacity()` tasks at once (so none waits for a database connection), each
message acknowledged after its task ran (`when_executed`); outcomes.py retries or
dead-letters the failures. The relay publishes the outbox. When `stop` is set, the
worker takes no new message, waits up to WORKER_SHUTDOWN_SECONDS for the tasks in
hand, and closes its channels: RabbitMQ delivers what was not acknowledged again.
"""

import asyncio
import logging
from collections.abc import Sequence

from taskiq import AcknowledgeType
from taskiq.receiver import Receiver

from app.settings import Settings
from app.tasks.broker import TASKS, Task, create_broker, worker_capacity, worker_database
from app.tasks.metrics import serve_metrics
from app.tasks.outcomes import OutcomeMiddleware, RequestIdMiddleware
from app.tasks.publisher import Publisher
from app.tasks.relay import Relay

logger = logging.getLogger(__name__)


async def run_worker(
    settings: Settings, stop: asyncio.Event, tasks: Sequence[Task] = TASKS
) -> None:
    """Raises OSError, aiormq's AMQPError, PublishFailedError or SQLAlchemyError
    when RabbitMQ, the database or the metrics port cannot be had at start-up."""
    capacity = worker_capacity(settings)
    broker = create_broker(settings, tasks)
    broker.is_worker_process = True
    async with (
        worker_database(settings) as database,
        Publisher(settings) as publisher,
        serve_metrics(settings.worker_metrics_port, settings.metrics_token),
    ):
        broker.state.database = database
        broker.state.settings = settings
        broker.add_middlewares(RequestIdMiddleware(), OutcomeMiddleware(publisher, settings))
        receiver = Receiver(
            broker,
            max_async_tasks=capacity,
            ack_type=AcknowledgeType.WHEN_EXECUTED,
            wait_tasks_timeout=settings.worker_shutdown_seconds,
        )
        relay = Relay(database, publisher, settings)
        logger.info("worker started: up to %d tasks at once", capacity)
        try:
            await asyncio.gather(receiver.listen(stop), relay.run(stop))
        finally:
            await broker.shutdown()
