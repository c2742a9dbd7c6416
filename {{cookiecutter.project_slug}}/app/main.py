"""Application factory: `uvicorn app.main:create_app --factory`."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
{% if cookiecutter.include_example_models == "yes" %}
from app.api import api_router
{%- endif %}
from app.db.engine import create_engines
from app.db.session import Database
from app.db.slow_query_log import install_slow_query_log
from app.errors import register_error_handlers
from app.health import router as health_router
from app.logs import configure_logging
from app.middleware import RequestContextMiddleware
from app.settings import Settings, get_settings


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The engines of this process, disposed on shutdown so no connection outlives it."""
    settings: Settings = app.state.settings
    configure_logging(settings)
    engines = create_engines(settings)
    if settings.db_slow_query_ms is not None:
        for engine in engines.pools:
            install_slow_query_log(engine, settings.db_slow_query_ms)
    app.state.engines = engines
    app.state.database = Database(engines)
    try:
        yield
    finally:
        await engines.dispose()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="{{ cookiecutter.project_name }}",
        description="{{ cookiecutter.description }}",
        debug=settings.debug,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.add_middleware(
        RequestContextMiddleware, log_requests=settings.log_requests, debug=settings.debug
    )
    register_error_handlers(app)
    app.include_router(health_router)
{%- if cookiecutter.include_example_models == "yes" %}
    app.include_router(api_router)
{%- endif %}
    return app
