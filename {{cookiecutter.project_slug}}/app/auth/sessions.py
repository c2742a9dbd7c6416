"""A user's sessions as a whole: the token generation that every access token must
carry, and ending every session at once.

Logging out everywhere and changing the password both end every session: every
refresh family of the user is revoked, and the user's token generation moves on,
so access tokens issued before it are refused at their next use (app.auth.access)
rather than when they expire. A counter in the user's row, not a time, decides:
no clock of any instance has to agree with another's.
"""

import uuid
from datetime import datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.auth import refresh
from app.users.models import User

_GENERATION = select(User.token_generation).where(
    User.id == bindparam("user_id"), User.is_deleted.is_(False)
)


async def live_generation(connection: AsyncConnection, user_id: uuid.UUID) -> int | None:
    """The user's token generation, or None when the user is deleted or unknown."""
    generation: int | None = await connection.scalar(_GENERATION, {"user_id": user_id})
    return generation


async def end_every_session(
    connection: AsyncConnection,
    user_id: uuid.UUID,
    now: datetime,
    *,
    password_hash: str | None = None,
) -> None:
    """Revoke every refresh family and start a new token generation; with
    `password_hash`, store it in the same UPDATE."""
    values: dict[str, object] = {"token_generation": User.token_generation + 1}
    if password_hash is not None:
        values["password_hash"] = password_hash
    await connection.execute(update(User).where(User.id == user_id).values(values))
    await refresh.revoke_all(connection, user_id, now)
