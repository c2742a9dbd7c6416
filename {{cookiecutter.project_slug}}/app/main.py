{%- set db = cookiecutter.database -%}
{%- set users = cookiecutter.include_example_models == "yes" or cookiecutter.auth == "jwt" -%}
"""Application factory: `uvicorn app.main:create_app --factory`."""

{% if db != "sqlite" -%}
import asyncio
import contextlib
{% endif -%}
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
{%- if cookiecutter.auth == "jwt" %}
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
{%- endif %}
{% if users %}
from app.api import api_router
{%- endif %}
{%- if cookiecutter.auth == "jwt" %}
from app.auth.access import PUBLIC
from app.auth.passwords import Passwords
{%- endif %}
{%- if db != "sqlite" %}
from app.db.connection_budget import check_connection_budget
{%- endif %}
from app.db.engine import create_engines
from app.db.session import Database
from app.db.slow_query_log import install_slow_query_log
from app.deadline import RequestDeadlineMiddleware
from app.edge import documentation_urls, install_edge
from app.errors import register_error_handlers
from app.logs import configure_logging
from app.metrics import router as metrics_router
from app.metrics import worker_metrics
from app.middleware import RequestContextMiddleware
from app.probes import router as probes_router
from app.settings import Settings, get_settings
from app.tracing import stop_tracing, trace_requests, trace_statements

logger = logging.getLogger(__name__)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The engines of this process, disposed on shutdown so no connection outlives it."""
    settings: Settings = app.state.settings
    configure_logging(settings)
    for warning in settings.startup_warnings:
        logger.warning(warning)
    engines = create_engines(settings)
    if settings.db_slow_query_ms is not None:
        for engine in engines.pools.values():
            install_slow_query_log(engine, settings.db_slow_query_ms)
    tracer_provider = getattr(app.state, "tracer_provider", None)
    if tracer_provider is not None:
        trace_statements(tracer_provider, engines.pools.values())
    app.state.engines = engines
    app.state.database = Database(engines)
{%- if db != "sqlite" %}
    # In the background: start-up does not wait for the database.
    budget = asyncio.create_task(check_connection_budget(settings, engines))
    app.state.connection_budget_check = budget
{%- endif %}
    try:
        async with worker_metrics(engines.pools, settings.web_concurrency):
            yield
    finally:
{%- if db != "sqlite" %}
        budget.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await budget
{%- endif %}
        if tracer_provider is not None:
            stop_tracing(tracer_provider)
{%- if cookiecutter.auth == "jwt" %}
        app.state.passwords.close()
{%- endif %}
        await engines.dispose()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="{{ cookiecutter.project_name }}",
        description="{{ cookiecutter.description }}",
        debug=settings.debug,
        lifespan=lifespan,
        **documentation_urls(settings),
    )
    app.state.settings = settings
{%- if cookiecutter.auth == "jwt" %}
    app.state.passwords = Passwords(settings)
{%- endif %}
    # Innermost first: the edge's limits, then the request deadline, both inside the
    # request context, so that their answers are logged and counted.
    install_edge(app, settings)
    app.add_middleware(RequestDeadlineMiddleware, seconds=settings.request_timeout_seconds)
    app.add_middleware(
        RequestContextMiddleware, log_requests=settings.log_requests, debug=settings.debug
    )
{%- if cookiecutter.auth == "jwt" %}
    # Outermost: the client address is the one a trusted proxy names, before anything
    # (the log-in throttle among them) reads it.
    app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.forwarded_allow_ips)
{%- endif %}
    register_error_handlers(app)
{%- if cookiecutter.auth == "jwt" %}
    app.include_router(probes_router, dependencies=[PUBLIC])
{%- else %}
    app.include_router(probes_router)
{%- endif %}
    app.include_router(metrics_router)
{%- if users %}
    app.include_router(api_router)
{%- endif %}
    if settings.otel_enabled:
        app.state.tracer_provider = trace_requests(app, settings)
    return app
