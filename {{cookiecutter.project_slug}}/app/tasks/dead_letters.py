"""Replaying dead letters: tasks that gave up go back to the workers, for a fresh set of
TASK_MAX_ATTEMPTS attempts, once their cause is fixed.

Each message is taken off the dead-letter queue, published to the task queue
(confirmed, app.tasks.publisher) and only then acknowledged: a replay that dies
half-way leaves every message either replayed or still dead-lettered, at worst both
(the task runs once anyway: app.tasks.once). `scripts/replay_dead_letters.py` runs it.
"""

import aio_pika
from taskiq import TaskiqMessage

from app.settings import Settings
from app.tasks.publisher import Publisher


async def replay_dead_letters(settings: Settings, limit: int) -> int:
    """Replay up to `limit` dead letters, oldest first; returns how many."""
    replayed = 0
    async with Publisher(settings) as publisher:
        connection = await aio_pika.connect(settings.broker_url)
        async with connection:
            channel = await connection.channel()
            queue = await channel.get_queue(publisher.topology.dead_letter_queue)
            while replayed < limit:
                message = await queue.get(no_ack=False, fail=False)
                if message is None:
                    break
                task = TaskiqMessage.model_validate_json(message.body)
                task.labels["attempt"] = 1
                await publisher.publish_task(task)
                await message.ack()
                replayed += 1
    return replayed
