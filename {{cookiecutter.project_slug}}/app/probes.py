{%- set db = cookiecutter.database -%}
{%- set main = "database" if db == "sqlite" else "primary" -%}
"""Probes for orchestrators and load balancers: `/livez`, `/readyz`, and `/health`.

`/livez` answers while the process serves and touches nothing else: a liveness
check that queried the database would have every healthy container restarted
during a database outage.

`/readyz` tells whether this instance can serve. It fails (503 with `Retry-After`,
which takes the instance out of the load balancer) only when the {{ main }} does not
answer a trivial query within READINESS_TIMEOUT. It asks on a connection of its own
(a pool of one, `{{ main }}.probe`), so a busy request pool never makes the
instance look unready: that would move its load to the next instance, and make that
one busy in turn.
{%- if db != "sqlite" %} The replica's state is in the body (`checks.replica`, and
`reads_from`: `replica`, or `primary` while reads fall back, app.db.replica) and never
makes the instance unready: every instance shares the replica, so its outage would
take them all out of the load balancer at once, writes included.
{%- endif %}
Probes that arrive together share one check per server. `/health` is an alias of
`/readyz`, kept for monitors configured before the two existed.
"""

import asyncio
import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.engine import Engines
from app.errors import RETRY_AFTER_SECONDS

logger = logging.getLogger(__name__)
router = APIRouter(tags=["probes"])
TRIVIAL_QUERY = text("SELECT 1")
NOT_READY: dict[int | str, dict[str, Any]] = {
    503: {"description": "The {{ main }} did not answer in time."}
}
# The check under way for each probe engine, shared by the probes that wait for it.
_checks: dict[AsyncEngine, asyncio.Task[str]] = {}


@router.get("/livez")
async def livez() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", responses=NOT_READY)
async def readyz(request: Request) -> JSONResponse:
    engines: Engines = request.app.state.engines
    timeout: float = request.app.state.settings.readiness_timeout
{%- if db == "sqlite" %}
    checks = {"database": await _answer("database", engines.probe, timeout)}
    body: dict[str, Any] = {"checks": checks}
{%- else %}
    probes = {"primary": engines.primary.probe}
    if engines.replica is not None:
        probes["replica"] = engines.replica.probe
    answers = await asyncio.gather(*(_answer(name, probes[name], timeout) for name in probes))
    checks = dict(zip(probes, answers, strict=True))
    body: dict[str, Any] = {"checks": checks}
    if engines.fallback is not None:
        body["reads_from"] = "primary" if engines.fallback.replica_is_down else "replica"
{%- endif %}
    if checks["{{ main }}"] == "ok":
        return JSONResponse({"status": "ok"} | body)
    return JSONResponse(
        {"status": "unavailable"} | body,
        status_code=503,
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )


router.add_api_route(
    "/health", readyz, methods=["GET"], responses=NOT_READY, deprecated=True, summary="Health"
)


async def _answer(name: str, engine: AsyncEngine, seconds: float) -> str:
    check = _checks.get(engine)
    if check is None:
        check = _checks[engine] = asyncio.create_task(_check(name, engine, seconds))
        check.add_done_callback(lambda _: _checks.pop(engine, None))
    # Shielded: a probe whose client goes away does not cancel the others' answer.
    return await asyncio.shield(check)


async def _check(name: str, engine: AsyncEngine, seconds: float) -> str:
    """Whether the database ran a query in time: "ok", "timeout" or "error" (logged)."""
    log = logger.warning if name == "{{ main }}" else logger.info
    try:
        async with asyncio.timeout(seconds), engine.connect() as connection:
            await connection.execute(TRIVIAL_QUERY)
    except TimeoutError:
        log("not ready: %s did not answer in time", name)
        return "timeout"
    except SQLAlchemyError as exc:
        log("not ready: %s failed: %s", name, exc)
        return "error"
    return "ok"
