"""Prometheus metrics at `GET /metrics`: requests, latency and the connection pools.

Requests are counted by method, route *template* (`/api/v1/users/{user_id}`, never
the raw path, so ids cannot multiply the series; paths no route matched share one
label) and status; latency is a histogram by method and route. The pool gauges are
read from SQLAlchemy's pools when /metrics is scraped.

With METRICS_TOKEN set, /metrics answers only `Authorization: Bearer <METRICS_TOKEN>`
(401 otherwise): on the service's own port, since a second port would be served by
one worker of several only.

Several worker processes: set PROMETHEUS_MULTIPROC_DIR to an empty directory.
Each worker then writes its samples there, refreshes its pool gauges every second,
and whichever worker answers /metrics adds up all of them (docs/operations.md).
Docs: https://prometheus.github.io/client_python/multiprocess/
"""

import asyncio
import contextlib
import hmac
import logging
import os
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool
from starlette.types import Scope
{%- if cookiecutter.task_queue == "taskiq" %}

from app.tasks.outbox_gauges import observe_outbox
{%- endif %}

logger = logging.getLogger(__name__)
MULTIPROCESS_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if MULTIPROCESS_DIR:
    os.makedirs(MULTIPROCESS_DIR, exist_ok=True)
UNMATCHED = "unmatched"
# Anything else a client sends is counted as OTHER, so it cannot add series.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER = "other"
POOL_REFRESH_SECONDS = 1.0

REQUESTS = Counter(
    "http_requests", "Requests answered, by method, route, status.", ["method", "route", "status"]
)
LATENCY = Histogram(
    "http_request_duration_seconds", "Time to answer, by method and route.", ["method", "route"]
)
# livesum: with several workers, the sum over the workers that are alive.
POOL_SIZE = Gauge("db_pool_size", "The pool's pool_size.", ["pool"], multiprocess_mode="livesum")
POOL_CHECKED_OUT = Gauge(
    "db_pool_checked_out", "Connections in use.", ["pool"], multiprocess_mode="livesum"
)
POOL_CHECKED_IN = Gauge(
    "db_pool_checked_in", "Connections idle in the pool.", ["pool"], multiprocess_mode="livesum"
)
POOL_OVERFLOW = Gauge(
    "db_pool_overflow", "Connections open beyond pool_size.", ["pool"], multiprocess_mode="livesum"
)
POOL_TIMEOUTS = Counter(
    "db_pool_timeouts", "Checkouts that found no connection free within the pool timeout.", ["pool"]
)

router = APIRouter(tags=["metrics"])


def route_of(scope: Scope) -> str:
    """The template of the route that served the request (set by the router)."""
    return getattr(scope.get("route"), "path", UNMATCHED)


def record_request(method: str, route: str, status: int, seconds: float) -> None:
    method = method if method in METHODS else OTHER
    REQUESTS.labels(method, route, str(status)).inc()
    LATENCY.labels(method, route).observe(seconds)


def observe_pools(pools: Mapping[str, AsyncEngine]) -> None:
    for name, engine in pools.items():
        pool = engine.pool
        if not isinstance(pool, QueuePool):
            continue  # {% if cookiecutter.database == "sqlite" %}an in-memory database's StaticPool{% else %}a pool passed as `poolclass`, say{% endif %}: nothing to count
        POOL_SIZE.labels(name).set(pool.size())
        POOL_CHECKED_OUT.labels(name).set(pool.checkedout())
        POOL_CHECKED_IN.labels(name).set(pool.checkedin())
        # SQLAlchemy counts overflow from -pool_size: below zero, the pool is not full yet.
        POOL_OVERFLOW.labels(name).set(max(0, pool.overflow()))


def require_metrics_token(request: Request) -> None:
    """With METRICS_TOKEN set, the scraper must send it; compared in constant time."""
    token: str | None = request.app.state.settings.metrics_token
    if token is None:
        return
    scheme, _, sent = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(sent.encode(), token.encode()):
        raise HTTPException(
            status_code=401,
            detail="metrics need Authorization: Bearer <METRICS_TOKEN>",
            headers={"WWW-Authenticate": "Bearer"},
        )


@router.get("/metrics", include_in_schema=False, dependencies=[Depends(require_metrics_token)])
async def metrics(request: Request) -> Response:
    observe_pools(request.app.state.engines.pools)
{%- if cookiecutter.task_queue == "taskiq" %}
    await observe_outbox(request.app.state.database, request.app.state.settings.readiness_timeout)
{%- endif %}
    if MULTIPROCESS_DIR:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=MULTIPROCESS_DIR)  # type: ignore[no-untyped-call]
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


@contextlib.asynccontextmanager
async def worker_metrics(pools: Mapping[str, AsyncEngine], workers: int) -> AsyncIterator[None]:
    """What one worker owes the others in multiprocess mode (nothing otherwise): it
    forgets the gauges of workers that died, keeps its own pool gauges current, and
    withdraws them when it stops."""
    if not MULTIPROCESS_DIR:
        if workers > 1:
            logger.warning(
                "WEB_CONCURRENCY=%d but PROMETHEUS_MULTIPROC_DIR is not set: each scrape "
                "of /metrics sees the numbers of whichever worker answers it",
                workers,
            )
        yield
        return
    _forget_dead_workers(MULTIPROCESS_DIR)
    refresher = asyncio.create_task(_refresh_pool_gauges(pools))
    try:
        yield
    finally:
        refresher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await refresher
        multiprocess.mark_process_dead(os.getpid(), MULTIPROCESS_DIR)  # type: ignore[no-untyped-call]


async def _refresh_pool_gauges(pools: Mapping[str, AsyncEngine]) -> None:
    while True:
        observe_pools(pools)
        await asyncio.sleep(POOL_REFRESH_SECONDS)


def _forget_dead_workers(directory: str) -> None:
    """A worker that crashed, or that uvicorn replaced, left its live gauges behind."""
    for path in Path(directory).glob("gauge_live*_*.db"):
        pid = int(path.stem.rsplit("_", 1)[1])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]
        except PermissionError:
            pass  # alive, as another user
