"""Either app with a round-trip counter, for the round-trips-per-request column.

Only used in the counting pass (never in a timed run):

    python -m uvicorn count_sql:baked_app --factory --app-dir <benchmarks>  # cwd: the project
    python -m uvicorn count_sql:reference_app --factory --app-dir <benchmarks>

Both apps talk to PostgreSQL through asyncpg, so both are counted in the same place:
every asyncpg call that waits for the server once. A statement, a BEGIN, COMMIT or
ROLLBACK (simple queries), the pool's pre-ping, a PREPARE that SQLAlchemy's statement
cache missed, one fetch of a server-side cursor; an `executemany` counts once.
`GET /__bench__/sql` returns the totals, by kind.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import asyncpg.cursor  # type: ignore[import-untyped]
import asyncpg.prepared_stmt  # type: ignore[import-untyped]
from fastapi import FastAPI
from fastapi.responses import JSONResponse

COUNTS: Counter[str] = Counter()

# (class, method, kind): each call is one exchange with the server.
ROUND_TRIPS = (
    (asyncpg.Connection, "execute", "simple query"),  # BEGIN, COMMIT, ROLLBACK, ...
    (asyncpg.Connection, "executemany", "executemany"),
    (asyncpg.Connection, "fetch", "statement"),
    (asyncpg.Connection, "fetchrow", "statement"),  # also the pre-ping: fetchrow(";")
    (asyncpg.Connection, "fetchval", "statement"),
    (asyncpg.Connection, "prepare", "prepare"),
    (asyncpg.Connection, "copy_records_to_table", "copy"),
    (asyncpg.prepared_stmt.PreparedStatement, "fetch", "statement"),
    (asyncpg.prepared_stmt.PreparedStatement, "fetchrow", "statement"),
    (asyncpg.prepared_stmt.PreparedStatement, "executemany", "executemany"),
    (asyncpg.cursor.Cursor, "fetch", "cursor fetch"),
)


def _counted(method: Callable[..., Any], kind: str) -> Callable[..., Any]:
    @functools.wraps(method)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        COUNTS["round_trips"] += 1
        COUNTS[kind] += 1
        return await method(*args, **kwargs)

    return wrapper


for _cls, _name, _kind in ROUND_TRIPS:
    setattr(_cls, _name, _counted(getattr(_cls, _name), _kind))


def _with_counter(app: FastAPI) -> FastAPI:
    @app.get("/__bench__/sql", include_in_schema=False)
    async def round_trips() -> JSONResponse:
        return JSONResponse(dict(COUNTS))

    return app


def baked_app() -> FastAPI:
    from app.main import create_app  # type: ignore[import-not-found]

    return _with_counter(create_app())


def reference_app() -> FastAPI:
    from reference_app import create_app  # type: ignore[import-not-found]

    return _with_counter(create_app())
