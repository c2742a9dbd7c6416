{%- set db = cookiecutter.database -%}
{%- set examples = cookiecutter.include_example_models == "yes" -%}
{%- set auth = cookiecutter.auth == "jwt" -%}
"""The purge job, for real: `python -m scripts.purge_deleted` deletes the users
soft-deleted long enough ago, with their {% if examples %}posts and {% endif %}role links, in batches of one
transaction each; interrupted (a signal, or killed outright) it leaves whole batches
only, and run again it finishes the work.{% if auth %} It also removes the refresh tokens
that expired or were revoked, and throttle counts too old to matter.{% endif %}"""

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

{% if auth -%}
from app.auth.models import RefreshToken, ThrottleWindow
{% endif -%}
from app.db.session import job_database
from app.db.types import utcnow
{%- if examples %}
from app.posts.models import Post
{%- endif %}
from app.settings import Settings
from app.users.models import Role, User, user_roles
from app.users.purge import Purged, purge_deleted
from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.usefixtures("committed")

{% if examples -%}
POSTS_EACH = 2
{% endif -%}
LINE_TIMEOUT = 30


async def _add_users(
    engine: AsyncEngine, count: int, *, deleted_days_ago: int | None
) -> list[uuid.UUID]:
    """`count` users{% if examples %} with POSTS_EACH posts each{% endif %}, deleted that many days ago (or live)."""
    now = utcnow()
    deleted_at = None if deleted_days_ago is None else now - timedelta(days=deleted_days_ago)
    ids = [uuid.uuid4() for _ in range(count)]
    users = [
        {
            "id": user_id,
            "email": f"{user_id.hex}@example.com",
            "full_name": "P",
            "is_deleted": deleted_at is not None,
            "deleted_at": deleted_at,
        }
        for user_id in ids
    ]
{%- if examples %}
    posts = [
        {"author_id": user_id, "title": title, "body": "."}
        for user_id in ids
        for title in ("first", "second")[:POSTS_EACH]
    ]
{%- endif %}
    async with engine.begin() as connection:
        await connection.execute(insert(User), users)
{%- if examples %}
        await connection.execute(insert(Post), posts)
{%- endif %}
    return ids


{% if examples -%}
async def _remaining(engine: AsyncEngine, ids: list[uuid.UUID]) -> tuple[int, int]:
    """(users, posts) of `ids` still in the database."""
    async with engine.connect() as connection:
        users = await connection.scalar(select(func.count()).where(User.id.in_(ids)))
        posts = await connection.scalar(select(func.count()).where(Post.author_id.in_(ids)))
    return int(users or 0), int(posts or 0)
{%- else -%}
async def _remaining(engine: AsyncEngine, ids: list[uuid.UUID]) -> int:
    """How many of the users `ids` are still in the database."""
    async with engine.connect() as connection:
        return int(await connection.scalar(select(func.count()).where(User.id.in_(ids))) or 0)
{%- endif %}


async def _link_role(engine: AsyncEngine, name: str, user_ids: list[uuid.UUID]) -> None:
    role_id = uuid.uuid4()
    async with engine.begin() as connection:
        await connection.execute(insert(Role), [{"id": role_id, "name": name}])
        await connection.execute(
            insert(user_roles), [{"user_id": u, "role_id": role_id} for u in user_ids]
        )


async def test_purges_only_users_deleted_long_enough_with_their_{% if examples %}posts_and_{% endif %}roles(
    engine: AsyncEngine, test_settings: Settings
) -> None:
    old = await _add_users(engine, 3, deleted_days_ago=40)
    recent = await _add_users(engine, 2, deleted_days_ago=10)
    live = await _add_users(engine, 2, deleted_days_ago=None)
    await _link_role(engine, "auditor", old + live)

    batches: list[Purged] = []
    async with job_database(test_settings) as database:
        total = await purge_deleted(
            database, utcnow() - timedelta(days=30), batch_size=2, on_batch=batches.append
        )

{%- if examples %}
    assert batches == [Purged(users=2, posts=4), Purged(users=1, posts=2)]
    assert total == Purged(users=3, posts=6)
    assert await _remaining(engine, old) == (0, 0)
    assert await _remaining(engine, recent) == (2, 2 * POSTS_EACH)
    assert await _remaining(engine, live) == (2, 2 * POSTS_EACH)
{%- else %}
    assert batches == [Purged(users=2), Purged(users=1)]
    assert total == Purged(users=3)
    assert await _remaining(engine, old) == 0
    assert await _remaining(engine, recent) == 2
    assert await _remaining(engine, live) == 2
{%- endif %}
    async with engine.connect() as connection:
        links = (await connection.execute(select(user_roles.c.user_id))).scalars().all()
        assert set(links) == set(live)
        assert await connection.scalar(select(func.count()).select_from(Role)) == 1


def _environment(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "ENVIRONMENT": "test",
        "SECRET_KEY": settings.secret_key,
{%- if auth %}
        "JWT_SECRET_KEY": settings.jwt_secret_key,
{%- endif %}
    }


async def _start(settings: Settings, *arguments: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "scripts.purge_deleted",
        *arguments,
        cwd=PROJECT_ROOT,
        env=_environment(settings),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def _line_starting(stream: asyncio.StreamReader | None, prefix: str) -> str:
    assert stream is not None
    async with asyncio.timeout(LINE_TIMEOUT):
        while line := (await stream.readline()).decode():
            if line.startswith(prefix):
                return line
    raise AssertionError(f"the job ended without a line starting {prefix!r}")


async def _finish(process: asyncio.subprocess.Process) -> tuple[int, str, str]:
    async with asyncio.timeout(LINE_TIMEOUT):
        out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@asynccontextmanager
{%- if db == "sqlite" %}
async def _holding_up(process: asyncio.subprocess.Process) -> AsyncIterator[None]:
    """Stop the job where it is (SIGSTOP), and let it go on afterwards. Not by taking
    SQLite's write lock: the job takes it again a moment after each commit, and a
    waiting BEGIN IMMEDIATE, which polls, may not get it before the job ends."""
    process.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGCONT)
{%- else %}
async def _holding_up_the_second_batch(
    engine: AsyncEngine, user_ids: list[uuid.UUID], batch: int
) -> AsyncIterator[None]:
{%- if examples %}
    """Share-lock every user's second post but those of the first batch (the lowest
    ids, as all were deleted at once): the first batch goes through, the next deletes
    each user's first post, then waits, half done, for the lock."""
    later = sorted(user_ids)[batch:]
    async with engine.begin() as connection:
        await connection.execute(
            select(Post.id)
            .where(Post.title == "second", Post.author_id.in_(later))
            .with_for_update(read=True)
        )
        yield
{%- else %}
    """Share-lock the role links of every user but those of the first batch (the
    lowest ids, as all were deleted at once): the first batch goes through, the next
    waits inside its DELETE for the links that go with its users (ON DELETE CASCADE)."""
    later = sorted(user_ids)[batch:]
    await _link_role(engine, "held", later)
    async with engine.begin() as connection:
        await connection.execute(
            select(user_roles.c.user_id)
            .where(user_roles.c.user_id.in_(later))
            .with_for_update(read=True)
        )
        yield
{%- endif %}
{%- endif %}


async def test_the_command_purges_in_batches_and_reports_progress(
    engine: AsyncEngine, test_settings: Settings
) -> None:
    old = await _add_users(engine, 5, deleted_days_ago=31)
    process = await _start(test_settings, "--older-than-days", "30", "--batch-size", "2")
    status, out, err = await _finish(process)
    assert status == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("5 users deleted before ")
    assert [line.split(":")[0] for line in lines[1:4]] == ["batch 1", "batch 2", "batch 3"]
{%- if examples %}
    assert "5 of 5 users (100%), 10 posts" in lines[3]
    assert lines[-1] == "done: 5 users and 10 posts purged in 3 batches"
    assert await _remaining(engine, old) == (0, 0)
{%- else %}
    assert "5 of 5 users (100%)" in lines[3]
    assert lines[-1] == "done: 5 users purged in 3 batches"
    assert await _remaining(engine, old) == 0
{%- endif %}


@pytest.mark.parametrize("how", ["signal", "kill"])
async def test_an_interrupted_purge_leaves_whole_batches_and_resumes(
    engine: AsyncEngine, test_settings: Settings, how: str
) -> None:
    batch = 5
{%- if db == "sqlite" %}
    # Enough batches that the job is still at work when the test holds it up.
    old = await _add_users(engine, 1000, deleted_days_ago=45)
{%- else %}
    old = await _add_users(engine, 50, deleted_days_ago=45)
{%- endif %}
    kept = await _add_users(engine, 10, deleted_days_ago=3) + await _add_users(
        engine, 10, deleted_days_ago=None
    )
    arguments = ("--older-than-days", "30", "--batch-size", str(batch))
{%- if db == "sqlite" %}
    process = await _start(test_settings, *arguments)
    await _line_starting(process.stdout, "batch 1:")
    async with _holding_up(process):
{%- else %}
    async with _holding_up_the_second_batch(engine, old, batch):
        process = await _start(test_settings, *arguments)
        await _line_starting(process.stdout, "batch 1:")
{%- endif %}
        await asyncio.sleep(0.5)  # the job is now {% if db == "sqlite" %}stopped, inside a batch or between two{% else %}waiting inside a batch{% endif %}
        assert process.returncode is None, "the job finished before it could be held up"
        if how == "signal":
            process.send_signal(signal.SIGINT)
{%- if db == "sqlite" %}
            process.send_signal(signal.SIGCONT)  # to see the interrupt
{%- endif %}
            await _line_starting(process.stderr, "stopping after this batch")
        else:
            process.kill()
            await process.wait()
    status, _, err = await _finish(process)

{%- if examples %}
    users, posts = await _remaining(engine, old)
{%- else %}
    users = await _remaining(engine, old)
{%- endif %}
    assert 0 < users < len(old)
    assert (len(old) - users) % batch == 0  # whole batches, committed or not at all
{%- if examples %}
    assert posts == POSTS_EACH * users  # no user left with part of its posts
{%- endif %}
    if how == "signal":
        assert status == 130
        purged = len(old) - users
{%- if examples %}
        assert f"interrupted: {purged} users and {POSTS_EACH * purged} posts purged" in err
{%- else %}
        assert f"interrupted: {purged} users purged" in err
{%- endif %}
        assert "run again to carry on" in err
    else:
        assert status == -signal.SIGKILL

    again = await _start(test_settings, *arguments)
    status, out, err = await _finish(again)
    assert status == 0, err
    assert out.splitlines()[0].startswith(f"{users} users deleted before ")
{%- if examples %}
    assert await _remaining(engine, old) == (0, 0)
    assert await _remaining(engine, kept) == (len(kept), POSTS_EACH * len(kept))
{%- else %}
    assert await _remaining(engine, old) == 0
    assert await _remaining(engine, kept) == len(kept)
{%- endif %}


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("--older-than-days", "-1"), "--older-than-days must be 0 or more"),
        (("--older-than-days", "30", "--batch-size", "0"), "--batch-size must be between"),
        ((), "the following arguments are required: --older-than-days"),
    ],
)
async def test_bad_arguments_are_refused_before_any_work(
    engine: AsyncEngine, test_settings: Settings, arguments: tuple[str, ...], message: str
) -> None:
    old = await _add_users(engine, 1, deleted_days_ago=400)
    status, _, err = await _finish(await _start(test_settings, *arguments))
    assert status == 2
    assert message in err
{%- if examples %}
    assert await _remaining(engine, old) == (1, POSTS_EACH)
{%- else %}
    assert await _remaining(engine, old) == 1
{%- endif %}
{%- if auth %}


async def test_expired_and_revoked_refresh_tokens_and_old_throttle_counts_go(
    engine: AsyncEngine, test_settings: Settings
) -> None:
    [user] = await _add_users(engine, 1, deleted_days_ago=None)
    now = utcnow()
    window = test_settings.auth_throttle_window_seconds
    tokens = {
        "expired": {"expires_at": now - timedelta(seconds=1)},
        "revoked": {"expires_at": now + timedelta(days=1), "revoked_at": now},
        "live": {"expires_at": now + timedelta(days=1)},
    }
    start = int(now.timestamp()) // window * window
    # The current window, which stays counted however long the command takes to start
    # (the previous one would not, were a window boundary to pass meanwhile).
    windows = {"counted": start, "too old": start - 3 * window}
    async with engine.begin() as connection:
        await connection.execute(
            insert(RefreshToken),
            [
                {"id": uuid.uuid4(), "family_id": uuid.uuid4(), "user_id": user}
                | {"used_at": None, "revoked_at": None}
                | fields
                for fields in tokens.values()
            ],
        )
        await connection.execute(
            insert(ThrottleWindow),
            [
                {"bucket": "token:203.0.113.1", "window_start": s, "hits": 1}
                for s in windows.values()
            ],
        )
    status, out, err = await _finish(await _start(test_settings, "--older-than-days", "30"))
    assert status == 0, err
    assert "2 expired or revoked refresh tokens and 1 old throttle counts removed" in out
    async with engine.connect() as connection:
        left = (await connection.execute(select(RefreshToken.expires_at))).scalars().all()
        starts = (await connection.execute(select(ThrottleWindow.window_start))).scalars().all()
    assert left == [tokens["live"]["expires_at"]]
    assert starts == [windows["counted"]]
{%- endif %}
