"""Log every statement slower than a threshold, with its duration.

Enabled by `DB_SLOW_QUERY_MS`; off by default, so it costs nothing unless asked.
Docs: https://docs.sqlalchemy.org/en/20/faq/performance.html#query-profiling
"""

import logging
import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

logger = logging.getLogger("app.db.slow_query")


def install_slow_query_log(engine: AsyncEngine, threshold_ms: float) -> None:
    threshold = threshold_ms / 1000

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _start(conn: Connection, *_: Any) -> None:
        conn.info.setdefault("query_started", []).append(time.perf_counter())

    @event.listens_for(engine.sync_engine, "after_cursor_execute")
    def _finish(conn: Connection, _cursor: Any, statement: str, *_: Any) -> None:
        elapsed = time.perf_counter() - conn.info["query_started"].pop()
        if elapsed >= threshold:
            logger.warning(
                "slow query (%.1f ms): %s",
                elapsed * 1000,
                statement,
                extra={"duration_ms": round(elapsed * 1000, 2), "statement": statement},
            )
