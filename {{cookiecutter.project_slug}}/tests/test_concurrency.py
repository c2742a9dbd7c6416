{%- set main = "database" if cookiecutter.database == "sqlite" else "primary" -%}
"""Concurrency with real commits: no lost, duplicated or phantom writes, and a slow
reader that holds up nobody."""

import asyncio
import contextlib
import socket
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import event, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.engine import Engines
from app.db.session import create_session_factory
from app.main import create_app
from app.posts.models import Post
from app.settings import Settings
from app.users.models import Role, User
from app.users.repository import get_or_create_role
from tests.helpers import running_server

USERS = "/api/v1/users"
# Enough NDJSON (about 700 KB) to fill every buffer between the export and a client
# that stops reading (tests.helpers.running_server keeps the server's small), so the
# export stays open, mid-stream, in its read transaction.
EXPORT_ROWS = 5_000


async def _count_users(engine: AsyncEngine, email: str) -> int:
    async with engine.connect() as conn:
        count = await conn.scalar(
            select(func.count()).select_from(User.__table__).where(User.email == email)
        )
    return int(count or 0)


async def test_racing_duplicates_make_one_user_and_409s(
    live_client: AsyncClient, engine: AsyncEngine
) -> None:
    body = {"email": "race@example.com", "full_name": "Racer"}
    responses = await asyncio.gather(*(live_client.post(USERS, json=body) for _ in range(12)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * 11, [r.text for r in responses if r.status_code >= 500]
    assert await _count_users(engine, "race@example.com") == 1


async def test_concurrent_patches_of_one_version_cannot_both_win(
    live_client: AsyncClient,
) -> None:
    created = await live_client.post(USERS, json={"email": "lu@example.com", "full_name": "A"})
    user = created.json()
    url = f"{USERS}/{user['id']}"

    async def patch(name: str) -> Any:
        return await live_client.patch(url, json={"full_name": name, "version": user["version"]})

    first, second = await asyncio.gather(patch("Writer one"), patch("Writer two"))
    assert sorted([first.status_code, second.status_code]) == [200, 409]
    winner = first if first.status_code == 200 else second
    loser = second if winner is first else first
    assert "read it again and retry" in loser.json()["detail"]
    stored = (await live_client.get(url)).json()
    assert stored["full_name"] == winner.json()["full_name"]
    assert stored["version"] == user["version"] + 1


async def test_every_201_was_committed(live_client: AsyncClient, engine: AsyncEngine) -> None:
    emails = [f"user{i % 15}@example.com" for i in range(40)]  # deliberate duplicates
    responses = await asyncio.gather(
        *(live_client.post(USERS, json={"email": e, "full_name": "N"}) for e in emails)
    )
    assert {r.status_code for r in responses} <= {201, 409}
    created = {r.json()["id"] for r in responses if r.status_code == 201}
    assert len(created) == 15
    async with engine.connect() as conn:
        stored = set((await conn.scalars(select(User.__table__.c.id))).all())
    assert {str(i) for i in stored} == created


async def test_concurrent_posts_are_each_counted(live_client: AsyncClient) -> None:
    """The author's post_count is one atomic UPDATE in each post's transaction."""
    created = await live_client.post(USERS, json={"email": "busy@x.com", "full_name": "B"})
    author = created.json()["id"]
    posts = f"{USERS}/{author}/posts"
    responses = await asyncio.gather(
        *(live_client.post(posts, json={"title": f"t{i}", "body": "."}) for i in range(20)),
        live_client.post(f"{posts}/bulk", json={"posts": [{"title": "b", "body": "."}] * 30}),
    )
    assert [r.status_code for r in responses] == [201] * 21
    assert (await live_client.get(f"{USERS}/{author}")).json()["post_count"] == 50


async def test_concurrent_first_use_of_a_role_creates_it_once(
    live_client: AsyncClient, engine: AsyncEngine
) -> None:
    """get_or_create_role under a real race: the savepoint absorbs the losers' INSERT."""
    users = []
    for i in range(6):
        created = await live_client.post(USERS, json={"email": f"r{i}@x.com", "full_name": "R"})
        users.append(created.json())
    responses = await asyncio.gather(
        *(live_client.post(f"{USERS}/{u['id']}/roles", json={"name": "reviewer"}) for u in users)
    )
    assert [r.status_code for r in responses] == [200] * len(users)
    async with engine.connect() as conn:
        roles = await conn.scalar(select(func.count()).select_from(Role.__table__))
    assert roles == 1


async def test_get_or_create_role_takes_the_row_a_concurrent_writer_committed(
    committed: None, engines: Engines
) -> None:
    """Our SELECT misses the role, another transaction inserts and commits it while
    our INSERT waits on the unique index: the savepoint takes our INSERT back and we
    read theirs, and the request goes on."""
    factory = create_session_factory(engines.writer)
    async with factory() as theirs, factory() as ours:
        await theirs.begin()
        theirs.add(Role(name="auditor"))
        await theirs.flush()  # inserted, not committed: the index entry is theirs
        await ours.begin()
        mine = asyncio.create_task(get_or_create_role(ours, "auditor"))
        await asyncio.sleep(0.3)  # our SELECT has seen nothing; our INSERT waits
        await theirs.commit()
        role = await asyncio.wait_for(mine, timeout=10)
        await ours.commit()
    async with engines.writer.connect() as conn:
        stored = (await conn.execute(select(Role.__table__.c.id, Role.__table__.c.name))).all()
    assert [(row.id, row.name) for row in stored] == [(role.id, "auditor")]


async def _read_http_head(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


async def _read_chunked_body(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size = int((await reader.readuntil(b"\r\n")).strip(), 16)
        if size == 0:
            return bytes(body)
        body += await reader.readexactly(size)
        await reader.readexactly(2)


@contextlib.asynccontextmanager
async def stalled_export(
    host: str, port: int
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """A client that reads the head of the export, then nothing: a tiny receive
    window, so the server's sends block with the export mid-stream."""
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.setblocking(False)
    await asyncio.get_running_loop().sock_connect(slow, (host, port))
    reader, writer = await asyncio.open_connection(sock=slow, limit=4096)
    try:
        writer.write(b"GET /api/v1/posts/export HTTP/1.1\r\nHost: test\r\n\r\n")
        assert b" 200 " in (await _read_http_head(reader)).split(b"\r\n")[0]
        yield reader, writer
    finally:
        writer.close()


async def _rest_of_the_body(reader: asyncio.StreamReader) -> bytes:
    """Whatever the server sends until it closes the connection."""
    return await asyncio.wait_for(reader.read(), timeout=30)


@pytest.fixture
async def author_with_many_posts(committed: None, engine: AsyncEngine) -> uuid.UUID:
    author_id = uuid.uuid4()
    async with engine.begin() as conn:
        await conn.execute(insert(User), [{"id": author_id, "email": "x@x.io", "full_name": "X"}])
        await conn.execute(
            insert(Post),
            [
                {"author_id": author_id, "title": f"Post {i}", "body": "."}
                for i in range(EXPORT_ROWS)
            ],
        )
    return author_id


async def _each_answers_within_a_second(host: str, port: int, author_id: uuid.UUID) -> None:
    requests = [
        ("GET", "/readyz", None),
        ("GET", USERS, None),
        ("POST", USERS, {"email": "meanwhile@example.com", "full_name": "M"}),
        ("POST", f"{USERS}/{author_id}/posts", {"title": "Meanwhile", "body": "."}),
    ]
    async with AsyncClient(base_url=f"http://{host}:{port}", timeout=5) as client:
        for method, path, body in requests:
            started = time.monotonic()
            response = await client.request(method, path, json=body)
            assert response.status_code in (200, 201), (path, response.text)
            assert time.monotonic() - started < 1, f"{method} {path} waited for the export"


async def test_a_slow_export_blocks_neither_reads_nor_writes(
    author_with_many_posts: uuid.UUID, test_settings: Settings
) -> None:
    """Every request pool connection stays free: the export has a pool of its own."""
    settings = test_settings.model_copy(update={"log_requests": False, "db_pool_size": 1})
    app = create_app(settings)
    async with running_server(app) as (host, port), stalled_export(host, port) as (reader, _):
        await asyncio.sleep(0.5)
        streams = app.state.engines.pools["{{ main }}.streams"].pool
        assert streams.checkedout() == 1, "the export should still hold its connection"
        await _each_answers_within_a_second(host, port, author_with_many_posts)
        assert streams.checkedout() == 1, "the export finished early: the test proved nothing"
        exported = (await _read_chunked_body(reader)).splitlines()
    # One snapshot: every post from before the export, not the one written meanwhile.
    assert len(exported) == EXPORT_ROWS
    assert b"Meanwhile" not in b"".join(exported)


@pytest.mark.usefixtures("author_with_many_posts")
async def test_one_export_too_many_is_503_at_once(test_settings: Settings) -> None:
    settings = test_settings.model_copy(
        update={"log_requests": False, "export_max_concurrent": 1, "db_pool_size": 1}
    )
    async with (
        running_server(create_app(settings)) as (host, port),
        stalled_export(host, port),
        AsyncClient(base_url=f"http://{host}:{port}", timeout=5) as client,
    ):
        started = time.monotonic()
        refused = await client.get("/api/v1/posts/export")
        elapsed = time.monotonic() - started
        listed = await client.get(USERS)
    assert refused.status_code == 503
    assert refused.headers["retry-after"]
    assert "EXPORT_MAX_CONCURRENT" in refused.json()["detail"]
    assert elapsed < 0.5
    assert listed.status_code == 200


@pytest.mark.usefixtures("author_with_many_posts")
async def test_a_reader_that_stops_reading_is_dropped(test_settings: Settings) -> None:
    """After EXPORT_IDLE_SECONDS its connection is discarded (rows may be on their
    way) and its place given back; the client gets a body without its end."""
    settings = test_settings.model_copy(
        update={"log_requests": False, "export_max_concurrent": 1, "export_idle_seconds": 0.5}
    )
    app = create_app(settings)
    async with running_server(app) as (host, port):
        streams = app.state.engines.pools["{{ main }}.streams"]
        invalidated: list[object] = []
        event.listen(streams.sync_engine.pool, "invalidate", lambda *a: invalidated.append(a))
        async with stalled_export(host, port) as (reader, _):
            deadline = time.monotonic() + 5
            while streams.pool.checkedout():
                assert time.monotonic() < deadline, "the stalled export kept its connection"
                await asyncio.sleep(0.1)
            dropped_after = time.monotonic() - deadline + 5
            rest = await _rest_of_the_body(reader)
        async with AsyncClient(base_url=f"http://{host}:{port}", timeout=30) as client:
            again = await client.get("/api/v1/posts/export")
    assert dropped_after < 0.5 + 1.5
    assert len(invalidated) == 1
    assert not rest.endswith(b"0\r\n\r\n"), "a cut stream must not look complete"
    assert again.status_code == 200
    assert len(again.text.splitlines()) == EXPORT_ROWS


@pytest.mark.usefixtures("author_with_many_posts")
async def test_no_export_outlasts_export_max_seconds(test_settings: Settings) -> None:
    """A client that takes a little now and then is never idle, and is cut all the same."""
    settings = test_settings.model_copy(
        update={"log_requests": False, "export_idle_seconds": 0.5, "export_max_seconds": 1.0}
    )
    app = create_app(settings)
    async with running_server(app) as (host, port), stalled_export(host, port) as (reader, _):
        streams = app.state.engines.pools["{{ main }}.streams"].pool
        started, received = time.monotonic(), b""
        while streams.checkedout():
            assert time.monotonic() - started < 5, "the export outlasted EXPORT_MAX_SECONDS"
            received += await asyncio.wait_for(reader.read(8192), timeout=5)
            await asyncio.sleep(0.02)
        cut_after = time.monotonic() - started
        received += await _rest_of_the_body(reader)
    assert 1.0 - 0.2 <= cut_after < 1.0 + 1
    assert not received.endswith(b"0\r\n\r\n"), "a cut stream must not look complete"
