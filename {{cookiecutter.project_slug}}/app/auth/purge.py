{%- set db = cookiecutter.database -%}
"""Removing what authentication no longer needs, batch by batch: refresh tokens that
have expired or were revoked, and throttle windows too old to count.

A refresh token without its row can never be spent (app.auth.refresh spends by
UPDATE), so deleting an expired or revoked one loses nothing. Each batch is one
short transaction{% if db != "sqlite" %} (`FOR UPDATE SKIP LOCKED`: two purges at once take different
rows){% endif %}; `scripts/purge_deleted.py` runs this after the users' purge.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, delete, func, or_, select

from app.auth.models import RefreshToken, ThrottleWindow
from app.db.session import Database

_DONE_TOKENS = (
    select(RefreshToken.id)
    .where(or_(RefreshToken.expires_at < bindparam("now"), RefreshToken.revoked_at.is_not(None)))
    .limit(bindparam("batch_size"))
{%- if db != "sqlite" %}
    .with_for_update(skip_locked=True)
{%- endif %}
)
_DELETE_TOKENS = delete(RefreshToken).where(RefreshToken.id.in_(bindparam("ids", expanding=True)))
# A window's rows at a time: one per client that called in it.
_OLDEST_WINDOW = select(func.min(ThrottleWindow.window_start)).where(
    ThrottleWindow.window_start < bindparam("oldest_counted")
)
_DELETE_WINDOW = delete(ThrottleWindow).where(ThrottleWindow.window_start == bindparam("start"))


@dataclass(frozen=True)
class PurgedAuth:
    refresh_tokens: int = 0
    throttle_rows: int = 0


async def purge_auth(
    database: Database, now: datetime, throttle_window_seconds: int, batch_size: int
) -> PurgedAuth:
    """Delete every expired or revoked refresh token, in batches, and every throttle
    window older than the two the throttle reads, a window at a time."""
    tokens = 0
    while True:
        async with database.transaction() as connection:
            ids = (
                await connection.scalars(_DONE_TOKENS, {"now": now, "batch_size": batch_size})
            ).all()
            if ids:
                await connection.execute(_DELETE_TOKENS, {"ids": ids})
        tokens += len(ids)
        if len(ids) < batch_size:
            break
    oldest_counted = int(now.timestamp()) - 2 * throttle_window_seconds
    rows = 0
    while True:
        async with database.transaction() as connection:
            start = await connection.scalar(_OLDEST_WINDOW, {"oldest_counted": oldest_counted})
            if start is None:
                break
            rows += (await connection.execute(_DELETE_WINDOW, {"start": start})).rowcount
    return PurgedAuth(refresh_tokens=tokens, throttle_rows=rows)
