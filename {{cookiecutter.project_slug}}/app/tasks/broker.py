{%- set db = cookiecutter.database -%}
"""The worker's side of RabbitMQ (taskiq's broker), its tasks and its database.

Every task of the service is listed in TASKS; the worker registers each under its
outbox name (app.db.outbox.task_name), the name the relay publishes. The broker
declares nothing: app.tasks.topology does, with the publisher, so the queues exist
before the first message.
Docs: https://taskiq-python.github.io/available-components/brokers.html
"""

from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from taskiq_aio_pika import AioPikaBroker, Exchange, Queue

from app import models  # noqa: F401 -- every model mapped before the first query
from app.db.outbox import task_name
from app.db.session import Database, job_database
from app.settings import Settings
{%- if cookiecutter.include_example_models == "yes" %}
from app.tasks.topology import Topology
from app.tasks.welcome_email import send_welcome_email
{%- else %}
from app.tasks.noop import noop
from app.tasks.topology import Topology
{%- endif %}

Task = Callable[..., Awaitable[Any]]
TASKS: tuple[Task, ...] = ({% if cookiecutter.include_example_models == "yes" %}send_welcome_email{% else %}noop{% endif %},)
# Connections the relay holds besides the tasks'{% if db == "postgresql" %}: its claims and marks, and its LISTEN{% else %}: its claims and marks{% endif %}.
{%- if db == "postgresql" %}
RELAY_CONNECTIONS = 2
{%- else %}
RELAY_CONNECTIONS = 1
{%- endif %}


def worker_capacity(settings: Settings) -> int:
    """How many tasks the worker runs at once: what its pool serves besides the relay
    (a task uses one connection at a time), so no task waits for a connection."""
    return settings.worker_db_pool_size + settings.worker_db_max_overflow - RELAY_CONNECTIONS


def worker_database(settings: Settings) -> AbstractAsyncContextManager[Database]:
    """A job's engines (app.db.session.job_database), sized by WORKER_DB_*."""
    sized = {
        "job_db_pool_size": settings.worker_db_pool_size,
        "job_db_max_overflow": settings.worker_db_max_overflow,
{%- if db != "sqlite" %}
        "job_db_pool_recycle": settings.worker_db_pool_recycle,
{%- endif %}
    }
    return job_database(settings.model_copy(update=sized))


def create_broker(settings: Settings, tasks: Sequence[Task] = TASKS) -> AioPikaBroker:
    """A broker that prefetches no more messages than the worker runs at once."""
    topology = Topology.of(settings)
    broker = AioPikaBroker(
        settings.broker_url,
        qos=worker_capacity(settings),
        exchange=Exchange(name=topology.exchange, declare=False),
        task_queues=[Queue(name=topology.queue, declare=False)],
        dead_letter_queue=Queue(name=topology.dead_letter_queue, declare=False),
    )
    for task in tasks:
        broker.register_task(task, task_name=task_name(task))
    return broker
