{%- set examples = cookiecutter.include_example_models == "yes" -%}
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

import uuid
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, bindparam, {% if examples %}func, {% endif %}insert, select{% if examples %}, update{% endif %}
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import selectinload

from app.db.keys import new_id
from app.db.pagination import Keyset, Page, Position
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
# A UserRead carries at most this many posts (the newest) and its post_count; roles
# are capped when assigned. No response grows with the size of a user's history.
LATEST_POSTS = 5
{% else -%}
# Roles are capped when assigned: no response grows with a user's history.
{% endif -%}
MAX_ROLES = 20
USERS = Keyset(User.created_at, User.id)
_USER_FIELDS = {"id", "email", "full_name", "version", "created_at", "updated_at"}

{%- if examples %}

_POST_COUNT = (
    select(func.count(Post.id))
    .where(Post.author_id == User.id, Post.is_deleted.is_(False))
    .correlate(User)
    .scalar_subquery()
    .label("post_count")
)
{%- endif %}
_USERS = select(
    User.id,
    User.email,
    User.full_name,
    User.version,
    User.created_at,
    User.updated_at,
{%- if examples %}
    _POST_COUNT,
{%- endif %}
).where(User.is_deleted.is_(False))
_USERS_PAGE = (
    _USERS.order_by(*USERS.order_by()).limit(bindparam("limit")).offset(bindparam("offset"))
)
_ONE_USER = _USERS.where(User.id == bindparam("user_id"))
{%- if examples %}
_rank = (
    func.row_number()
    .over(partition_by=Post.author_id, order_by=(Post.created_at.desc(), Post.id.desc()))
    .label("rank")
)
_ranked = (
    select(Post.id, Post.author_id, Post.title, Post.view_count, Post.created_at, _rank)
    .where(Post.author_id.in_(bindparam("user_ids", expanding=True)), Post.is_deleted.is_(False))
    .subquery()
)
_LATEST_POSTS = select(_ranked).where(_ranked.c.rank <= LATEST_POSTS).order_by(_ranked.c.rank)
{%- endif %}
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


async def _latest_posts(
    connection: AsyncConnection, user_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[PostSummary]]:
    """Each user's LATEST_POSTS newest posts, for all the users in one query."""
    posts: dict[uuid.UUID, list[PostSummary]] = defaultdict(list)
    for row in await connection.execute(_LATEST_POSTS, {"user_ids": user_ids}):
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
    for user_id, name in await connection.execute(_ROLES, {"user_ids": user_ids}):
        roles[user_id].append(RoleRead(name=name))
    return roles


async def _with_details(
    connection: AsyncConnection, rows: Sequence[Row[*tuple[Any, ...]]]
) -> list[UserRead]:
    """UserReads for rows of _USERS: {% if examples %}two more queries{% else %}one more query{% endif %}, whatever the page size."""
    if not rows:
        return []
    ids = [row.id for row in rows]
{%- if examples %}
    posts, roles = await _latest_posts(connection, ids), await _roles(connection, ids)
{%- else %}
    roles = await _roles(connection, ids)
{%- endif %}
    return [
        UserRead(
            id=row.id,
            email=row.email,
            full_name=row.full_name,
            version=row.version,
            created_at=row.created_at,
            updated_at=row.updated_at,
{%- if examples %}
            post_count=row.post_count,
{%- endif %}
            roles=roles.get(row.id, []),
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
    email_contains: str | None = None,
) -> Page[UserRead]:
    """Users in creation order, a page at a time (see app.db.pagination)."""
    stmt = _USERS_PAGE
    if email_contains:
        # Emails are stored lower-case, so this is a case-insensitive search.
        stmt = stmt.where(User.email.contains(email_contains.lower(), autoescape=True))
    if after is not None:
        stmt = stmt.where(USERS.after(after))
    rows = (await connection.execute(stmt, {"limit": limit + 1, "offset": offset})).all()
    users = await _with_details(connection, rows[:limit])
    more = len(rows) > limit
    return Page(users, Position(users[-1].created_at, users[-1].id) if more else None)


async def get_user(connection: AsyncConnection, user_id: uuid.UUID) -> UserRead:
    rows = (await connection.execute(_ONE_USER, {"user_id": user_id})).all()
    if not rows:
        raise NotFoundError(f"user {user_id} not found")
    return (await _with_details(connection, rows))[0]


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


async def import_users(session: AsyncSession, rows: Sequence[UserCreate]) -> list[UserImportResult]:
    """Partial success by design: each row gets its own savepoint, so a duplicate
    is reported for that row and the others are still created."""
    results: list[UserImportResult] = []
    for row in rows:
        user = User(email=row.email, full_name=row.full_name)
        try:
            async with session.begin_nested():
                session.add(user)
        except IntegrityError:
            results.append(UserImportResult(email=row.email, status="duplicate"))
        else:
            results.append(UserImportResult(email=row.email, status="created", id=user.id))
    return results


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


_post_count = func.count(Post.id).label("post_count")
_POST_COUNTS = (
    select(User.id, User.{{ "full_name" if cookiecutter.auth == "jwt" else "email" }}, _post_count)
    .outerjoin(Post, (Post.author_id == User.id) & Post.is_deleted.is_(False))
    .where(User.is_deleted.is_(False))
    .group_by(User.id, User.{{ "full_name" if cookiecutter.auth == "jwt" else "email" }})
    .order_by(_post_count.desc(), User.{{ "id" if cookiecutter.auth == "jwt" else "email" }})
    .limit(bindparam("limit"))
)


async def users_with_post_counts(
    connection: AsyncConnection, *, limit: int
) -> Sequence[Row[uuid.UUID, str, int]]:
    """Aggregation: one GROUP BY instead of loading every post. A bounded top-N
    report (at most `limit` rows), not a list to page through."""
    return (await connection.execute(_POST_COUNTS, {"limit": limit})).all()
{%- endif %}
