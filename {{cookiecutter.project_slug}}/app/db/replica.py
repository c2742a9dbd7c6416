"""Reads on the replica, and on the primary while the replica cannot be reached.

A read connection is taken from the replica's pool. When that fails (the replica
refuses the connection, does not answer within DB_REPLICA_CONNECT_TIMEOUT, or its
pool has nothing free within DB_REPLICA_POOL_TIMEOUT), DB_REPLICA_FALLBACK decides:

- `primary` (the default): this read, and every read after it, is served by the
  primary's own pool (no connection is opened for the purpose, so the primary's
  pool size still bounds what this process asks of it). One WARNING says so, each
  such read counts in `db_replica_fallback_reads_total`, and the replica is tried
  again every DB_REPLICA_RETRY_SECONDS in the background; the first check it passes
  sends reads back to it (logged too).
- `fail`: the read fails (a 503 with Retry-After), as when a replica is all there
  is to read from: for a primary that must not take the read load.

A read only falls back when it cannot get a replica connection: a statement that
fails on a connection it already has is an error like any other.
"""

import asyncio
import contextlib
import contextvars
import logging
from typing import Literal

from prometheus_client import Counter
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.db.pool import connected

logger = logging.getLogger(__name__)

FALLBACK_READS = Counter(
    "db_replica_fallback_reads",
    "Reads served by the primary because the replica could not be reached.",
)
CHECK = text("SELECT 1")
# What a failed checkout raises: the driver's error (refused, timed out, lost), or the
# pool's own timeout.
UNREACHABLE = (DBAPIError, PoolTimeoutError)


class ReplicaFallback:
    """Where reads go: the replica, or the primary while the replica is down."""

    def __init__(
        self,
        replica: AsyncEngine,
        *,
        policy: Literal["primary", "fail"],
        retry_seconds: float,
        check_timeout: float,
    ) -> None:
        self.replica = replica  # checked again while it is down
        self.policy = policy
        self.retry_seconds = retry_seconds
        self.check_timeout = check_timeout
        self._recheck: asyncio.Task[None] | None = None

    @property
    def replica_is_down(self) -> bool:
        return self._recheck is not None

    async def connect(self, on_replica: AsyncEngine, on_primary: AsyncEngine) -> AsyncConnection:
        """A checked-out connection of `on_replica`, else (policy `primary`) of
        `on_primary`: the same server roles, whichever pool the caller reads from."""
        if not self.replica_is_down:
            try:
                return await connected(on_replica)
            except UNREACHABLE as exc:
                if self.policy == "fail":
                    raise
                self._replica_failed(exc)
        FALLBACK_READS.inc()
        return await connected(on_primary)

    def _replica_failed(self, error: Exception) -> None:
        if self._recheck is not None:
            return  # another read found it down first
        logger.warning(
            "the replica cannot be reached, reads go to the primary; trying it again "
            "every %s s: %s",
            self.retry_seconds,
            error,
        )
        # A context of its own: not the request's that happened to find the replica down
        # (its request id, its deadline).
        self._recheck = asyncio.create_task(
            self._until_the_replica_answers(), context=contextvars.Context()
        )

    async def _until_the_replica_answers(self) -> None:
        while True:
            await asyncio.sleep(self.retry_seconds)
            try:
                async with asyncio.timeout(self.check_timeout), self.replica.connect() as conn:
                    await conn.execute(CHECK)
            except (*UNREACHABLE, TimeoutError) as exc:
                logger.info("the replica still cannot be reached: %s", exc)
                continue
            logger.warning("the replica answers again: reads go back to it")
            self._recheck = None
            return

    async def close(self) -> None:
        task, self._recheck = self._recheck, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
