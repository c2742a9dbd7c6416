"""Data access for posts: filtered lists, a window function, bulk insert, streaming.

Docs: https://docs.sqlalchemy.org/en/20/orm/queryguide/dml.html (bulk insert)
      https://docs.sqlalchemy.org/en/20/orm/extensions/asyncio.html (stream)
"""

import uuid
from collections.abc import AsyncGenerator, Sequence
from datetime import datetime

from sqlalchemy import Row, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from app.errors import NotFoundError
from app.posts.models import Post
from app.posts.schemas import PostCreate
from app.users.models import User

# Many-to-one: a JOIN brings the author in the same SELECT.
WITH_AUTHOR = joinedload(Post.author, innerjoin=True)


async def _require_author(session: AsyncSession, author_id: uuid.UUID) -> User:
    author = await session.get(User, author_id)
    # get() may answer from the identity map, which the soft-delete filter never sees.
    if author is None or author.is_deleted:
        raise NotFoundError(f"user {author_id} not found")
    return author


async def create_post(session: AsyncSession, author_id: uuid.UUID, data: PostCreate) -> Post:
    author = await _require_author(session, author_id)
    post = Post(author=author, title=data.title, body=data.body)
    session.add(post)
    await session.flush()
    return post


async def bulk_create_posts(
    session: AsyncSession, author_id: uuid.UUID, rows: Sequence[PostCreate]
) -> int:
    """All or nothing: one multi-row INSERT inside the request's transaction."""
    await _require_author(session, author_id)
    await session.execute(
        insert(Post),
        [{"author_id": author_id, "title": row.title, "body": row.body} for row in rows],
    )
    return len(rows)


async def get_post(session: AsyncSession, post_id: uuid.UUID) -> Post:
    post = await session.scalar(select(Post).where(Post.id == post_id).options(WITH_AUTHOR))
    if post is None:
        raise NotFoundError(f"post {post_id} not found")
    return post


async def list_posts(
    session: AsyncSession,
    *,
    limit: int,
    offset: int,
    author_id: uuid.UUID | None = None,
    title_contains: str | None = None,
    min_views: int | None = None,
) -> Sequence[Post]:
    stmt = select(Post).options(WITH_AUTHOR).order_by(Post.created_at.desc(), Post.id.desc())
    if author_id is not None:
        stmt = stmt.where(Post.author_id == author_id)
    if title_contains:
        stmt = stmt.where(Post.title.contains(title_contains, autoescape=True))
    if min_views is not None:
        stmt = stmt.where(Post.view_count >= min_views)
    return (await session.scalars(stmt.limit(limit).offset(offset))).all()


async def latest_posts_per_user(session: AsyncSession, *, per_user: int) -> Sequence[Post]:
    """Window function: each author's `per_user` newest posts, in one query."""
    rank = (
        func.row_number()
        .over(partition_by=Post.author_id, order_by=(Post.created_at.desc(), Post.id.desc()))
        .label("rank")
    )
    ranked = select(Post.id, rank).subquery()
    stmt = (
        select(Post)
        .join(ranked, ranked.c.id == Post.id)
        .where(ranked.c.rank <= per_user)
        .options(WITH_AUTHOR)
        .order_by(Post.author_id, ranked.c.rank)
    )
    return (await session.scalars(stmt)).all()


EXPORT_COLUMNS = (Post.id, Post.author_id, Post.title, Post.view_count, Post.created_at)


async def stream_posts(
    session: AsyncSession, *, batch_size: int = 1000
) -> AsyncGenerator[Sequence[Row[uuid.UUID, uuid.UUID, str, int, datetime]]]:
    """Rows arrive in batches from a server-side cursor: memory stays flat
    however many posts there are."""
    result = await session.stream(
        select(*EXPORT_COLUMNS)
        .order_by(Post.created_at, Post.id)
        .execution_options(yield_per=batch_size)
    )
    async for partition in result.partitions():
        yield partition
