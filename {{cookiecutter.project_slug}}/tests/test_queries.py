"""The repository's query patterns, and the database behaviour they rely on."""

import os
import subprocess
import sys
import uuid
from datetime import UTC
from typing import cast

import pytest
from httpx import AsyncClient
from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import DBAPIError, IntegrityError, InvalidRequestError
from sqlalchemy.ext.asyncio import AsyncSession

from app.posts import repository as posts
from app.posts.models import Post
from app.posts.schemas import PostCreate
from app.settings import Settings
from app.users import repository as users
from app.users.models import User
from app.users.schemas import UserCreate, UserRead
from scripts.explain_queries import MINIMUM_ROWS
from tests.conftest import PROJECT_ROOT


async def _user(session: AsyncSession, email: str = "ada@example.com") -> UserRead:
    """A user, created the way the endpoint does (one INSERT on the connection)."""
    connection = await session.connection()
    return await users.create_user(connection, UserCreate(email=email, full_name="Ada"))


async def _posts(session: AsyncSession, author: UserRead, count: int) -> None:
    rows = [PostCreate(title=f"Post {i}", body="...") for i in range(count)]
    await posts.bulk_create_posts(session, author.id, rows)


def _selects(statements: list[str]) -> list[str]:
    return [s for s in statements if s.lstrip().upper().startswith("SELECT")]


async def test_list_users_issues_constant_statements(
    client: AsyncClient, session: AsyncSession, statements: list[str]
) -> None:
    for i in range(60):
        author = await _user(session, f"user{i}@example.com")
        await _posts(session, author, 2)
    await session.commit()

    counts = []
    for limit in (5, 50):
        statements.clear()
        response = await client.get("/api/v1/users", params={"limit": limit})
        assert len(response.json()) == limit
        counts.append(len(_selects(statements)))
    # users with their post counts, their newest posts (one window query), their roles
    assert counts == [3, 3]


async def test_unloaded_relationship_raises_instead_of_lazy_io(session: AsyncSession) -> None:
    author = await _user(session)
    await session.commit()
    session.expunge_all()
    fresh = await session.get(User, author.id)
    assert fresh is not None
    with pytest.raises(InvalidRequestError):
        _ = fresh.posts


async def test_soft_deleted_rows_hidden_from_queries_and_relationships(
    session: AsyncSession,
) -> None:
    author = await _user(session)
    await _posts(session, author, 3)
    hidden = (await session.scalars(select(Post).limit(1))).one()
    hidden.mark_deleted()
    await session.commit()
    session.expunge_all()

    loaded = await users.get_user(await session.connection(), author.id)
    assert len(loaded.latest_posts) == 2
    assert loaded.post_count == 2
    assert hidden.id not in {p.id for p in loaded.latest_posts}
    # The filter applies to ORM entities; a Core query on the table sees every row.
    assert await session.scalar(select(func.count()).select_from(Post.__table__)) == 3
    every = await session.scalars(select(Post).execution_options(include_deleted=True))
    assert len(every.all()) == 3
    counts = await users.users_with_post_counts(await session.connection(), limit=10)
    assert [row.post_count for row in counts] == [2]
    latest = await posts.latest_posts_per_author(await session.connection(), authors=5, per_user=5)
    assert hidden.id not in {p.id for p in latest}
    page = await posts.list_user_posts(await session.connection(), author.id, limit=10)
    assert hidden.id not in {p.id for p in page.rows}


async def test_timestamps_are_utc_and_updated_at_moves(session: AsyncSession) -> None:
    author = await _user(session)
    await session.commit()
    session.expunge_all()
    loaded = await session.scalar(select(User).where(User.id == author.id))
    assert loaded is not None
    assert loaded.created_at.tzinfo == UTC
    before, created = loaded.updated_at, loaded.created_at
    loaded.full_name = "Countess"
    await session.commit()
    session.expunge_all()
    reloaded = await users.get_user(await session.connection(), author.id)
    assert reloaded.updated_at > before
    assert reloaded.created_at == created


async def test_foreign_keys_are_enforced(session: AsyncSession) -> None:
    with pytest.raises(IntegrityError):
        async with session.begin_nested():
            await session.execute(
                insert(Post).values(author_id=uuid.uuid4(), title="orphan", body="...")
            )


async def test_hard_delete_cascades_to_posts(session: AsyncSession) -> None:
    author = await _user(session)
    await _posts(session, author, 3)
    await session.commit()
    await session.execute(delete(User).where(User.id == author.id))
    remaining = await session.scalar(
        select(func.count()).select_from(Post).where(Post.author_id == author.id)
    )
    assert remaining == 0


async def test_bulk_insert_is_all_or_nothing(session: AsyncSession) -> None:
    author = await _user(session)
    rows = [
        PostCreate(title="fine", body="..."),
        PostCreate.model_construct(title="broken", body=cast(str, None)),  # NOT NULL violation
    ]
    with pytest.raises(DBAPIError):
        async with session.begin_nested():
            await posts.bulk_create_posts(session, author.id, rows)
    count = await session.scalar(select(func.count()).select_from(Post))
    assert count == 0


async def test_stream_posts_in_partitions(session: AsyncSession) -> None:
    author = await _user(session)
    await _posts(session, author, 25)
    sizes = [
        len(batch) async for batch in posts.stream_posts(await session.connection(), batch_size=10)
    ]
    assert sizes == [10, 10, 5]


@pytest.mark.usefixtures("migrated_database")
def test_no_request_path_query_reads_a_whole_table(test_settings: Settings) -> None:
    """scripts/explain_queries.py on the real planner, at its smallest sample: it exits
    1 when a statement reads a whole table (the template's tests run it at 100,000
    rows per table)."""
    result = subprocess.run(  # noqa: S603 -- this interpreter, a number of ours
        [sys.executable, "-m", "scripts.explain_queries", "--rows", str(MINIMUM_ROWS)],
        cwd=PROJECT_ROOT,
        env={**os.environ, "DATABASE_URL": test_settings.database_url},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "no request-path query reads a whole table" in result.stdout
