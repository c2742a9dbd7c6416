"""What the service declares on RabbitMQ, in one place, with the arguments that matter.

- exchange `<TASK_QUEUE_NAME>` (direct, durable): the relay publishes tasks to it.
- queue `<TASK_QUEUE_NAME>` (quorum: replicated, durable): the workers consume it.
  `x-delivery-limit` dead-letters a message whose worker died TASK_MAX_ATTEMPTS
  times while running it (a task that crashes its process would loop forever).
- queues `<TASK_QUEUE_NAME>.retry-N`, one per retry: a failed task waits there for
  its delay (per-message TTL), then goes back to the exchange. One queue per retry
  keeps equal delays in one queue, so none waits behind a longer one.
- queue `<TASK_QUEUE_NAME>.dead-letter`: tasks that gave up, kept until replayed or
  deleted (docs/operations.md#dead-letters).
Dead-lettering is at-least-once (RabbitMQ keeps a message until the target queue has
it), which needs `x-overflow: reject-publish`.
RabbitMQ refuses to declare an existing queue with other arguments: changing
TASK_MAX_ATTEMPTS later takes a policy (docs/operations.md#task-queue-settings).
Docs: https://www.rabbitmq.com/docs/quorum-queues#poison-message-handling
"""

from dataclasses import dataclass
from typing import Self

from aio_pika import ExchangeType
from aio_pika.abc import AbstractChannel
from pamqp.common import FieldTable

from app.settings import Settings

SAFE_DEAD_LETTERING: FieldTable = {
    "x-dead-letter-strategy": "at-least-once",
    "x-overflow": "reject-publish",
}


@dataclass(frozen=True)
class Topology:
    name: str
    max_attempts: int

    @property
    def exchange(self) -> str:
        return self.name

    @property
    def queue(self) -> str:
        return self.name

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.name}.dead-letter"

    def retry_queue(self, attempt: int) -> str:
        """Where a task that failed attempt `attempt` waits before the next."""
        return f"{self.name}.retry-{attempt}"

    @classmethod
    def of(cls, settings: Settings) -> Self:
        return cls(settings.task_queue_name, settings.task_max_attempts)

    async def declare(self, channel: AbstractChannel) -> None:
        quorum: FieldTable = {"x-queue-type": "quorum"}
        await channel.declare_queue(self.dead_letter_queue, durable=True, arguments=quorum)
        exchange = await channel.declare_exchange(self.exchange, ExchangeType.DIRECT, durable=True)
        queue = await channel.declare_queue(
            self.queue,
            durable=True,
            arguments={
                **quorum,
                **SAFE_DEAD_LETTERING,
                "x-delivery-limit": self.max_attempts,
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": self.dead_letter_queue,
            },
        )
        await queue.bind(exchange, routing_key=self.queue)
        for attempt in range(1, self.max_attempts):
            await channel.declare_queue(
                self.retry_queue(attempt),
                durable=True,
                arguments={
                    **quorum,
                    **SAFE_DEAD_LETTERING,
                    "x-dead-letter-exchange": self.exchange,
                    "x-dead-letter-routing-key": self.queue,
                },
            )
