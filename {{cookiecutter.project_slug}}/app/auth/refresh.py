"""Refresh-token rotation with reuse detection, stored in the database.

A refresh spends its token and issues the next one of the same family. Spending is
one conditional UPDATE (`used_at IS NULL AND revoked_at IS NULL`), so of two
requests racing with one token exactly one wins, on every worker{{ "" if cookiecutter.database == "sqlite" else " and instance" }}. A
token that was already spent means it leaked (or was replayed): the whole family
is revoked, so neither the thief nor the user can refresh with it again and the
user logs in anew. Logging out revokes one family; logging out everywhere and
changing the password revoke every family of the user.
Docs: https://datatracker.ietf.org/doc/html/rfc9700#name-refresh-token-protection
"""

import uuid
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.auth.models import RefreshToken
from app.auth.tokens import Claims


async def remember(connection: AsyncConnection, claims: Claims) -> None:
    """Store a newly issued refresh token."""
    if claims.family is None:
        raise ValueError("an access token is not stored")
    await connection.execute(
        insert(RefreshToken).values(
            id=claims.token_id,
            family_id=claims.family,
            user_id=claims.subject,
            expires_at=claims.expires_at,
        )
    )


async def spend(connection: AsyncConnection, claims: Claims, now: datetime) -> bool:
    """Mark the token used; False when it was spent, revoked or expired already, or
    when its family was revoked (a token issued by a refresh that raced with a
    reuse is born into a revoked family, and dies at its first use)."""
    revoked = await connection.scalar(
        select(RefreshToken.id)
        .where(RefreshToken.family_id == claims.family, RefreshToken.revoked_at.is_not(None))
        .limit(1)
    )
    if revoked is not None:
        return False
    result = await connection.execute(
        update(RefreshToken)
        .where(
            RefreshToken.id == claims.token_id,
            RefreshToken.user_id == claims.subject,
            RefreshToken.used_at.is_(None),
            RefreshToken.revoked_at.is_(None),
            RefreshToken.expires_at > now,
        )
        .values(used_at=now)
    )
    return result.rowcount == 1


async def revoke_family(connection: AsyncConnection, family: uuid.UUID, now: datetime) -> None:
    await connection.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )


async def revoke_all(connection: AsyncConnection, user_id: uuid.UUID, now: datetime) -> None:
    """Revoke every family of the user: no refresh token of theirs works any more."""
    await connection.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
