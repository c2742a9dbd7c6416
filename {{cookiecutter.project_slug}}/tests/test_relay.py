{%- set db = cookiecutter.database -%}
{%- set examples = cookiecutter.include_example_models == "yes" -%}
"""The relay against the real RabbitMQ: what it publishes, when it marks a row sent,
and that relays running side by side publish each row once."""

import asyncio
import json
{%- if examples %}
import uuid
{%- endif %}
from collections.abc import AsyncIterator
from datetime import timedelta

import aio_pika
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.engine import Engines
from app.db.outbox import OutboxMessage, enqueue
from app.db.session import Database
from app.db.types import utcnow
from app.request_id import request_id_var
from app.settings import Settings
{%- if not examples %}
from app.tasks.noop import noop as TASK  # noqa: N812
{%- endif %}
from app.tasks.publisher import Publisher, PublishFailedError
from app.tasks.relay import Relay
from app.tasks.topology import Topology
{%- if examples %}
from app.tasks.welcome_email import send_welcome_email as TASK  # noqa: N812
{%- endif %}
from tests.tasks import delete_queues, pending, queue_settings
{% if examples %}
USER_ID = uuid.UUID(int=7)
PAYLOAD = {"user_id": str(USER_ID)}
{%- else %}
PAYLOAD = {"note": "hello"}
{%- endif %}


@pytest.fixture
async def settings(test_settings: Settings) -> AsyncIterator[Settings]:
    settings = queue_settings(test_settings, relay_batch_size=20)
    yield settings
    await delete_queues(settings)


@pytest.fixture
def database(committed: None, engines: Engines) -> Database:
    return Database(engines)


async def _enqueue(database: Database, count: int) -> list[str]:
    async with database.transaction() as connection:
        return [str(await enqueue(connection, TASK, {% if examples %}user_id=USER_ID{% else %}note="hello"{% endif %})) for _ in range(count)]


async def _take(settings: Settings, count: int) -> list[aio_pika.abc.AbstractIncomingMessage]:
    """`count` messages off the task queue, and whatever else arrives within 0.5 s."""
    connection = await aio_pika.connect(settings.broker_url)
    taken: list[aio_pika.abc.AbstractIncomingMessage] = []
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(Topology.of(settings).queue)
        async with asyncio.timeout(10):
            while len(taken) < count:
                message = await queue.get(no_ack=True, fail=False)
                if message is None:
                    await asyncio.sleep(0.02)
                    continue
                taken.append(message)
        await asyncio.sleep(0.5)
        while (message := await queue.get(no_ack=True, fail=False)) is not None:
            taken.append(message)
    return taken


async def test_rows_are_published_persistent_then_marked_sent(
    settings: Settings, database: Database, engine: AsyncEngine
) -> None:
    token = request_id_var.set("req-7")
    try:
        ids = await _enqueue(database, 3)
    finally:
        request_id_var.reset(token)
    async with Publisher(settings) as publisher:
        assert await Relay(database, publisher, settings).relay_batch() == 3
    messages = await _take(settings, 3)
    assert [m.message_id for m in messages] == ids  # oldest first
    for message in messages:
        assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        body = json.loads(message.body)
        assert body["task_id"] == message.message_id
        assert body["kwargs"] == PAYLOAD
        assert body["labels"]["request_id"] == "req-7"
        assert body["labels"]["attempt"] == 1
    assert await pending(engine) == 0


async def test_a_message_no_queue_takes_is_not_marked_sent(
    settings: Settings, database: Database, engine: AsyncEngine
) -> None:
    """RabbitMQ confirms a message that no queue took: `mandatory` makes it come back,
    and the row stays in the outbox, free for the next try."""
    await _enqueue(database, 2)
    async with Publisher(settings) as publisher:
        broker = await aio_pika.connect(settings.broker_url)
        async with broker:
            channel = await broker.channel()
            await channel.queue_delete(Topology.of(settings).queue)
        with pytest.raises(PublishFailedError):
            await Relay(database, publisher, settings).relay_batch()
    async with engine.connect() as connection:
        rows = (await connection.execute(select(OutboxMessage))).all()
    assert [(row.sent_at, row.claimed_until) for row in rows] == [(None, None)] * 2


async def test_a_leased_row_waits_for_its_lease_to_end(
    settings: Settings, database: Database
) -> None:
    await _enqueue(database, 1)
    async with database.transaction() as connection:
        await connection.execute(
            update(OutboxMessage).values(claimed_until=utcnow() + timedelta(minutes=1))
        )
    async with Publisher(settings) as publisher:
        relay = Relay(database, publisher, settings)
        assert await relay.relay_batch() == 0  # another relay holds it
        async with database.transaction() as connection:
            await connection.execute(
                update(OutboxMessage).values(claimed_until=utcnow() - timedelta(seconds=1))
            )
        assert await relay.relay_batch() == 1  # that relay died: its lease ended


async def test_relays_side_by_side_publish_each_row_once(
    settings: Settings, database: Database, engine: AsyncEngine
) -> None:
    ids = await _enqueue(database, 200)

    async def relay_all(publisher: Publisher) -> None:
        relay = Relay(database, publisher, settings)
        while await relay.relay_batch():
            pass

    async with Publisher(settings) as first, Publisher(settings) as second:
        await asyncio.gather(relay_all(first), relay_all(second), relay_all(first))
    messages = await _take(settings, 200)
    assert sorted(m.message_id or "" for m in messages) == sorted(ids)
    assert await pending(engine) == 0
{%- if db == "postgresql" %}


async def test_a_commit_wakes_the_relay_before_its_next_poll(
    settings: Settings, database: Database
) -> None:
    slow = settings.model_copy(update={"relay_poll_seconds": 30.0})
    stop = asyncio.Event()
    async with Publisher(slow) as publisher:
        relay = Relay(database, publisher, slow)
        running = asyncio.create_task(relay.run(stop))
        try:
            await asyncio.sleep(1)  # it looked once, found nothing, and LISTENs
            await _enqueue(database, 1)
            async with asyncio.timeout(5):  # well before the 30 s poll
                assert len(await _take(slow, 1)) == 1
        finally:
            stop.set()
            relay.wake.set()
            await running
{%- endif %}
