"""Helpers for the task-queue tests: queues of the test's own on the real RabbitMQ
(BROKER_URL), a worker in this process or in a child process, and a TCP proxy
that cuts the connection to RabbitMQ the way a network outage does.
"""

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aio_pika
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.outbox import OutboxMessage
from app.settings import Settings
from app.tasks.broker import TASKS, Task
from app.tasks.topology import Topology
from app.tasks.worker import run_worker

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def queue_settings(settings: Settings, **overrides: object) -> Settings:
    """`settings` with a task queue of this test's own and quick retries."""
    values: dict[str, object] = {
        "task_queue_name": f"test-{uuid.uuid4().hex[:12]}",
        "task_retry_delay_seconds": 0.05,
        "relay_poll_seconds": 0.05,
        "relay_publish_timeout_seconds": 2.0,
        "worker_metrics_port": free_port(),
        "worker_shutdown_seconds": 10.0,
        **overrides,
    }
    return settings.model_copy(update=values)


async def delete_queues(settings: Settings) -> None:
    """Remove what Topology declared for this test (a no-op for what is not there)."""
    topology = Topology.of(settings)
    connection = await aio_pika.connect(settings.broker_url)
    async with connection:
        channel = await connection.channel()
        names = [topology.queue, topology.dead_letter_queue]
        names += [topology.retry_queue(n) for n in range(1, topology.max_attempts)]
        for name in names:
            await channel.queue_delete(name)
        await channel.exchange_delete(topology.exchange)


async def dead_letters(
    settings: Settings, *, keep: bool = False
) -> list[aio_pika.abc.AbstractIncomingMessage]:
    """Everything in the dead-letter queue: taken off it, or `keep` it there."""
    connection = await aio_pika.connect(settings.broker_url)
    taken: list[aio_pika.abc.AbstractIncomingMessage] = []
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(Topology.of(settings).dead_letter_queue)
        while (message := await queue.get(no_ack=not keep, fail=False)) is not None:
            taken.append(message)
    return taken  # kept ones go back to the queue as the connection closes


async def pending(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        count = await connection.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.sent_at.is_(None))
        )
    return int(count or 0)


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float = 30.0) -> None:
    """Poll `check` until it returns True; TimeoutError after `seconds`."""
    async with asyncio.timeout(seconds):
        while True:
            if await check():
                return
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def worker_in_process(
    settings: Settings, tasks: Sequence[Task] = TASKS
) -> AsyncIterator[asyncio.Event]:
    """The worker and its relay in this event loop until the block ends; yields the
    event that stops it."""
    stop = asyncio.Event()
    running = asyncio.create_task(run_worker(settings, stop, tasks))
    try:
        yield stop
    finally:
        stop.set()
        await asyncio.wait_for(running, 30)


def worker_environment(settings: Settings, database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a child `python -m scripts.worker` with these settings."""
    names = (
        "broker_url",
        "task_queue_name",
        "task_max_attempts",
        "task_retry_delay_seconds",
        "relay_poll_seconds",
        "relay_publish_timeout_seconds",
        "relay_lease_seconds",
        "worker_metrics_port",
        "worker_shutdown_seconds",
        "worker_db_pool_size",
        "worker_db_max_overflow",
    )
    values = {name.upper(): str(getattr(settings, name)) for name in names}
    return {
        **os.environ,
        **values,
        "DATABASE_URL": database_url,
        "ENVIRONMENT": "test",
        "SECRET_KEY": settings.secret_key,
{%- if cookiecutter.auth == "jwt" %}
        "JWT_SECRET_KEY": settings.jwt_secret_key,
{%- endif %}
        "LOG_FORMAT": "json",
        **extra,
    }


@dataclass
class WorkerProcess:
    """`python -m scripts.worker` as a child process, its output in a file."""

    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self, *argv: str) -> None:
        command = argv or ("-m", "scripts.worker")
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(  # noqa: S603 -- this interpreter, fixed arguments
                [sys.executable, *command],
                cwd=PROJECT_ROOT,
                env=self.env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )

    async def wait(self, seconds: float = 30.0) -> int:
        assert self.process is not None
        async with asyncio.timeout(seconds):
            while True:
                if (code := self.process.poll()) is not None:
                    return code
                await asyncio.sleep(0.05)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


class TcpProxy:
    """Forwards 127.0.0.1:<port> to RabbitMQ; `cut()` drops every connection and
    refuses new ones, as a network outage would, until `restore()`."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()

    async def restore(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for pipe in list(self._pipes):
            pipe.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            target_reader, target_writer = await asyncio.open_connection(
                "127.0.0.1", self.target_port
            )
        except OSError:
            writer.close()
            return
        pipes = [
            asyncio.create_task(self._pipe(reader, target_writer)),
            asyncio.create_task(self._pipe(target_reader, writer)),
        ]
        self._pipes.update(pipes)
        for pipe in pipes:
            pipe.add_done_callback(self._pipes.discard)

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.transport.abort()
