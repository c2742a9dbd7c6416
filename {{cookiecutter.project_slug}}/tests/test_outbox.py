{%- set db = cookiecutter.database -%}
{%- set examples = cookiecutter.include_example_models == "yes" -%}
"""The outbox: a task exists exactly when the transaction that enqueued it commits;
a task's work is recorded once; the purge removes what is no longer needed."""

import asyncio
import os
import re
import sys
import uuid
from datetime import timedelta

import pytest
from httpx import AsyncClient
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from app.db.engine import Engines
from app.db.outbox import NotInATransactionError, OutboxMessage, ProcessedTask, enqueue, task_name
from app.db.session import Database, create_session_factory
from app.db.types import utcnow
from app.request_id import request_id_var
from app.settings import Settings
{%- if examples %}
from app.tasks.broker import TASKS
{%- else %}
from app.tasks.noop import noop
{%- endif %}
from app.tasks.once import is_processed, record_processed
from app.tasks.purge import purge_outbox
{%- if examples %}
from app.tasks.welcome_email import send_welcome_email
from tests.helpers import commits_fail
{%- endif %}
from tests.tasks import PROJECT_ROOT
{% if examples %}
TASK = send_welcome_email
USER_ID = uuid.UUID(int=7)
PAYLOAD = {"user_id": str(USER_ID)}  # as JSON stores it
{%- else %}
TASK = noop
PAYLOAD = {"note": "hello"}
{%- endif %}


async def _enqueue(target: AsyncConnection | AsyncSession) -> uuid.UUID:
    return await enqueue(target, TASK, {% if examples %}user_id=USER_ID{% else %}note="hello"{% endif %})


async def _outbox_rows(connection: AsyncConnection) -> int:
    return int(await connection.scalar(select(func.count()).select_from(OutboxMessage)) or 0)


async def test_enqueue_writes_a_row_in_the_callers_transaction(
    connection: AsyncConnection,
) -> None:
    token = request_id_var.set("req-42")
    try:
        message_id = await _enqueue(connection)
    finally:
        request_id_var.reset(token)
    row = (
        await connection.execute(select(OutboxMessage).where(OutboxMessage.id == message_id))
    ).one()
    assert row.task == task_name(TASK)
    assert row.payload == PAYLOAD
    assert row.request_id == "req-42"
    assert row.sent_at is None
    assert row.claimed_until is None


async def test_enqueue_through_a_write_session(connection: AsyncConnection) -> None:
    factory = create_session_factory(connection, join_transaction_mode="create_savepoint")
    async with factory() as session, session.begin():
        await _enqueue(session)
    assert await _outbox_rows(connection) == 1


async def test_enqueue_takes_keyword_arguments_only(connection: AsyncConnection) -> None:
    with pytest.raises(TypeError, match="keyword only"):
        await enqueue(connection, TASK, *PAYLOAD.values())  # type: ignore[arg-type]


async def test_a_rolled_back_transaction_enqueues_nothing(
    committed: None, engines: Engines, engine: AsyncEngine
) -> None:
    database = Database(engines)

    async def failed_request() -> None:
        async with database.transaction() as connection:
            await _enqueue(connection)
            raise RuntimeError("the request failed")

    with pytest.raises(RuntimeError, match="the request failed"):
        await failed_request()
    async with database.transaction() as connection:
        await _enqueue(connection)
    async with engine.connect() as connection:
        assert await _outbox_rows(connection) == 1


async def test_a_connection_outside_a_transaction_is_refused(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        with pytest.raises(NotInATransactionError, match="write session or a transaction"):
            await _enqueue(connection)
{%- if db == "postgresql" %}


async def test_an_autocommit_connection_is_refused(engines: Engines) -> None:
    """On the primary's own engine, in autocommit for reads, `begin()` opens no
    transaction: each statement commits at once, so a task enqueued there would
    outlive a failed request."""
    async with engines.pools["primary"].begin() as connection:
        with pytest.raises(NotInATransactionError):
            await _enqueue(connection)
        assert await _outbox_rows(connection) == 0
{%- endif %}
{%- if examples %}


async def test_a_failed_request_enqueues_no_email(
    live_client: AsyncClient, engine: AsyncEngine
) -> None:
    first = await live_client.post(
        "/api/v1/users", json={"email": "ada@example.com", "full_name": "Ada"}
    )
    assert first.status_code == 201
    taken = await live_client.post(
        "/api/v1/users", json={"email": "ada@example.com", "full_name": "Ada again"}
    )
    assert taken.status_code == 409
    async with engine.connect() as connection:
        rows = (await connection.execute(select(OutboxMessage.payload))).scalars().all()
    assert rows == [{"user_id": first.json()["id"]}]  # the first user's only


async def test_a_failed_commit_enqueues_no_email(
    live_client: AsyncClient, engine: AsyncEngine
) -> None:
    with commits_fail():
        response = await live_client.post(
            "/api/v1/users", json={"email": "bob@example.com", "full_name": "Bob"}
        )
    assert response.status_code >= 500
    async with engine.connect() as connection:
        assert await _outbox_rows(connection) == 0


def test_the_welcome_email_is_a_registered_task() -> None:
    assert send_welcome_email in TASKS
{%- if cookiecutter.auth == "jwt" %}


async def test_registering_enqueues_one_welcome_email(
    auth_client: AsyncClient, connection: AsyncConnection
) -> None:
    account = {"email": "eve@example.com", "full_name": "Eve", "password": "a long passphrase"}
    created = await auth_client.post("/api/v1/auth/register", json=account)
    assert created.status_code == 201, created.text
    taken = await auth_client.post("/api/v1/auth/register", json=account)
    assert taken.status_code == 409
    rows = (await connection.execute(select(OutboxMessage.payload))).scalars().all()
    assert rows == [{"user_id": created.json()["id"]}]
{%- endif %}
{%- endif %}


async def test_metrics_show_the_outbox_backlog(
    live_client: AsyncClient, engine: AsyncEngine
) -> None:
    """Rows not yet published, and the age of the oldest: what tells that relays are
    missing or cannot reach RabbitMQ."""
    async with engine.begin() as connection:
        await _enqueue(connection)
        oldest = await _enqueue(connection)
        sent = await _enqueue(connection)
        five_minutes_ago = utcnow() - timedelta(minutes=5)
        await connection.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == oldest)
            .values(created_at=five_minutes_ago)
        )
        await connection.execute(
            update(OutboxMessage).where(OutboxMessage.id == sent).values(sent_at=utcnow())
        )
    text = (await live_client.get("/metrics")).text
    assert re.search(r"^outbox_pending 2\.0$", text, re.MULTILINE), text
    age = re.search(r"^outbox_oldest_pending_age_seconds (\S+)$", text, re.MULTILINE)
    assert age is not None
    assert 300 <= float(age.group(1)) < 360


async def test_a_task_is_recorded_once(connection: AsyncConnection) -> None:
    task_id = uuid.uuid4()
    assert not await is_processed(connection, task_id)
    assert await record_processed(connection, task_id)
    assert await is_processed(connection, task_id)
    assert not await record_processed(connection, task_id)
{%- if db != "sqlite" %}


async def test_two_deliveries_at_once_record_the_task_once(
    committed: None, engine: AsyncEngine
) -> None:
    """The second waits for the first's commit on the primary key, then sees it."""
    task_id = uuid.uuid4()

    async def deliver() -> bool:
        async with engine.begin() as connection:
            recorded = await record_processed(connection, task_id)
            await asyncio.sleep(0.2)  # the task's work, inside the same transaction
            return recorded

    assert sorted(await asyncio.gather(deliver(), deliver())) == [False, True]
{%- endif %}


async def test_purge_removes_old_sent_rows_and_processed_ids_only(
    committed: None, engines: Engines, engine: AsyncEngine
) -> None:
    database = Database(engines)
    old, now = utcnow() - timedelta(days=40), utcnow()
    async with database.transaction() as connection:
        ids = [await _enqueue(connection) for _ in range(5)]
        await connection.execute(
            update(OutboxMessage).where(OutboxMessage.id.in_(ids[:3])).values(sent_at=old)
        )
        await connection.execute(
            update(OutboxMessage).where(OutboxMessage.id == ids[3]).values(sent_at=now)
        )
        for task_id, when in ((ids[0], old), (ids[3], now)):
            await connection.execute(
                insert(ProcessedTask).values(outbox_id=task_id, processed_at=when)
            )
    purged = await purge_outbox(database, utcnow() - timedelta(days=30), batch_size=2)
    assert (purged.sent, purged.processed) == (3, 1)
    async with engine.connect() as connection:
        left = set((await connection.execute(select(OutboxMessage.id))).scalars())
        done = set((await connection.execute(select(ProcessedTask.outbox_id))).scalars())
    assert left == {ids[3], ids[4]}  # sent recently, and not sent at all
    assert done == {ids[3]}


async def test_the_purge_job_purges_the_outbox(
    committed: None, engines: Engines, engine: AsyncEngine, test_settings: Settings
) -> None:
    database = Database(engines)
    async with database.transaction() as connection:
        sent, waiting = await _enqueue(connection), await _enqueue(connection)
        await connection.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == sent)
            .values(sent_at=utcnow() - timedelta(days=40))
        )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "scripts.{% if cookiecutter.__users == "yes" %}purge_deleted{% else %}purge_outbox{% endif %}",
        "--older-than-days",
        "30",
        cwd=PROJECT_ROOT,
        env={**os.environ, "DATABASE_URL": test_settings.database_url},
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate()
    assert process.returncode == 0, out
    assert "outbox: 1 sent rows, 0 processed ids purged" in out.decode()
    async with engine.connect() as connection:
        assert set((await connection.execute(select(OutboxMessage.id))).scalars()) == {waiting}
