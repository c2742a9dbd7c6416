"""The pool every engine of this service uses: SQLAlchemy's, counting its timeouts.

SQLAlchemy's queue pool raises `TimeoutError` when no connection frees up within
its timeout, but keeps no count of how often that happened; this subclass counts
each one in `db_pool_timeouts_total` (app.metrics), labelled with the pool's name
(the engine's `pool_logging_name`).
Docs: https://docs.sqlalchemy.org/en/20/core/pooling.html
"""

from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import AsyncAdaptedQueuePool, PoolProxiedConnection

from app.metrics import POOL_TIMEOUTS


class CountingPool(AsyncAdaptedQueuePool):
    # Log as SQLAlchemy's own pool does, under `sqlalchemy.pool` (quiet unless asked).
    _sqla_logger_namespace = "sqlalchemy.pool.impl.AsyncAdaptedQueuePool"

    def connect(self) -> PoolProxiedConnection:
        try:
            return super().connect()
        except PoolTimeoutError:
            POOL_TIMEOUTS.labels(pool=self.logging_name or "default").inc()
            raise


async def connected(engine: AsyncEngine) -> AsyncConnection:
    """A connection of `engine`, already checked out: the caller closes it."""
    connection = engine.connect()
    await connection.start()
    return connection
