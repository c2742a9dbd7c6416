"""The worker against the real RabbitMQ: retries then the dead-letter queue, counted
in its metrics; the request id on every log line of a task; no more tasks at once
than its pool serves; a second delivery does nothing; SIGTERM and start-up failures.
"""

import asyncio
import logging
import signal
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from taskiq import Context, TaskiqDepends

from app.db.engine import Engines
from app.db.outbox import enqueue
from app.db.session import Database
from app.request_id import RequestIdFilter, request_id_var
from app.settings import Settings
from app.tasks.broker import worker_capacity
from app.tasks.dead_letters import replay_dead_letters
from app.tasks.once import outbox_id, record_processed
from app.tasks.publisher import Publisher
from app.tasks.relay import Relay
from tests.tasks import (
    WorkerProcess,
    dead_letters,
    delete_queues,
    eventually,
    free_port,
    pending,
    queue_settings,
    worker_environment,
    worker_in_process,
)

logger = logging.getLogger(__name__)
METRICS_TOKEN = "test-metrics-token"  # noqa: S105
seen: list[tuple[str, str | None]] = []
running = 0
most_at_once = 0
broken = True


async def fails_until_fixed() -> None:
    if broken:
        raise RuntimeError("this task fails until it is fixed")
    logger.info("fixed")


async def logs_twice(context: Context = TaskiqDepends()) -> None:
    logger.info("first line of %s", context.message.task_id)
    await asyncio.sleep(0.01)
    logger.info("last line of %s", context.message.task_id)


async def done_once(context: Context = TaskiqDepends()) -> None:
    database: Database = context.state.database
    async with database.transaction() as connection:
        if await record_processed(connection, outbox_id(context)):
            seen.append((context.message.task_id, request_id_var.get()))


async def takes_a_while() -> None:
    global running, most_at_once
    running += 1
    most_at_once = max(most_at_once, running)
    await asyncio.sleep(0.2)
    running -= 1


@pytest.fixture
async def settings(test_settings: Settings) -> AsyncIterator[Settings]:
    settings = queue_settings(test_settings, task_max_attempts=3, metrics_token=METRICS_TOKEN)
    yield settings
    await delete_queues(settings)


@pytest.fixture
def database(committed: None, engines: Engines) -> Database:
    return Database(engines)


def _get(port: int, path: str, token: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError as error:  # not listening yet
        return 0, str(error)


async def _metric(settings: Settings, sample: str) -> bool:
    status, text = await asyncio.to_thread(
        _get, settings.worker_metrics_port, "/metrics", METRICS_TOKEN
    )
    return status == 200 and sample in text


async def test_a_failing_task_is_retried_dead_lettered_and_replayed(
    settings: Settings, database: Database, engine: AsyncEngine
) -> None:
    global broken
    broken = True
    async with database.transaction() as connection:
        task_id = str(await enqueue(connection, fails_until_fixed))
    labels = '{task="tests.test_worker:fails_until_fixed"}'
    async with worker_in_process(settings, [fails_until_fixed]):
        await eventually(lambda: _metric(settings, "tasks_dead_lettered_total" + labels))
        port = settings.worker_metrics_port
        _, text = await asyncio.to_thread(_get, port, "/metrics", METRICS_TOKEN)
        assert (await asyncio.to_thread(_get, port, "/metrics"))[0] == 401
        assert (await asyncio.to_thread(_get, port, "/metrics", "wrong"))[0] == 401
        assert (await asyncio.to_thread(_get, port, "/livez"))[0] == 200
        assert "tasks_failed_total" + labels + " 3.0" in text
        assert "tasks_retried_total" + labels + " 2.0" in text
        assert "tasks_dead_lettered_total" + labels + " 1.0" in text
        assert "tasks_succeeded_total" + labels not in text
        (letter,) = await dead_letters(settings, keep=True)
        assert letter.message_id == task_id
        assert letter.headers["attempt"] == 3
        assert "this task fails until it is fixed" in str(letter.headers["x-error"])
        broken = False  # the cause is fixed: replay it
        assert await replay_dead_letters(settings, limit=10) == 1
        await eventually(lambda: _metric(settings, "tasks_succeeded_total" + labels + " 1.0"))
    assert await dead_letters(settings) == []
    assert await pending(engine) == 0


async def test_every_log_line_of_a_task_carries_its_request_id(
    settings: Settings, database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.handler.addFilter(RequestIdFilter())
    caplog.set_level(logging.INFO)
    token = request_id_var.set("req-from-the-request")
    try:
        async with database.transaction() as connection:
            task_id = str(await enqueue(connection, logs_twice))
    finally:
        request_id_var.reset(token)
    async with worker_in_process(settings, [logs_twice]):

        async def logged() -> bool:
            return any("last line" in r.getMessage() for r in caplog.records)

        await eventually(logged)
    run = [r for r in caplog.records if task_id in r.getMessage()]
    assert len(run) >= 3  # taskiq's "Executing task ..." and the task's two lines
    assert {getattr(r, "request_id", None) for r in run} == {"req-from-the-request"}


async def test_a_task_delivered_twice_does_its_work_once(
    settings: Settings, database: Database
) -> None:
    seen.clear()
    async with database.transaction() as connection:
        task_id = str(await enqueue(connection, done_once))
    async with Publisher(settings) as publisher:
        assert await Relay(database, publisher, settings).relay_batch() == 1
        async with database.transaction() as connection:  # a relay that died before marking
            await connection.exec_driver_sql("UPDATE outbox SET sent_at = NULL")
        assert await Relay(database, publisher, settings).relay_batch() == 1
    async with worker_in_process(settings, [done_once]):
        await asyncio.sleep(1)
    assert seen == [(task_id, None)]


async def test_no_more_tasks_at_once_than_the_pool_serves(
    test_settings: Settings, database: Database
) -> None:
    settings = queue_settings(test_settings, worker_db_pool_size=2, worker_db_max_overflow=2)
    capacity = worker_capacity(settings)
    async with database.transaction() as connection:
        for _ in range(capacity * 3):
            await enqueue(connection, takes_a_while)
    try:
        async with worker_in_process(settings, [takes_a_while]):

            async def all_done() -> bool:
                return most_at_once > 0 and running == 0

            await eventually(all_done)
    finally:
        await delete_queues(settings)
    assert most_at_once == capacity


async def test_sigterm_stops_the_worker_cleanly(
    settings: Settings, test_settings: Settings, tmp_path: Path
) -> None:
    worker = WorkerProcess(
        worker_environment(settings, test_settings.database_url), tmp_path / "worker.log"
    )
    worker.start()
    try:

        async def serving() -> bool:
            status, _ = await asyncio.to_thread(_get, settings.worker_metrics_port, "/livez")
            return status == 200

        await eventually(serving)
        assert worker.process is not None
        worker.process.send_signal(signal.SIGTERM)
        assert await worker.wait() == 0
    finally:
        worker.kill()
    assert "worker stopped" in (tmp_path / "worker.log").read_text()


async def test_without_rabbitmq_the_worker_exits_at_once(
    test_settings: Settings, tmp_path: Path
) -> None:
    nowhere = f"amqp://guest:guest@127.0.0.1:{free_port()}/"
    settings = queue_settings(test_settings, broker_url=nowhere)
    worker = WorkerProcess(
        worker_environment(settings, test_settings.database_url), tmp_path / "worker.log"
    )
    worker.start()
    try:
        assert await worker.wait() == 1
    finally:
        worker.kill()
    assert "worker stopped" in (tmp_path / "worker.log").read_text()
