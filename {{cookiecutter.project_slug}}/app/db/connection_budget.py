{%- set db = cookiecutter.database -%}
"""Whether the pools of every worker fit in the database server's connection limit.

Each worker process of each instance has pools of its own, so together they can
open instances x workers x (pool_size + max_overflow + EXPORT_MAX_CONCURRENT for
streamed responses + 1 for /readyz) connections to a server. When
that exceeds the server's `max_connections`, the surplus fails only under load, when
it hurts most. Each worker checks once at start-up, in the background (start-up
never waits for the database), and logs one WARNING naming both numbers.
{%- if db == "postgresql" %}
Behind PgBouncer the pools hold client connections to PgBouncer, and the line (at INFO)
says which limits apply then.
{%- endif %}
"""

import logging

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.engine import Engines
from app.settings import PoolOptions, Settings

logger = logging.getLogger(__name__)
{%- if db == "postgresql" %}
MAX_CONNECTIONS = text("SHOW max_connections")
{%- else %}
MAX_CONNECTIONS = text("SELECT @@max_connections")
{%- endif %}


async def check_connection_budget(settings: Settings, engines: Engines) -> None:
    """Log a WARNING for each server whose limit the pools can exceed."""
{%- if db == "postgresql" %}
    if settings.db_pgbouncer:
        await _explain_pgbouncer_limits(settings, engines.pools["primary"])
        return
{%- endif %}
    pools = {"primary": settings.primary_pool, "replica": settings.replica_pool}
    for name in [name for name in pools if name in engines.pools]:
        limit = await _max_connections(name, engines.pools[name])
        if limit is None:
            continue
        pool = pools[name]
        demand = _demand(settings, pool)
        if demand > limit:
            logger.warning(
                "the %s's connection pools can open %d connections, more than its "
                "max_connections of %d: %d instance(s) x %d worker(s) (WEB_CONCURRENCY) x "
                "(pool size %d + max overflow %d + %d for streams (EXPORT_MAX_CONCURRENT) + "
                "1 for /readyz); lower the pool settings or the workers, or raise "
                "max_connections",
                name,
                demand,
                limit,
                settings.service_instances,
                settings.web_concurrency,
                pool.size,
                pool.max_overflow,
                settings.export_max_concurrent,
                extra={"pool": name, "connections": demand, "max_connections": limit},
            )


def _demand(settings: Settings, pool: PoolOptions) -> int:
    """The most connections one server's pools in every worker can open together."""
    per_worker = pool.size + pool.max_overflow + settings.export_max_concurrent + 1
    return settings.service_instances * settings.web_concurrency * per_worker


async def _max_connections(name: str, engine: AsyncEngine) -> int | None:
    try:
        async with engine.connect() as connection:
            return int(await connection.scalar(MAX_CONNECTIONS))
    except SQLAlchemyError as exc:
        logger.warning("connection limit of the %s not checked: %s", name, exc)
        return None
{%- if db == "postgresql" %}


async def _explain_pgbouncer_limits(settings: Settings, engine: AsyncEngine) -> None:
    limit = await _max_connections("primary", engine)
    demand = _demand(settings, settings.primary_pool)
    logger.info(
        "behind PgBouncer: the pools can open %d client connections to PgBouncer, which "
        "its max_client_conn must allow; the server connections are PgBouncer's pool "
        "(default_pool_size per database and user, for each PgBouncer), and those must "
        "stay within the server's max_connections of %s",
        demand,
        limit if limit is not None else "(unknown)",
        extra={"connections": demand, "max_connections": limit},
    )
{%- endif %}
