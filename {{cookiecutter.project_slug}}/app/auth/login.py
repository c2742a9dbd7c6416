{%- set db = cookiecutter.database -%}
"""Password checks, limited per account in the database.

An account allows LOGIN_MAX_FAILURES password checks; the one that fails with the
count full locks it for LOGIN_LOCKOUT_SECONDS. The check is *claimed* before the
(slow) hash runs, in a short transaction of its own that {% if db == "sqlite" %}holds the write lock
(BEGIN IMMEDIATE){% else %}locks the account's row
(SELECT ... FOR UPDATE){% endif %}, counts the check only while the account is not locked and the
count is not full, and commits: a burst of parallel guesses gets no more checks than
the limit, on every worker{{ "" if db == "sqlite" else " and instance" }}, and the others are refused without one. A refused
attempt still verifies against a stand-in hash, so a locked account answers as
slowly as a wrong password and the timing does not tell it exists. A success clears
the count, unless a failure locked the account meanwhile, and stores a new hash
when the hashing parameters changed since the last one.
Docs: https://cheatsheetseries.owasp.org/cheatsheets/Authentication_Cheat_Sheet.html#account-lockout
"""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, select, update

from app.auth.passwords import Passwords
from app.db.session import Database
from app.db.types import utcnow
from app.settings import Settings
from app.users.models import User

_LIVE = User.is_deleted.is_(False)


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
{%- if db == "mysql" %}
    # live_email: the indexed email of a live user (app.users.models).
    whose = User.live_email == email.lower() if email is not None else User.id == user_id
{%- else %}
    whose = User.email == email.lower() if email is not None else User.id == user_id
{%- endif %}
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
        account = (
            await connection.execute(
                select(
                    User.id,
                    User.password_hash,
                    User.token_generation,
                    User.failed_logins,
                    User.locked_until,
                )
                .where(whose, _LIVE)
                .with_for_update()
            )
        ).first()
        if account is None:
            return None
        locked = account.locked_until is not None and account.locked_until > now
        if locked or (account.locked_until is None and account.failed_logins >= max_checks):
            return None  # locked, or every check it allows is taken (some still running)
        # A lock-out that is over starts the count again.
        checks = 1 if account.locked_until is not None else account.failed_logins + 1
        await connection.execute(
            update(User)
            .where(User.id == account.id)
            .values(failed_logins=checks, locked_until=None)
        )
    return _Claimed(account.id, account.password_hash, account.token_generation, checks)
