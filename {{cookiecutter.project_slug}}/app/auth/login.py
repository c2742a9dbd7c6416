"""Password checks, limited per account in the database.

An account allows LOGIN_MAX_FAILURES password checks; the one that fails with the
count full locks it for LOGIN_LOCKOUT_SECONDS. The check is *claimed* before the
(slow) hash runs, by one conditional UPDATE that counts it only while the account
is not locked and the count is not full, so a burst of parallel guesses gets no
more checks than the limit, on every worker{{ "" if cookiecutter.database == "sqlite" else " and instance" }}: the others are refused without
one. A refused attempt still verifies against a stand-in hash, so a locked account
answers as slowly as a wrong password and the timing does not tell it exists. A
success clears the count, unless a failure locked the account meanwhile, and stores
a new hash when the hashing parameters changed since the last one.
Docs: https://cheatsheetseries.owasp.org/cheatsheets/Authentication_Cheat_Sheet.html#account-lockout
"""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, bindparam, case, or_, select, update

from app.auth.passwords import Passwords
from app.db.session import Database
from app.db.types import utcnow
from app.settings import Settings
from app.users.models import User

_LIVE = User.is_deleted.is_(False)
_LOCK_OVER = User.locked_until <= bindparam("now")
_CHECK_ALLOWED = or_(
    and_(User.locked_until.is_(None), User.failed_logins < bindparam("max_checks")), _LOCK_OVER
)
# failed_logins first: MySQL evaluates SET from left to right, and both must see the
# lock as it was before this UPDATE.
_COUNT_THE_CHECK = (
    (User.failed_logins, case((_LOCK_OVER, 1), else_=User.failed_logins + 1)),
    (User.locked_until, case((_LOCK_OVER, None), else_=User.locked_until)),
)


@dataclass(frozen=True)
class Account:
    id: uuid.UUID
    token_generation: int


async def check_password(
    db: Database,
    passwords: Passwords,
    settings: Settings,
    password: str,
    *,
    email: str | None = None,
    user_id: uuid.UUID | None = None,
) -> Account | None:
    """The account (by `email` or `user_id`) when `password` is right and the account
    allowed one more check, else None."""
    if (email is None) == (user_id is None):
        raise ValueError("give the email or the user id")
    whose = User.email == email.lower() if email is not None else User.id == user_id
    now = utcnow()
    claimed = await _claim_a_check(db, whose, now, settings.login_max_failures)
    valid, new_hash = await passwords.verify(
        password, claimed.password_hash if claimed is not None else None
    )
    if claimed is None:
        return None
    if valid:
        async with db.transaction() as connection:
            cleared: dict[str, object] = {"failed_logins": 0}
            if new_hash is not None:
                cleared["password_hash"] = new_hash
            await connection.execute(
                update(User)
                .where(User.id == claimed.id, User.locked_until.is_(None))
                .values(cleared)
            )
        return Account(claimed.id, claimed.token_generation)
    if claimed.checks >= settings.login_max_failures:
        # The last check the account allowed failed. (Other failures write nothing
        # more, so a wrong password costs what an unknown email does.)
        async with db.transaction() as connection:
            await connection.execute(
                update(User)
                .where(User.id == claimed.id, User.locked_until.is_(None))
                .values(locked_until=now + timedelta(seconds=settings.login_lockout_seconds))
            )
    return None


@dataclass(frozen=True)
class _Claimed:
    id: uuid.UUID
    password_hash: str | None
    token_generation: int
    checks: int  # this one included


async def _claim_a_check(
    db: Database, whose: ColumnElement[bool], now: datetime, max_checks: int
) -> _Claimed | None:
    """Count one check against the account, in a transaction of its own (committed
    before the hash runs); None when there is no such live account or it allows no
    more checks now."""
    async with db.transaction() as connection:
        counted = await connection.execute(
            update(User).where(whose, _LIVE, _CHECK_ALLOWED).ordered_values(*_COUNT_THE_CHECK),
            {"now": now, "max_checks": max_checks},
        )
        row = (
            await connection.execute(
                select(
                    User.id, User.password_hash, User.token_generation, User.failed_logins
                ).where(whose, _LIVE)
            )
        ).first()
    if counted.rowcount != 1 or row is None:
        return None
    return _Claimed(row.id, row.password_hash, row.token_generation, row.failed_logins)
