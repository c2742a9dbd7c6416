"""Probes for orchestrators and load balancers: `/livez`, `/readyz`, and `/health`.

`/livez` answers while the process serves and touches nothing else: a liveness
check that queried the database would have every healthy container restarted
during a database outage. `/readyz` asks each database this process uses for a
trivial query, within READINESS_TIMEOUT; if one does not answer, a 503 with
`Retry-After` takes the instance out of the load balancer until it does. It goes
through the same pools as requests, so a pool that stays exhausted also makes
the instance not ready. `/health` is an alias of `/readyz`, kept for monitors
configured before the two existed.
"""

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.errors import RETRY_AFTER_SECONDS

logger = logging.getLogger(__name__)
router = APIRouter(tags=["probes"])
TRIVIAL_QUERY = text("SELECT 1")
NOT_READY: dict[int | str, dict[str, Any]] = {
    503: {"description": "A database did not answer in time."}
}


@router.get("/livez")
async def livez() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", responses=NOT_READY)
async def readyz(request: Request) -> JSONResponse:
    pools: Mapping[str, AsyncEngine] = request.app.state.engines.pools
    timeout: float = request.app.state.settings.readiness_timeout
    deadline = asyncio.get_running_loop().time() + timeout
    answers = await asyncio.gather(*(_answers(name, pools[name], deadline) for name in pools))
    checks = dict(zip(pools, answers, strict=True))
    if all(answer == "ok" for answer in answers):
        return JSONResponse({"status": "ok", "checks": checks})
    return JSONResponse(
        {"status": "unavailable", "checks": checks},
        status_code=503,
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )


router.add_api_route(
    "/health", readyz, methods=["GET"], responses=NOT_READY, deprecated=True, summary="Health"
)


async def _answers(name: str, engine: AsyncEngine, deadline: float) -> str:
    """Whether the database ran a query in time: "ok", "timeout" or "error" (logged)."""
    try:
        async with asyncio.timeout_at(deadline), engine.connect() as connection:
            await connection.execute(TRIVIAL_QUERY)
    except TimeoutError:
        logger.warning("not ready: %s did not answer in time", name)
        return "timeout"
    except SQLAlchemyError as exc:
        logger.warning("not ready: %s failed: %s", name, exc)
        return "error"
    return "ok"
