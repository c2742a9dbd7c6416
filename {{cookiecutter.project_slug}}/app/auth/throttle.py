{%- set db = cookiecutter.database -%}
"""Throttling of the endpoints that guess or create: per client address, in the database.

Each of `/auth/token`, `/auth/register` and `/auth/refresh` takes at most
AUTH_THROTTLE_REQUESTS requests from one client address within a sliding window of
AUTH_THROTTLE_WINDOW_SECONDS; beyond, 429 with `Retry-After`. The counts live in
this service's own database (table `auth_throttle`), so every worker{{ "" if db == "sqlite" else " and instance" }}
shares them without another server to run. The window slides by weighting the
previous fixed window's count by how much of it still overlaps, as the usual
"sliding window counter" does: one row per address and window, one upsert{% if db == "mysql" %} and two
reads{% else %} and one
read{% endif %} per request, and no burst of twice the limit at a window's edge. Refused
requests count too, so a client that keeps hammering stays refused.

The client address is the peer's, or the one `X-Forwarded-For` names when the peer
is a proxy listed in FORWARDED_ALLOW_IPS (app.main). IPv6 clients are counted per
/64 network: one host commonly holds a whole /64 and could otherwise rotate through
it. Old windows are removed by the purge job (app.auth.purge).
Docs: https://cheatsheetseries.owasp.org/cheatsheets/Authentication_Cheat_Sheet.html
"""

import ipaddress
import math
import time
from collections.abc import Awaitable, Callable

from fastapi import HTTPException, Request, status
from sqlalchemy import bindparam, select
{%- if db == "mysql" %}
from sqlalchemy.dialects.mysql import insert
{%- else %}
from sqlalchemy.dialects.{{ db }} import insert
{%- endif %}
from sqlalchemy.ext.asyncio import AsyncConnection

from app.auth.access import settings_of
from app.auth.models import ThrottleWindow
from app.db.session import database

_HITS = select(ThrottleWindow.hits).where(
    ThrottleWindow.bucket == bindparam("bucket"),
    ThrottleWindow.window_start == bindparam("window_start"),
)


def client_key(host: str | None) -> str:
    """The address a client is counted by: an IPv4 address, or an IPv6 /64."""
    if host is None:
        return "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host[:45]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def seconds_to_wait(
    limit: int, window: int, elapsed: float, previous: int, current: int
) -> float | None:
    """None when the request is within the limit, else how long until one would be.

    `previous` and `current` are the fixed windows' counts, this request included in
    `current`; the estimate is `previous * (1 - elapsed / window) + current`."""
    weight = 1 - elapsed / window
    if previous * weight + current <= limit:
        return None
    if current <= limit:  # later in this window, the previous one weighs less
        return window * (1 - (limit - current) / previous) - elapsed
    # Only in the next window, where this one is the previous.
    return window - elapsed + window * (1 - limit / current)


async def _count(
    connection: AsyncConnection, bucket: str, start: int, window: int
) -> tuple[int, int]:
    """Count one hit in the window that starts at `start`: (previous count, current)."""
    upsert = insert(ThrottleWindow).values(bucket=bucket, window_start=start, hits=1)
{%- if db == "mysql" %}
    await connection.execute(upsert.on_duplicate_key_update(hits=ThrottleWindow.hits + 1))
    current = await connection.scalar(_HITS, {"bucket": bucket, "window_start": start})
{%- else %}
    current = await connection.scalar(
        upsert.on_conflict_do_update(
            index_elements=[ThrottleWindow.bucket, ThrottleWindow.window_start],
            set_={"hits": ThrottleWindow.hits + 1},
        ).returning(ThrottleWindow.hits)
    )
{%- endif %}
    previous = await connection.scalar(_HITS, {"bucket": bucket, "window_start": start - window})
    return previous or 0, current or 1


def throttled(endpoint: str) -> Callable[[Request], Awaitable[None]]:
    """A dependency that counts the request against its client and refuses it (429)
    when the client is over the limit."""

    async def throttle(request: Request) -> None:
        settings = settings_of(request)
        window = settings.auth_throttle_window_seconds
        now = time.time()
        start = int(now // window) * window
        bucket = f"{endpoint}:{client_key(request.client.host if request.client else None)}"
        async with database(request).transaction() as connection:
            previous, current = await _count(connection, bucket, start, window)
        wait = seconds_to_wait(
            settings.auth_throttle_requests, window, now - start, previous, current
        )
        if wait is not None:
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                "too many requests from your address; retry later",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )

    return throttle
