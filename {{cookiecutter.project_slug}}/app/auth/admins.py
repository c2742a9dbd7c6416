"""Giving and taking the admin role outside the API: the first admin has to come from
somewhere (`python -m scripts.users grant-admin EMAIL`)."""

import uuid

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app.auth.access import ADMIN_ROLE
from app.db.session import Database
from app.db.types import utcnow
from app.users.models import User
from app.users.repository import get_or_create_role


async def set_admin(database: Database, email: str, *, admin: bool) -> uuid.UUID | None:
    """Make the live user with `email` an admin, or no longer one; their id, or None
    when there is no such user. It takes effect at their next request."""
    async with database.write_session() as session, session.begin():
        user = await session.scalar(
            select(User).where(User.email == email.lower()).options(selectinload(User.roles))
        )
        if user is None:
            return None
        is_admin = any(role.name == ADMIN_ROLE for role in user.roles)
        if admin and not is_admin:
            user.roles.append(await get_or_create_role(session, ADMIN_ROLE))
        elif not admin and is_admin:
            user.roles = [role for role in user.roles if role.name != ADMIN_ROLE]
        else:
            return user.id
        # Roles are part of the user a client reads: the row's version moves on too.
        user.updated_at = utcnow()
    user_id: uuid.UUID = user.id
    return user_id
