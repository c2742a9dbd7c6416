"""The example task (app.tasks.noop): enqueued, relayed and run by a worker in this
process, its work recorded once though RabbitMQ delivers it twice."""

import logging
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.engine import Engines
from app.db.outbox import OutboxMessage, ProcessedTask, enqueue
from app.db.session import Database
from app.settings import Settings
from app.tasks.broker import TASKS
from app.tasks.noop import noop
from app.tasks.publisher import Publisher
from app.tasks.relay import Relay
from tests.tasks import delete_queues, eventually, queue_settings, worker_in_process


@pytest.fixture
async def settings(test_settings: Settings) -> AsyncIterator[Settings]:
    settings = queue_settings(test_settings)
    yield settings
    await delete_queues(settings)


def test_the_noop_task_is_registered() -> None:
    assert noop in TASKS


async def test_a_noop_task_runs_once_though_delivered_twice(
    committed: None,
    engines: Engines,
    engine: AsyncEngine,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="app.tasks.noop")
    database = Database(engines)
    async with database.transaction() as connection:
        task_id = await enqueue(connection, noop, note="hello")
    async with Publisher(settings) as publisher:
        relay = Relay(database, publisher, settings)
        assert await relay.relay_batch() == 1
        async with database.transaction() as connection:  # as if the relay died before marking
            await connection.execute(update(OutboxMessage).values(sent_at=None))
        assert await relay.relay_batch() == 1

    async def recorded() -> bool:
        async with engine.connect() as connection:
            done = await connection.scalar(select(func.count()).select_from(ProcessedTask))
        return done == 1

    async def both_delivered() -> bool:
        return len([r for r in caplog.records if r.name == "app.tasks.noop"]) == 2

    async with worker_in_process(settings):
        await eventually(recorded)
        await eventually(both_delivered)
    lines = [r.getMessage() for r in caplog.records if r.name == "app.tasks.noop"]
    assert sorted(lines) == [f"task {task_id}: already done", f"task {task_id}: done (hello)"]
    async with engine.connect() as connection:
        ids = (await connection.execute(select(ProcessedTask.outbox_id))).scalars().all()
    assert ids == [task_id]
