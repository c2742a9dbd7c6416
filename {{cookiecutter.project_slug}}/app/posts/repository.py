"""Data access for posts: filtered pages, a window function, bulk insert, streaming.

Reads are Core statements on a connection, built once, each joining the author and
stating the soft-delete condition; writes go through a write session. See
`app.users.repository` for why.
Docs: https://docs.sqlalchemy.org/en/20/orm/queryguide/dml.html (bulk insert)
      https://docs.sqlalchemy.org/en/20/orm/extensions/asyncio.html (stream)
"""

import uuid
from collections.abc import AsyncGenerator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.db.pagination import Keyset, Page, Position
from app.errors import NotFoundError
from app.posts.models import Post
from app.posts.schemas import AuthorRead, PostCreate, PostRead
from app.users.models import User

# Newest first.
POSTS = Keyset(Post.created_at, Post.id, descending=True)

_POST_COLUMNS = (
    Post.id,
    Post.author_id,
    Post.title,
    Post.body,
    Post.view_count,
    Post.created_at,
    Post.updated_at,
    User.email,
    User.full_name,
)


_WITH_AUTHOR = (
    select(*_POST_COLUMNS)
    .join(User, User.id == Post.author_id)
    .where(Post.is_deleted.is_(False), User.is_deleted.is_(False))
)
_POSTS_PAGE = (
    _WITH_AUTHOR.order_by(*POSTS.order_by()).limit(bindparam("limit")).offset(bindparam("offset"))
)
_ONE_POST = _WITH_AUTHOR.where(Post.id == bindparam("post_id"))
_AUTHOR_EXISTS = select(User.id).where(
    User.id == bindparam("author_id"), User.is_deleted.is_(False)
)


def _post_read(row: Row[*tuple[Any, ...]]) -> PostRead:
    return PostRead(
        id=row.id,
        author_id=row.author_id,
        title=row.title,
        body=row.body,
        view_count=row.view_count,
        created_at=row.created_at,
        updated_at=row.updated_at,
        author=AuthorRead(id=row.author_id, email=row.email, full_name=row.full_name),
    )


def _no_such_user(author_id: uuid.UUID) -> NotFoundError:
    return NotFoundError(f"user {author_id} not found")


async def _require_author(session: AsyncSession, author_id: uuid.UUID) -> User:
    """The entity, for a write (a SELECT, so the soft-delete filter applies)."""
    author = await session.scalar(select(User).where(User.id == author_id))
    if author is None:
        raise _no_such_user(author_id)
    return author


async def create_post(session: AsyncSession, author_id: uuid.UUID, data: PostCreate) -> PostRead:
    author = await _require_author(session, author_id)
    post = Post(author_id=author.id, title=data.title, body=data.body)
    session.add(post)
    await session.flush()
    return PostRead(
        id=post.id,
        author_id=author.id,
        title=post.title,
        body=post.body,
        view_count=post.view_count,
        created_at=post.created_at,
        updated_at=post.updated_at,
        author=AuthorRead.model_validate(author),
    )


async def bulk_create_posts(
    session: AsyncSession, author_id: uuid.UUID, rows: Sequence[PostCreate]
) -> int:
    """All or nothing: one INSERT statement executed for every row (executemany,
    sent in batches by the driver) inside the request's transaction."""
    await _require_author(session, author_id)
    await session.execute(
        insert(Post),
        [{"author_id": author_id, "title": row.title, "body": row.body} for row in rows],
    )
    return len(rows)


async def get_post(connection: AsyncConnection, post_id: uuid.UUID) -> PostRead:
    row = (await connection.execute(_ONE_POST, {"post_id": post_id})).first()
    if row is None:
        raise NotFoundError(f"post {post_id} not found")
    return _post_read(row)


async def list_posts(
    connection: AsyncConnection,
    *,
    limit: int,
    offset: int = 0,
    after: Position | None = None,
    author_id: uuid.UUID | None = None,
    title_contains: str | None = None,
    min_views: int | None = None,
) -> Page[PostRead]:
    """Posts newest first, a page at a time (see app.db.pagination)."""
    stmt = _POSTS_PAGE
    if author_id is not None:
        stmt = stmt.where(Post.author_id == author_id)
    if title_contains:
        stmt = stmt.where(Post.title.icontains(title_contains, autoescape=True))
    if min_views is not None:
        stmt = stmt.where(Post.view_count >= min_views)
    if after is not None:
        stmt = stmt.where(POSTS.after(after))
    rows = (await connection.execute(stmt, {"limit": limit + 1, "offset": offset})).all()
    posts = [_post_read(row) for row in rows[:limit]]
    more = len(rows) > limit
    return Page(posts, Position(posts[-1].created_at, posts[-1].id) if more else None)


async def list_user_posts(
    connection: AsyncConnection,
    author_id: uuid.UUID,
    *,
    limit: int,
    offset: int = 0,
    after: Position | None = None,
) -> Page[PostRead]:
    """All of a user's posts, newest first, a page at a time; 404 for no such user."""
    page = await list_posts(
        connection, limit=limit, offset=offset, after=after, author_id=author_id
    )
    if not page.rows and await connection.scalar(_AUTHOR_EXISTS, {"author_id": author_id}) is None:
        raise _no_such_user(author_id)
    return page


_latest = func.max(Post.created_at).label("latest")
_ACTIVE_AUTHORS = (
    select(Post.author_id, _latest)
    .where(Post.is_deleted.is_(False))
    .group_by(Post.author_id)
    .order_by(_latest.desc())
    .limit(bindparam("authors"))
)
_rank = (
    func.row_number()
    .over(partition_by=Post.author_id, order_by=(Post.created_at.desc(), Post.id.desc()))
    .label("rank")
)
_ranked = (
    _WITH_AUTHOR.add_columns(_rank)
    .where(Post.author_id.in_(bindparam("author_ids", expanding=True)))
    .subquery()
)
_NEWEST_OF_AUTHORS = select(_ranked).where(_ranked.c.rank <= bindparam("per_user"))


async def latest_posts_per_author(
    connection: AsyncConnection, *, authors: int, per_user: int
) -> list[PostRead]:
    """The `authors` most recently active authors, each with their `per_user` newest
    posts: a window function ranks each author's posts in one query."""
    active = (await connection.execute(_ACTIVE_AUTHORS, {"authors": authors})).all()
    if not active:
        return []
    rows = await connection.execute(
        _NEWEST_OF_AUTHORS,
        {"author_ids": [a.author_id for a in active], "per_user": per_user},
    )
    by_author: dict[uuid.UUID, list[PostRead]] = {a.author_id: [] for a in active}
    for row in sorted(rows, key=lambda row: row.rank):
        by_author[row.author_id].append(_post_read(row))
    return [post for posts in by_author.values() for post in posts]


EXPORT_COLUMNS = (Post.id, Post.author_id, Post.title, Post.view_count, Post.created_at)


_EXPORT = (
    select(*EXPORT_COLUMNS).where(Post.is_deleted.is_(False)).order_by(Post.created_at, Post.id)
)


async def stream_posts(
    connection: AsyncConnection, *, batch_size: int = 1000
) -> AsyncGenerator[Sequence[Row[uuid.UUID, uuid.UUID, str, int, datetime]]]:
    """Rows arrive in batches from a server-side cursor: memory stays flat
    however many posts there are."""
    result = await connection.stream(_EXPORT.execution_options(yield_per=batch_size))
    async for partition in result.partitions():
        yield partition
