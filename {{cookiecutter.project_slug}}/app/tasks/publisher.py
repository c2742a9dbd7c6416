"""Publishing to RabbitMQ so that a confirmed message is a stored message.

The channel has publisher confirms (RabbitMQ answers each message once it has it on
disk in every queue it went to) and raises for returned messages: every message is
`mandatory`, so one that no queue took comes back instead of being confirmed and
dropped. Messages are persistent. A publish that is not confirmed within
RELAY_PUBLISH_TIMEOUT_SECONDS fails, so a broker that hangs cannot hang its caller.
The connection reconnects by itself (aio-pika's robust connection).
Docs: https://www.rabbitmq.com/docs/confirms#publisher-confirms
"""

from types import TracebackType
from typing import Any, Self

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractRobustConnection
from pamqp.commands import Basic
from taskiq import TaskiqMessage

from app.settings import Settings
from app.tasks.topology import Topology

MAX_ERROR_LENGTH = 2000


class PublishFailedError(Exception):
    """RabbitMQ did not confirm the message: it may or may not have it."""


class Publisher:
    """One connection and one confirming channel, opened with `async with`."""

    def __init__(self, settings: Settings) -> None:
        self.topology = Topology.of(settings)
        self._url = settings.broker_url
        self._timeout = settings.relay_publish_timeout_seconds
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None

    async def __aenter__(self) -> Self:
        self._connection = await aio_pika.connect_robust(
            self._url, timeout=self._timeout, client_properties={"connection_name": "publisher"}
        )
        self._channel = await self._connection.channel(
            publisher_confirms=True, on_return_raises=True
        )
        await self.topology.declare(self._channel)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._connection is not None:
            await self._connection.close()

    async def publish_task(self, message: TaskiqMessage) -> None:
        """A task, to the workers' queue."""
        await self._publish(message, self.topology.queue, to_exchange=True)

    async def publish_retry(self, message: TaskiqMessage, after: int, delay: float) -> None:
        """A task again, after `delay` seconds in the retry queue of attempt `after`."""
        await self._publish(
            message, self.topology.retry_queue(after), to_exchange=False, expiration=delay
        )

    async def publish_dead_letter(self, message: TaskiqMessage, reason: str) -> None:
        """A task that gave up, with why, to the dead-letter queue."""
        await self._publish(
            message, self.topology.dead_letter_queue, to_exchange=False, error=reason
        )

    async def _publish(
        self,
        task: TaskiqMessage,
        routing_key: str,
        *,
        to_exchange: bool,
        expiration: float | None = None,
        error: str | None = None,
    ) -> None:
        """Publish and wait for the confirm; raises PublishFailedError without one.

        `to_exchange`: through the task exchange; else through the default exchange,
        straight to the queue named `routing_key`. The body is taskiq's JSON message,
        and the headers are those taskiq's RabbitMQ broker writes.
        """
        if self._channel is None:
            raise RuntimeError("use the Publisher in `async with`")
        headers: dict[str, Any] = {
            "task_id": task.task_id,
            "task_name": task.task_name,
            **{k: v for k, v in task.labels.items() if v is not None},
        }
        if error is not None:
            headers["x-error"] = error[:MAX_ERROR_LENGTH]
        message = aio_pika.Message(
            task.model_dump_json().encode(),
            headers=headers,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=task.task_id,
            expiration=expiration,
        )
        try:
            exchange = (
                await self._channel.get_exchange(self.topology.exchange, ensure=False)
                if to_exchange
                else self._channel.default_exchange
            )
            confirm = await exchange.publish(
                message, routing_key, mandatory=True, timeout=self._timeout
            )
        # A returned message, a closed channel, a lost connection, no confirm in time.
        except (aiormq.exceptions.AMQPError, ConnectionError, RuntimeError, TimeoutError) as exc:
            raise PublishFailedError(f"{routing_key}: {exc!r}") from exc
        if not isinstance(confirm, Basic.Ack):
            raise PublishFailedError(f"{routing_key}: RabbitMQ answered {confirm!r}")
