{%- set db = cookiecutter.database -%}
{%- set examples = cookiecutter.include_example_models == "yes" -%}
{%- set auth = cookiecutter.auth == "jwt" -%}
"""Data access for users: every query {% if examples %}the example domain needs{% else %}the accounts need{% endif %}, in one module.

Reads are Core statements on a connection: they select the columns a response
needs and build it from the rows, with no session, identity map or instrumented
objects to pay for, and they state the soft-delete condition themselves (the
session's filter is an ORM feature). The statements are built once, at import:
building a query costs more CPU than running it. Writes of several statements load
entities in a write session, so that the unit of work, optimistic locking and
relationships do their job. Nothing here commits: the dependency that opened the
session or connection does, once the endpoint has succeeded.
Docs: https://docs.sqlalchemy.org/en/20/core/connections.html
      https://docs.sqlalchemy.org/en/20/faq/performance.html
"""

{% if examples -%}
import functools
{% endif -%}
import uuid
from collections import defaultdict
from collections.abc import {% if auth %}Callable, {% endif %}Sequence
from typing import Any

from sqlalchemy import {% if examples %}CompoundSelect, {% endif %}Row, bindparam, false, insert, select{% if examples %}, union_all, update{% endif %}
{%- if db == "postgresql" %}
from sqlalchemy.dialects.postgresql import insert as upsert
{%- elif db == "sqlite" %}
from sqlalchemy.dialects.sqlite import insert as upsert
{%- else %}
from sqlalchemy.dialects.mysql import insert as upsert
{%- endif %}
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import selectinload

from app.db.keys import new_id
from app.db.pagination import Keyset, Page, Position
from app.db.search import starts_with{% if db == "sqlite" %}, weighed{% endif %}
from app.db.types import utcnow
from app.errors import ConflictError, NotFoundError
{%- if examples %}
from app.posts.models import Post
{%- endif %}
from app.users.models import Role, User, user_roles
from app.users.schemas import (
{%- if examples %}
    PostSummary,
{%- endif %}
    RoleRead,
    UserCreate,
    UserImportResult,
    UserRead,
    UserUpdate,
)

{% if examples -%}
# A UserRead carries at most this many posts (the newest) and its post_count, a
# counter kept by the writes of posts (app.posts.repository); roles are capped when
# assigned. No response, and no query, grows with the size of a user's history.
LATEST_POSTS = 5
{% else -%}
# Roles are capped when assigned: no response grows with a user's history.
{% endif -%}
MAX_ROLES = 20
{% if auth -%}
# Whose email and roles a read shows (app.auth.access: to the user themselves and to
# admins). The others' are null, and their roles are not even read.
ShowsPrivate = Callable[[uuid.UUID], bool]


def everyone(_: uuid.UUID) -> bool:
    return True


{% endif -%}
USERS = Keyset(User.created_at, User.id)
_USER_FIELDS = {"id", "email", "full_name", "version", "created_at", "updated_at"}

_USERS = select(
    User.id,
    User.email,
    User.full_name,
    User.version,
    User.created_at,
    User.updated_at,
{%- if examples %}
    User.post_count,
{%- endif %}
).where(User.is_deleted == false())
_USERS_PAGE = (
    _USERS.order_by(*USERS.order_by()).limit(bindparam("limit")).offset(bindparam("offset"))
)
{%- if db == "mysql" %}
# MariaDB would rather sort the whole table than read an offset page (some hundreds of
# rows) along the index: held to the index that gives the order.
_USERS_PAGE = _USERS_PAGE.with_hint(User, "FORCE INDEX FOR ORDER BY (ix_users_created_at_id)")
{%- endif %}
_ONE_USER = _USERS.where(User.id == bindparam("user_id"))
_ROLES = (
    select(user_roles.c.user_id, Role.name)
    .join(Role, Role.id == user_roles.c.role_id)
    .where(user_roles.c.user_id.in_(bindparam("user_ids", expanding=True)))
    .order_by(Role.name)
)
_INSERT_USER = insert(User)


# Names no email: errors and logs carry no personal data.
EMAIL_TAKEN = "a user with this email already exists"
{%- if examples %}


@functools.cache
def _newest_posts(users: int) -> CompoundSelect[Any]:
    """The LATEST_POSTS newest posts of each of `users` users (`user_0`, `user_1`, ...):
    one branch per user, a range of the (author_id, created_at, id) index read
    backwards and cut at the limit. Built once per number of users: building it
    costs more than running it."""
    return union_all(
        *(
            select(
                select(Post.id, Post.author_id, Post.title, Post.view_count, Post.created_at)
                .where(Post.author_id == bindparam(f"user_{i}"), Post.is_deleted == false())
                .order_by(Post.created_at.desc(), Post.id.desc())
                .limit(LATEST_POSTS)
                .subquery()
            )
            for i in range(users)
        )
    )


async def _latest_posts(
    connection: AsyncConnection, user_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[PostSummary]]:
    """Each user's LATEST_POSTS newest posts, for all the users in one query: one
    bounded branch per user (a window function over their posts would read all of
    them, however many a user has written)."""
    users = {f"user_{i}": user_id for i, user_id in enumerate(user_ids)}
    rows = sorted(
        await connection.execute(_newest_posts(len(users)), users),
        key=lambda row: (row.created_at, row.id),
        reverse=True,
    )
    posts: dict[uuid.UUID, list[PostSummary]] = defaultdict(list)
    for row in rows:
        posts[row.author_id].append(
            PostSummary(
                id=row.id, title=row.title, view_count=row.view_count, created_at=row.created_at
            )
        )
    return posts
{%- endif %}


async def _roles(
    connection: AsyncConnection, user_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[RoleRead]]:
    roles: dict[uuid.UUID, list[RoleRead]] = defaultdict(list)
{%- if auth %}
    if not user_ids:  # nobody's roles to show
        return roles
{%- endif %}
    for user_id, name in await connection.execute(_ROLES, {"user_ids": user_ids}):
        roles[user_id].append(RoleRead(name=name))
    return roles


async def _with_details(
    connection: AsyncConnection,
    rows: Sequence[Row[*tuple[Any, ...]]],
{%- if auth %}
    private: ShowsPrivate = everyone,
{%- endif %}
) -> list[UserRead]:
    """UserReads for rows of _USERS: {% if examples %}two more queries{% else %}one more query{% endif %}, whatever the page size{% if auth %}
    ({% if examples %}one{% else %}none{% endif %} when `private` shows nobody's email and roles){% endif %}."""
    if not rows:
        return []
    ids = [row.id for row in rows]
{%- if auth %}
    shown = {user_id for user_id in ids if private(user_id)}
{%- endif %}
{%- if examples %}
    posts = await _latest_posts(connection, ids)
{%- endif %}
{%- if auth %}
    roles = await _roles(connection, [user_id for user_id in ids if user_id in shown])
{%- else %}
    roles = await _roles(connection, ids)
{%- endif %}
    return [
        UserRead(
            id=row.id,
            email=row.email{% if auth %} if row.id in shown else None{% endif %},
            full_name=row.full_name,
            version=row.version,
            created_at=row.created_at,
            updated_at=row.updated_at,
{%- if examples %}
            post_count=row.post_count,
{%- endif %}
            roles=roles.get(row.id, []){% if auth %} if row.id in shown else None{% endif %},
{%- if examples %}
            latest_posts=posts.get(row.id, []),
{%- endif %}
        )
        for row in rows
    ]


async def list_users(
    connection: AsyncConnection,
    *,
    limit: int,
    offset: int = 0,
    after: Position | None = None,
    email_prefix: str | None = None,
{%- if auth %}
    private: ShowsPrivate = everyone,
{%- endif %}
) -> Page[UserRead]:
    """Users in creation order, a page at a time (see app.db.pagination)."""
    stmt = _USERS_PAGE
    if email_prefix:
        # Emails are stored lower-case, so this ignores letter case; a prefix, so the
        # index on emails serves it (app.db.search).
{%- if db == "sqlite" %}
        prefix = starts_with(User.email, email_prefix.lower())
        live = User.is_deleted == false()  # the unique index is partial: live users only
        stmt = stmt.where(await weighed(connection, prefix, within=live))
{%- else %}
        stmt = stmt.where(starts_with(User.{{ "live_email" if db == "mysql" else "email" }}, email_prefix.lower()))
{%- endif %}
    if after is not None:
        stmt = stmt.where(USERS.after(after))
    rows = (await connection.execute(stmt, {"limit": limit + 1, "offset": offset})).all()
    users = await _with_details(connection, rows[:limit]{% if auth %}, private{% endif %})
    more = len(rows) > limit
    return Page(users, Position(users[-1].created_at, users[-1].id) if more else None)


{% if auth -%}
async def get_user(
    connection: AsyncConnection, user_id: uuid.UUID, private: ShowsPrivate = everyone
) -> UserRead:
{%- else -%}
async def get_user(connection: AsyncConnection, user_id: uuid.UUID) -> UserRead:
{%- endif %}
    rows = (await connection.execute(_ONE_USER, {"user_id": user_id})).all()
    if not rows:
        raise NotFoundError(f"user {user_id} not found")
    return (await _with_details(connection, rows{% if auth %}, private{% endif %}))[0]


async def _load_user(session: AsyncSession, user_id: uuid.UUID, *, roles: bool = False) -> User:
    """The entity, for a write (a SELECT, so the soft-delete filter applies)."""
    stmt = select(User).where(User.id == user_id)
    if roles:
        stmt = stmt.options(selectinload(User.roles))
    user = await session.scalar(stmt)
    if user is None:
        raise NotFoundError(f"user {user_id} not found")
    return user


{% if cookiecutter.auth == "jwt" -%}
async def create_user(
    connection: AsyncConnection, data: UserCreate, password_hash: str | None = None
) -> UserRead:
    """One INSERT, no unit of work. The unique index decides, not a SELECT first:
    two concurrent requests cannot both pass it. Without a password hash the user
    cannot log in (app.auth)."""
{% else -%}
async def create_user(connection: AsyncConnection, data: UserCreate) -> UserRead:
    """One INSERT, no unit of work. The unique index decides, not a SELECT first:
    two concurrent requests cannot both pass it."""
{%- endif %}
    user = UserRead(
        id=new_id(),
        email=data.email,
        full_name=data.full_name,
        version=1,
        created_at=(now := utcnow()),
        updated_at=now,
{%- if examples %}
        post_count=0,
{%- endif %}
        roles=[],
{%- if examples %}
        latest_posts=[],
{%- endif %}
    )
    try:
{%- if cookiecutter.auth == "jwt" %}
        row = user.model_dump(include=_USER_FIELDS) | {"password_hash": password_hash}
        await connection.execute(_INSERT_USER, row)
{%- else %}
        await connection.execute(_INSERT_USER, user.model_dump(include=_USER_FIELDS))
{%- endif %}
    except IntegrityError as exc:
        raise ConflictError(EMAIL_TAKEN) from exc
    return user


async def update_user(session: AsyncSession, user_id: uuid.UUID, data: UserUpdate) -> UserRead:
    user = await _load_user(session, user_id)
    if data.version is not None and data.version != user.version:
        raise ConflictError(
            f"user {user_id} is at version {user.version}, not {data.version}; "
            "read it again and retry"
        )
    changes = data.model_dump(exclude_unset=True, exclude_none=True, exclude={"version"})
    for field, value in changes.items():
        setattr(user, field, value)
    try:
        await session.flush()  # UPDATE ... WHERE version = :read_version
    except IntegrityError as exc:
        raise ConflictError(EMAIL_TAKEN) from exc
    return await get_user(await session.connection(), user_id)


async def soft_delete_user(session: AsyncSession, user_id: uuid.UUID) -> None:
{%- if examples %}
    """Hide the user, then their posts (one UPDATE for all of them); rows stay for
    audits and undo. The email becomes free for a new account."""
{%- else %}
    """Hide the user; the row stays for audits and undo until the purge job removes
    it. The email becomes free for a new account."""
{%- endif %}
    user = await _load_user(session, user_id)
    user.mark_deleted()
    await session.flush()
{%- if examples %}
    await session.execute(
        update(Post)
        .where(Post.author_id == user_id, Post.is_deleted.is_(False))
        .values(is_deleted=True, deleted_at=user.deleted_at)
    )
{%- endif %}


# Rows per INSERT statement of an import: one statement per batch, never one per row.
IMPORT_BATCH = 500
{%- if db == "mysql" %}
# A duplicate row "updates" the existing one to itself: nothing changes, no error,
# and any other error (a strict-mode one) is still raised, which INSERT IGNORE
# would turn into a warning.
_IMPORT = upsert(User).on_duplicate_key_update(id=User.id)
_EXISTING = select(User.id).where(User.id.in_(bindparam("ids", expanding=True)))
{%- else %}
# A row that would break a unique index (the live email) is skipped, not an error;
# RETURNING names the rows that were inserted.
_IMPORT = upsert(User).on_conflict_do_nothing().returning(User.id)
{%- endif %}


async def import_users(
    connection: AsyncConnection, rows: Sequence[UserCreate]
) -> list[UserImportResult]:
    """Partial success by design: each row is reported `created` or `duplicate` (its
    email belongs to a live user, or to an earlier row of the import).

{%- if db == "mysql" %}
    One multi-row INSERT per IMPORT_BATCH rows (`ON DUPLICATE KEY UPDATE`; MariaDB
    returns each row's id, the existing one for a duplicate, and MySQL, which has no
    RETURNING, is asked which of the new ids exist), never a savepoint per row: a
    transaction with a savepoint per row does the work of a transaction per row.
{%- else %}
    One multi-row INSERT per IMPORT_BATCH rows (`ON CONFLICT DO NOTHING RETURNING
    id`), never a savepoint per row{% if db == "postgresql" %}: PostgreSQL caches 64 subtransactions per
    backend, past which every snapshot slows down, on replicas most{% else %}, which would cost a statement each{% endif %}.
{%- endif %}
    """
    now = utcnow()
    ids = [new_id() for _ in rows]
    values = [
        {
            "id": user_id,
            "email": row.email,
            "full_name": row.full_name,
            "version": 1,
            "created_at": now,
            "updated_at": now,
        }
        for user_id, row in zip(ids, rows, strict=True)
    ]
    created: set[uuid.UUID] = set()
    for start in range(0, len(values), IMPORT_BATCH):
        batch = values[start : start + IMPORT_BATCH]
{%- if db == "mysql" %}
        if connection.dialect.is_mariadb:  # type: ignore[attr-defined]
            result = await connection.execute(_IMPORT.values(batch).returning(User.id))
            created.update(result.scalars())
        else:
            await connection.execute(_IMPORT.values(batch))
            new = [value["id"] for value in batch]
            created.update((await connection.execute(_EXISTING, {"ids": new})).scalars())
{%- else %}
        created.update((await connection.execute(_IMPORT.values(batch))).scalars())
{%- endif %}
    return [
        UserImportResult(email=row.email, status="created", id=user_id)
        if user_id in created
        else UserImportResult(email=row.email, status="duplicate")
        for user_id, row in zip(ids, rows, strict=True)
    ]


async def get_or_create_role(session: AsyncSession, name: str) -> Role:
    """Race-safe get-or-create: if a concurrent request inserts the same role
    first, the savepoint rolls back only our INSERT and we read theirs."""
    role = await session.scalar(select(Role).where(Role.name == name))
    if role is not None:
        return role
    role = Role(name=name)
    try:
        async with session.begin_nested():
            session.add(role)
    except IntegrityError:
        return (await session.scalars(select(Role).where(Role.name == name))).one()
    return role


async def assign_role(session: AsyncSession, user_id: uuid.UUID, role_name: str) -> UserRead:
    user = await _load_user(session, user_id, roles=True)
    if role_name not in {role.name for role in user.roles}:
        if len(user.roles) >= MAX_ROLES:
            raise ConflictError(f"user {user_id} already has the maximum of {MAX_ROLES} roles")
        user.roles.append(await get_or_create_role(session, role_name))
        # The roles are part of the user a client reads: touching the row bumps
        # `version` too, so a client holding the old version sees the change.
        user.updated_at = utcnow()
        await session.flush()
    return await get_user(await session.connection(), user_id)
{%- if examples %}


_POST_COUNTS = (
    select(User.id, User.{{ "full_name" if cookiecutter.auth == "jwt" else "email" }}, User.post_count)
    .where(User.is_deleted == false())
    .order_by(User.post_count.desc(), User.id.desc())
    .limit(bindparam("limit"))
)


async def users_with_post_counts(
    connection: AsyncConnection, *, limit: int
) -> Sequence[Row[uuid.UUID, str, int]]:
    """The `limit` users with the most posts (the newest first among equals): the
    start of the (post_count, id) index, read backwards. The counts are kept by the
    writes of posts, in their transaction, so no request counts a whole table."""
    return (await connection.execute(_POST_COUNTS, {"limit": limit})).all()
{%- endif %}
