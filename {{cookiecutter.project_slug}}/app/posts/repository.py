{%- set db = cookiecutter.database -%}
"""Data access for posts: filtered pages, a bounded report, bulk insert, streaming.

Reads are Core statements on a connection, built once, each joining the author and
stating the soft-delete condition; writes go through a write session. See
`app.users.repository` for why. Every read is bounded by an index range or a limit,
whatever the size of the table; the export, which reads every post, is the one
exception, and streams (app.streams). The writes keep each author's `post_count` in
their own transaction, so that no read has to count.
Docs: https://docs.sqlalchemy.org/en/20/orm/queryguide/dml.html (bulk insert)
      https://docs.sqlalchemy.org/en/20/orm/extensions/asyncio.html (stream)
"""

import uuid
from collections import Counter
from collections.abc import AsyncGenerator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, event, false, func, insert, inspect, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Session

from app.db.pagination import Keyset, Page, Position
from app.db.search import starts_with{% if db == "sqlite" %}, weighed{% endif %}
from app.db.session import AppSession
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
    .where(Post.is_deleted == false(), User.is_deleted == false())
)
_POSTS_PAGE = (
    _WITH_AUTHOR.order_by(*POSTS.order_by()).limit(bindparam("limit")).offset(bindparam("offset"))
)

_ONE_POST = _WITH_AUTHOR.where(Post.id == bindparam("post_id"))
_AUTHOR_EXISTS = select(User.id).where(
    User.id == bindparam("author_id"), User.is_deleted == false()
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


# Run on the session's connection: a plain UPDATE, not an ORM one to synchronise.
_COUNT_POSTS = (
    update(User)
    .where(User.id == bindparam("author_id"))
    .values(post_count=User.post_count + bindparam("added"))
)


async def _count_posts(session: AsyncSession, author_id: uuid.UUID, added: int) -> None:
    """Keep the author's `post_count` in the transaction that adds the posts: one
    atomic UPDATE, so concurrent writes cannot lose a count.{% if db == "mysql" %} Sent before the INSERT:
    the INSERT's foreign-key check share-locks the author's row, and two writers each
    holding that lock while waiting to update the row would deadlock.{% endif %}"""
    connection = await session.connection()
    await connection.execute(_COUNT_POSTS, {"author_id": author_id, "added": added})


@event.listens_for(AppSession, "after_flush")
def _count_soft_deletes(session: Session, _context: object) -> None:
    """A post soft-deleted (or brought back) through the ORM changes its author's
    `post_count` in the same flush, so the counter holds whatever deletes a post."""
    changes: Counter[uuid.UUID] = Counter()
    for post in session.dirty:
        if isinstance(post, Post):
            now, _, before = inspect(post).attrs.is_deleted.history
            if now and before and now[0] != before[0]:
                changes[post.author_id] += -1 if now[0] else 1
    for author_id, added in changes.items():
        session.connection().execute(_COUNT_POSTS, {"author_id": author_id, "added": added})


async def create_post(session: AsyncSession, author_id: uuid.UUID, data: PostCreate) -> PostRead:
    author = await _require_author(session, author_id)
    await _count_posts(session, author.id, 1)
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
    await _count_posts(session, author_id, len(rows))
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
    title_prefix: str | None = None,
    min_views: int | None = None,
) -> Page[PostRead]:
    """Posts newest first, a page at a time (see app.db.pagination). Each filter has
    an index: the author's posts, a title's start (any letter case), the views."""
    stmt = _POSTS_PAGE
    if author_id is not None:
        stmt = stmt.where(Post.author_id == author_id)
{%- if db == "mysql" %}
    # MariaDB would rather sort the whole table than read an offset page (some hundreds
    # of rows) along an index: held to the index that gives the page's order.
    ordered_by = (
        "ix_posts_created_at_id" if author_id is None else "ix_posts_author_id_created_at_id"
    )
    stmt = stmt.with_hint(Post, f"FORCE INDEX FOR ORDER BY ({ordered_by})")
{%- endif %}
{%- if db == "sqlite" %}
    if title_prefix:
        title = starts_with(Post.title, title_prefix, any_case=True)
        stmt = stmt.where(await weighed(connection, title))
    if min_views is not None:
        stmt = stmt.where(await weighed(connection, Post.view_count >= min_views))
{%- else %}
    if title_prefix:
        stmt = stmt.where(starts_with(Post.title, title_prefix, any_case=True))
    if min_views is not None:
        stmt = stmt.where(Post.view_count >= min_views)
{%- endif %}
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


# The report looks at this many of the newest posts, however many there are: its
# aggregate and its window function read those rows, an index range, and no others.
RECENT_POSTS = 1000
_recent = (
    select(Post.id, Post.author_id, Post.created_at)
{%- if db == "mysql" %}
    .with_hint(Post, "FORCE INDEX FOR ORDER BY (ix_posts_created_at_id)")
{%- endif %}
    .where(Post.is_deleted == false())
    .order_by(Post.created_at.desc(), Post.id.desc())
    .limit(RECENT_POSTS)
    .subquery("recent")
)
_latest = func.max(_recent.c.created_at).label("latest")
_ACTIVE_AUTHORS = (
    select(_recent.c.author_id, _latest)
    .group_by(_recent.c.author_id)
    .order_by(_latest.desc(), _recent.c.author_id)
    .limit(bindparam("authors"))
)
_rank = (
    func.row_number()
    .over(
        partition_by=_recent.c.author_id,
        order_by=(_recent.c.created_at.desc(), _recent.c.id.desc()),
    )
    .label("rank")
)
_ranked = (
    select(_recent.c.id, _rank)
    .where(_recent.c.author_id.in_(bindparam("author_ids", expanding=True)))
    .subquery("ranked")
)
_NEWEST_OF_AUTHORS = (
    _WITH_AUTHOR.add_columns(_ranked.c.rank)
    .join(_ranked, _ranked.c.id == Post.id)
    .where(_ranked.c.rank <= bindparam("per_user"))
)


async def latest_posts_per_author(
    connection: AsyncConnection, *, authors: int, per_user: int
) -> list[PostRead]:
    """Among the RECENT_POSTS newest posts: the `authors` most recently active
    authors (an aggregate), each with up to `per_user` of their newest posts (a
    window function ranks each author's posts)."""
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
    select(*EXPORT_COLUMNS).where(Post.is_deleted == false()).order_by(Post.created_at, Post.id)
)


async def stream_posts(
    connection: AsyncConnection, *, batch_size: int = 1000
) -> AsyncGenerator[Sequence[Row[uuid.UUID, uuid.UUID, str, int, datetime]]]:
    """Rows arrive in batches from a server-side cursor: memory stays flat
    however many posts there are."""
    result = await connection.stream(_EXPORT.execution_options(yield_per=batch_size))
    async for partition in result.partitions():
        yield partition
