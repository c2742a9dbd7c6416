"""Data access for users: every query the example domain needs, in one module.

Functions take the request's session and never commit: the session dependency
commits once, when the endpoint has succeeded.
Docs: https://docs.sqlalchemy.org/en/20/orm/queryguide/index.html
"""

import uuid
from collections.abc import Sequence

from sqlalchemy import Row, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.db.types import utcnow
from app.errors import ConflictError, NotFoundError
from app.posts.models import Post
from app.users.models import Role, User
from app.users.schemas import UserCreate, UserImportResult, UserUpdate

# The user's posts and roles come in one extra SELECT each, whatever the page size.
# Posts without their bodies (a response shows summaries): touching an unloaded
# column raises instead of quietly costing a query per post.
WITH_POSTS_AND_ROLES = (
    selectinload(User.posts).load_only(
        Post.id, Post.title, Post.view_count, Post.created_at, raiseload=True
    ),
    selectinload(User.roles),
)


def _email_taken(email: str) -> ConflictError:
    return ConflictError(f"a user with email {email!r} already exists")


async def create_user(session: AsyncSession, data: UserCreate) -> User:
    """The unique constraint decides, not a SELECT first: two concurrent requests
    cannot both pass it. A 409 fails the request, whose transaction the session
    dependency then rolls back, so no savepoint is needed here."""
    user = User(email=data.email, full_name=data.full_name, posts=[], roles=[])
    session.add(user)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise _email_taken(data.email) from exc
    return user


async def list_users(
    session: AsyncSession, *, limit: int, offset: int, email_contains: str | None = None
) -> Sequence[User]:
    stmt = select(User).options(*WITH_POSTS_AND_ROLES).order_by(User.created_at, User.id)
    if email_contains:
        stmt = stmt.where(User.email.contains(email_contains.lower(), autoescape=True))
    result = await session.scalars(stmt.limit(limit).offset(offset))
    return result.all()


async def get_user(session: AsyncSession, user_id: uuid.UUID) -> User:
    user = await session.scalar(
        select(User).where(User.id == user_id).options(*WITH_POSTS_AND_ROLES)
    )
    if user is None:
        raise NotFoundError(f"user {user_id} not found")
    return user


async def update_user(session: AsyncSession, user_id: uuid.UUID, data: UserUpdate) -> User:
    user = await get_user(session, user_id)
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
        raise _email_taken(data.email or "") from exc
    return user


async def soft_delete_user(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Hide the user and their posts (one UPDATE for all of them); rows stay for
    audits and undo."""
    user = await session.get(User, user_id)
    if user is None or user.is_deleted:
        raise NotFoundError(f"user {user_id} not found")
    user.mark_deleted()
    await session.execute(
        update(Post)
        .where(Post.author_id == user_id, Post.is_deleted.is_(False))
        .values(is_deleted=True, deleted_at=user.deleted_at)
    )
    await session.flush()


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


async def assign_role(session: AsyncSession, user_id: uuid.UUID, role_name: str) -> User:
    user = await get_user(session, user_id)
    role = await get_or_create_role(session, role_name)
    if role not in user.roles:
        user.roles.append(role)
        # The roles are part of the user a client reads: touching the row bumps
        # `version` too, so a client holding the old version sees the change.
        user.updated_at = utcnow()
        await session.flush()
    return user


async def users_with_post_counts(
    session: AsyncSession, *, limit: int
) -> Sequence[Row[uuid.UUID, str, int]]:
    """Aggregation: one GROUP BY instead of loading every post."""
    post_count = func.count(Post.id).label("post_count")
    stmt = (
        select(User.id, User.email, post_count)
        .outerjoin(Post, Post.author_id == User.id)
        .group_by(User.id, User.email)
        .order_by(post_count.desc(), User.email)
        .limit(limit)
    )
    return (await session.execute(stmt)).all()
