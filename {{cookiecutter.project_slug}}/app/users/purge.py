{%- set db = cookiecutter.database -%}
{%- set examples = cookiecutter.include_example_models == "yes" -%}
"""Physically deleting soft-deleted users{% if examples %} and their posts{% endif %}, batch by batch.

A soft-deleted user stays in its table (its email free for a new account) until
this removes it, once it has been deleted for long enough. Each batch is one
transaction: it takes up to `batch_size` of the users deleted longest ago
{%- if db == "sqlite" %}
(BEGIN IMMEDIATE: no other writer changes them until it commits), deletes {% if examples %}their
posts, then them{% else %}them{% endif %}
{%- else %}
and locks them (`FOR UPDATE SKIP LOCKED`: a second purge running at the same time
takes other users instead of waiting), deletes {% if examples %}their posts, then them{% else %}them{% endif %}
{%- endif %}
(their role links{% if cookiecutter.auth == "jwt" %} and refresh tokens{% endif %} go with them, ON DELETE CASCADE). A batch commits whole or not
at all, so a purge can be stopped anywhere and run again: it carries on with what
is left.
`scripts/purge_deleted.py` is the command that runs it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.session import Database
{%- if examples %}
from app.posts.models import Post
{%- endif %}
from app.users.models import User

_PURGEABLE = (User.is_deleted, User.deleted_at < bindparam("cutoff"))
_COUNT = select(func.count()).select_from(User).where(*_PURGEABLE)
_NEXT_BATCH = (
    select(User.id)
    .where(*_PURGEABLE)
    .order_by(User.deleted_at, User.id)
    .limit(bindparam("batch_size"))
{%- if db != "sqlite" %}
    .with_for_update(skip_locked=True)
{%- endif %}
)
{%- if examples %}
_DELETE_POSTS = delete(Post).where(Post.author_id.in_(bindparam("ids", expanding=True)))
{%- endif %}
_DELETE_USERS = delete(User).where(User.id.in_(bindparam("ids", expanding=True)), *_PURGEABLE)


@dataclass(frozen=True)
class Purged:
    users: int = 0
{%- if examples %}
    posts: int = 0
{%- endif %}

    def __add__(self, other: Purged) -> Purged:
        return Purged({% if examples %}self.users + other.users, self.posts + other.posts{% else %}self.users + other.users{% endif %})


async def count_purgeable(database: Database, cutoff: datetime) -> int:
    async with database.transaction() as connection:
        return int(await connection.scalar(_COUNT, {"cutoff": cutoff}) or 0)


async def purge_batch(connection: AsyncConnection, cutoff: datetime, batch_size: int) -> Purged:
    """Delete the next batch on `connection`, in its transaction; nothing is left: 0 users."""
    batch = await connection.scalars(_NEXT_BATCH, {"cutoff": cutoff, "batch_size": batch_size})
    ids = batch.all()
    if not ids:
        return Purged()
{%- if examples %}
    posts = await connection.execute(_DELETE_POSTS, {"ids": ids})
{%- endif %}
    users = await connection.execute(_DELETE_USERS, {"ids": ids, "cutoff": cutoff})
    return Purged(users=users.rowcount{% if examples %}, posts=posts.rowcount{% endif %})


async def purge_deleted(
    database: Database,
    cutoff: datetime,
    batch_size: int,
    *,
    on_batch: Callable[[Purged], None] = lambda _: None,
    should_stop: Callable[[], bool] = lambda: False,
) -> Purged:
    """Purge every user soft-deleted before `cutoff`, one transaction per batch.

    `on_batch` hears of each committed batch; `should_stop` is asked before each
    one, so a stop request ends the run between batches, never inside one.
    """
    total = Purged()
    while not should_stop():
        async with database.transaction() as connection:
            batch = await purge_batch(connection, cutoff, batch_size)
        if not batch.users:
            break
        total += batch
        on_batch(batch)
    return total
