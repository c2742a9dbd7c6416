"""Logins, throttled per account in the database.

A failed login counts against its account with one UPDATE, so the count holds
across workers{{ '' if cookiecutter.database == 'sqlite' else ' and instances' }}. After `LOGIN_MAX_FAILURES` failures in a row the
account is locked for `LOGIN_LOCKOUT_SECONDS`: until then even the right password
is refused, with the same 401 as a wrong one, and the count starts again. A
successful login clears the count, and stores a new hash when the hashing
parameters changed since the last one.
"""

import uuid
from datetime import timedelta

from sqlalchemy import bindparam, case, literal, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.auth.passwords import Passwords
from app.db.session import Database
from app.db.types import utcnow
from app.settings import Settings
from app.users.models import User

_LIVE_USER = select(User.id).where(User.id == bindparam("user_id"), User.is_deleted.is_(False))
_ACCOUNT = select(User.id, User.password_hash, User.locked_until).where(
    User.email == bindparam("email"), User.is_deleted.is_(False)
)


async def authenticate(
    db: Database, passwords: Passwords, settings: Settings, email: str, password: str
) -> uuid.UUID | None:
    """The user id when `password` is right and the account is not locked, else None."""
    async with db.{{ "primary" if cookiecutter.database != "sqlite" else "read" }}() as connection:
        account = (await connection.execute(_ACCOUNT, {"email": email.lower()})).first()
    # The hash is checked in every case, the account's or a stand-in: the same time.
    valid, new_hash = await passwords.verify(password, account.password_hash if account else None)
    if account is None:
        return None
    now = utcnow()
    if account.locked_until is not None and account.locked_until > now:
        return None
    async with db.transaction() as connection:
        if not valid:
            failures = User.failed_logins + 1
            locks = failures >= settings.login_max_failures
            lock_until = literal(
                now + timedelta(seconds=settings.login_lockout_seconds), User.locked_until.type
            )
{%- if cookiecutter.database == "mysql" %}
            # locked_until first: MySQL evaluates SET from left to right.
            await connection.execute(
                update(User)
                .where(User.id == account.id)
                .ordered_values(
                    (User.locked_until, case((locks, lock_until), else_=User.locked_until)),
                    (User.failed_logins, case((locks, 0), else_=failures)),
                )
            )
{%- else %}
            # Both expressions see the row as it was before this UPDATE.
            await connection.execute(
                update(User)
                .where(User.id == account.id)
                .values(
                    locked_until=case((locks, lock_until), else_=User.locked_until),
                    failed_logins=case((locks, 0), else_=failures),
                )
            )
{%- endif %}
            return None
        cleared: dict[str, object] = {"failed_logins": 0, "locked_until": None}
        if new_hash is not None:
            cleared["password_hash"] = new_hash
        await connection.execute(update(User).where(User.id == account.id).values(cleared))
    user_id: uuid.UUID = account.id
    return user_id


async def is_live(connection: AsyncConnection, user_id: uuid.UUID) -> bool:
    """Whether the user exists and is not deleted."""
    return await connection.scalar(_LIVE_USER, {"user_id": user_id}) is not None
