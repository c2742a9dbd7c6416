"""What happens after a task ran: counted, and retried or dead-lettered when it failed.

taskiq's worker acknowledges a message *after* its task ran (ack type
`when_executed`, scripts/worker.py), whether the task succeeded or raised. A failed
attempt is therefore published again before that acknowledgement: to the retry
queue of its attempt, whose per-message TTL sends it back to the workers after
TASK_RETRY_DELAY_SECONDS, doubled for each further attempt (at most
TASK_RETRY_MAX_DELAY_SECONDS); after TASK_MAX_ATTEMPTS, to the dead-letter queue,
with the error in its `x-error` header. A worker that dies in between loses
nothing: the message was not acknowledged, so RabbitMQ delivers it again.

The request id of the request that enqueued a task (a label the relay sets) is put
back in the log context (app.request_id) for the whole run, so every log line of
the task carries it.
"""

import logging
from typing import Any

from taskiq import TaskiqMessage, TaskiqMiddleware, TaskiqResult

from app.request_id import request_id_var
from app.settings import Settings
from app.tasks import metrics
from app.tasks.publisher import Publisher

logger = logging.getLogger(__name__)


class RequestIdMiddleware(TaskiqMiddleware):
    def pre_execute(self, message: TaskiqMessage) -> TaskiqMessage:
        # Each task runs in an asyncio task of its own, so this is its alone.
        request_id_var.set(message.labels.get("request_id"))
        return message


def retry_delay(settings: Settings, attempt: int) -> float:
    """Seconds to wait after failed attempt `attempt` (1, 2, ...)."""
    delay = settings.task_retry_delay_seconds * 2 ** (attempt - 1)
    return float(min(delay, settings.task_retry_max_delay_seconds))


class OutcomeMiddleware(TaskiqMiddleware):
    def __init__(self, publisher: Publisher, settings: Settings) -> None:
        super().__init__()
        self.publisher = publisher
        self.settings = settings

    def post_execute(self, message: TaskiqMessage, result: TaskiqResult[Any]) -> None:
        if not result.is_err:
            metrics.SUCCEEDED.labels(message.task_name).inc()

    async def on_error(
        self, message: TaskiqMessage, result: TaskiqResult[Any], exception: BaseException
    ) -> None:
        """Raising here (RabbitMQ unreachable) skips the acknowledgement: RabbitMQ then
        delivers the message again once the worker's channel closes."""
        task = message.task_name
        metrics.FAILED.labels(task).inc()
        attempt = int(message.labels.get("attempt", 1))
        attempts = self.settings.task_max_attempts
        if attempt < attempts:
            delay = retry_delay(self.settings, attempt)
            labels = {**message.labels, "attempt": attempt + 1}
            again = message.model_copy(update={"labels": labels})
            await self.publisher.publish_retry(again, after=attempt, delay=delay)
            metrics.RETRIED.labels(task).inc()
            logger.warning(
                "task %s failed (attempt %d of %d): %r; again in %.0f s",
                task,
                attempt,
                attempts,
                exception,
                delay,
            )
            return
        await self.publisher.publish_dead_letter(message, repr(exception))
        metrics.DEAD_LETTERED.labels(task).inc()
        logger.error(
            "task %s failed %d times, the last with %r: moved to the dead-letter queue",
            task,
            attempt,
            exception,
        )
