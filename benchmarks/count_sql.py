"""The baked app with a statement counter, for the statements-per-request column.

Only used in the counting pass (never in a timed run):

    python -m uvicorn count_sql:create_app --factory --app-dir <benchmarks> (cwd: the baked project)

Counts what reaches the database through SQLAlchemy: every statement the engine
executes (`before_cursor_execute`; one `executemany` batch counts once; SAVEPOINT,
RELEASE and ROLLBACK TO are statements too), BEGIN/COMMIT/ROLLBACK (driver calls,
seen through the engine's events) and the pool's pre-ping. `GET /__bench__/sql` returns the totals.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import event
from sqlalchemy.engine import Engine

COUNTS: Counter[str] = Counter()


@event.listens_for(Engine, "before_cursor_execute")
def _statement(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    COUNTS["statements"] += 1
    COUNTS[statement.lstrip().split(None, 1)[0].upper()] += 1


# SAVEPOINT, RELEASE and ROLLBACK TO are executed as statements (counted above);
# BEGIN, COMMIT and ROLLBACK are driver calls, seen only through these events.
for _name in ("begin", "commit", "rollback"):

    def _make(name: str) -> Any:
        def _listener(*_args: Any, **_kwargs: Any) -> None:
            COUNTS["statements"] += 1
            COUNTS[name.upper()] += 1

        return _listener

    event.listen(Engine, _name, _make(_name))


def _count_pings() -> None:
    try:
        from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg as Dialect
    except ImportError:  # pragma: no cover - other databases
        return
    original = Dialect.do_ping

    def do_ping(self: Any, dbapi_connection: Any) -> bool:
        COUNTS["statements"] += 1
        COUNTS["PING"] += 1
        result: bool = original(self, dbapi_connection)  # type: ignore[no-untyped-call]
        return result

    Dialect.do_ping = do_ping  # type: ignore[method-assign]


_count_pings()


def create_app() -> FastAPI:
    from app.main import create_app as create_baked_app  # type: ignore[import-not-found]

    app: FastAPI = create_baked_app()  # the baked project's factory

    @app.get("/__bench__/sql", include_in_schema=False)
    async def statements() -> JSONResponse:
        return JSONResponse(dict(COUNTS))

    return app
