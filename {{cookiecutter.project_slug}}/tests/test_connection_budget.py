{%- set db = cookiecutter.database -%}
"""The start-up check of the pools against the server's real connection limit: one
WARNING naming both numbers when instances x workers x (pool_size + max_overflow +
the streams' and the probe's connections) can exceed `max_connections`, and nothing
when they fit."""

import logging

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.connection_budget import check_connection_budget
from app.db.engine import create_engines
from app.settings import Settings
from tests.databases import drop_database, fresh_database, sibling_url

LOGGER = "app.db.connection_budget"


@pytest.fixture(scope="module")
async def max_connections(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
{%- if db == "postgresql" %}
        return int(await connection.scalar(text("SHOW max_connections")))
{%- else %}
        return int(await connection.scalar(text("SELECT @@max_connections")))
{%- endif %}


async def _warnings(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> list[logging.LogRecord]:
    engines = create_engines(settings)
    try:
        with caplog.at_level(logging.INFO, logger=LOGGER):
            await check_connection_budget(settings, engines)
    finally:
        await engines.dispose()
    return [r for r in caplog.records if r.name == LOGGER and r.levelno >= logging.WARNING]


async def test_pools_that_fit_say_nothing(
    test_settings: Settings, max_connections: int, caplog: pytest.LogCaptureFixture
) -> None:
    fitting = test_settings.model_copy(
        update={
            "web_concurrency": 2,
            "db_pool_size": 2,
            "db_max_overflow": 1,
            "export_max_concurrent": 1,
        }
    )
    assert max_connections >= 2 * (3 + 1 + 1)
    assert await _warnings(fitting, caplog) == []


async def test_workers_whose_pools_can_exceed_the_limit_get_one_warning(
    test_settings: Settings, max_connections: int, caplog: pytest.LogCaptureFixture
) -> None:
    per_process = max_connections // 4 + 1
    streams = test_settings.export_max_concurrent
    settings = test_settings.model_copy(
        update={
            "web_concurrency": 4,
            "db_pool_size": per_process - 5 - streams - 1,
            "db_max_overflow": 5,
        }
    )
    [warning] = await _warnings(settings, caplog)
    demand = 4 * per_process
    assert warning.getMessage().startswith(
        f"the primary's connection pools can open {demand} connections, more than its "
        f"max_connections of {max_connections}"
    )
    assert "4 worker(s) (WEB_CONCURRENCY)" in warning.getMessage()
    assert f"+ {streams} for streams (EXPORT_MAX_CONCURRENT) + 1 for /readyz" in (
        warning.getMessage()
    )
    assert (vars(warning)["connections"], vars(warning)["max_connections"]) == (
        demand,
        max_connections,
    )


async def test_instances_count_too(
    test_settings: Settings, max_connections: int, caplog: pytest.LogCaptureFixture
) -> None:
    """One worker per instance, but as many instances as the server has connections."""
    settings = test_settings.model_copy(update={"service_instances": max_connections})
    [warning] = await _warnings(settings, caplog)
    assert vars(warning)["connections"] == max_connections * (
        settings.db_pool_size + settings.db_max_overflow + settings.export_max_concurrent + 1
    )


async def test_the_replica_is_held_to_its_own_servers_limit(
    test_settings: Settings, max_connections: int, caplog: pytest.LogCaptureFixture
) -> None:
    replica = sibling_url(test_settings.url, "budget_replica")
    await fresh_database(replica)
    try:
        settings = test_settings.model_copy(
            update={
                "database_replica_url": replica.render_as_string(hide_password=False),
                "db_replica_pool_size": max_connections,
            }
        )
        [warning] = await _warnings(settings, caplog)
    finally:
        await drop_database(replica)
    assert warning.getMessage().startswith("the replica's connection pools")


async def test_an_unreachable_server_is_reported_not_raised(
    test_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    down = test_settings.url.set(host="127.0.0.1", port=1)
    settings = test_settings.model_copy(
        update={"database_url": down.render_as_string(hide_password=False)}
    )
    [warning] = await _warnings(settings, caplog)
    assert warning.getMessage().startswith("connection limit of the primary not checked")
{%- if db == "postgresql" %}


async def test_behind_pgbouncer_the_line_says_where_the_limit_is(
    test_settings: Settings, max_connections: int, caplog: pytest.LogCaptureFixture
) -> None:
    """The template's tests run this against a real PgBouncer; here the switch alone."""
    settings = test_settings.model_copy(update={"db_pgbouncer": True, "web_concurrency": 64})
    assert await _warnings(settings, caplog) == []  # PgBouncer's limits, not the server's
    [line] = [r for r in caplog.records if r.name == LOGGER]
    per_worker = settings.db_pool_size + settings.db_max_overflow + settings.export_max_concurrent
    demand = 64 * (per_worker + 1)
    assert line.getMessage().startswith(
        f"behind PgBouncer: the pools can open {demand} client connections to PgBouncer"
    )
    assert f"max_connections of {max_connections}" in line.getMessage()
{%- endif %}
