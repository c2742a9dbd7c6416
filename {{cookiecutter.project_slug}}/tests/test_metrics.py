{%- set main = "database" if cookiecutter.database == "sqlite" else "primary" -%}
"""`/metrics`: requests by route template and status, a latency histogram, and the
connection pool's gauges and timeouts, read from the real pool while it is in use.

The metrics live in the process-wide registry, so each test compares two scrapes.
"""

from contextlib import AsyncExitStack

from fastapi import FastAPI
from httpx import AsyncClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from app.db.session import ReadConnection
from app.main import create_app
from app.settings import Settings
from tests.helpers import serve

POOL = "{{ main }}"
# (name, labels) -> value, for every sample of a scrape
Scraped = dict[tuple[str, frozenset[tuple[str, str]]], float]


def metrics_app(settings: Settings) -> FastAPI:
    app = create_app(settings)

    @app.get("/_probe/items/{item_id}")
    async def item(item_id: int, connection: ReadConnection) -> dict[str, int]:
        await connection.execute(text("SELECT 1"))
        return {"id": item_id}

    return app


async def scrape(client: AsyncClient) -> Scraped:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(scraped: Scraped, name: str, **labels: str) -> float:
    return scraped.get((name, frozenset(labels.items())), 0.0)


async def _quiet_pool(app: FastAPI) -> None:
    """Wait for the start-up's own use of the pool to end."""
{%- if cookiecutter.database == "sqlite" %}
    assert app.state.engines.pools[POOL].pool.checkedout() == 0
{%- else %}
    await app.state.connection_budget_check
{%- endif %}


async def test_requests_are_counted_by_route_template_and_status(test_settings: Settings) -> None:
    async with serve(metrics_app(test_settings)) as client:
        before = await scrape(client)
        for item_id in (1, 2, 3):
            assert (await client.get(f"/_probe/items/{item_id}")).status_code == 200
        assert (await client.get("/_probe/items/not-a-number")).status_code == 422
        assert (await client.get("/no/such/path/42")).status_code == 404
        after = await scrape(client)

    route = "/_probe/items/{item_id}"

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("http_requests_total", method="GET", route=route, status="200") == 3
    assert delta("http_requests_total", method="GET", route=route, status="422") == 1
    assert delta("http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert delta("http_request_duration_seconds_count", method="GET", route=route) == 4
    assert delta("http_request_duration_seconds_sum", method="GET", route=route) > 0
    assert delta("http_request_duration_seconds_bucket", method="GET", route=route, le="+Inf") == 4
    labels = {dict(key)["route"] for name, key in after if name == "http_requests_total"}
    assert not any("42" in label or "/1" in label for label in labels), labels


async def test_unknown_methods_share_one_label(test_settings: Settings) -> None:
    async with serve(metrics_app(test_settings)) as client:
        before = await scrape(client)
        await client.request("BREW", "/livez")
        after = await scrape(client)
    labels = {"method": "other", "route": "/livez", "status": "405"}
    counted = value(after, "http_requests_total", **labels)
    assert counted - value(before, "http_requests_total", **labels) == 1
    assert not any(dict(key).get("method") == "BREW" for _, key in after)


async def test_pool_gauges_follow_the_pool(test_settings: Settings) -> None:
    small = test_settings.model_copy(update={"db_pool_size": 1, "db_max_overflow": 2})
    app = metrics_app(small)
    async with serve(app) as client:
        await _quiet_pool(app)
        engine = app.state.engines.pools[POOL]
        idle = await scrape(client)
        assert value(idle, "db_pool_size", pool=POOL) == 1
        assert value(idle, "db_pool_checked_out", pool=POOL) == 0
        assert value(idle, "db_pool_overflow", pool=POOL) == 0
        async with AsyncExitStack() as held:
            for _ in range(3):  # the pool's one connection, then two of overflow
                await held.enter_async_context(engine.connect())
            busy = await scrape(client)
        assert value(busy, "db_pool_checked_out", pool=POOL) == 3
        assert value(busy, "db_pool_overflow", pool=POOL) == 2
        released = await scrape(client)
        assert value(released, "db_pool_checked_out", pool=POOL) == 0
        assert value(released, "db_pool_checked_in", pool=POOL) == 1


async def test_pool_timeouts_are_counted(test_settings: Settings) -> None:
    tiny = test_settings.model_copy(
        update={"db_pool_size": 1, "db_max_overflow": 0, "db_pool_timeout": 0.2}
    )
    app = metrics_app(tiny)
    async with serve(app) as client:
        await _quiet_pool(app)
        before = await scrape(client)
        async with app.state.engines.pools[POOL].connect():  # the only connection
            assert (await client.get("/_probe/items/1")).status_code == 503
        after = await scrape(client)
    timeouts = "db_pool_timeouts_total"
    assert value(after, timeouts, pool=POOL) - value(before, timeouts, pool=POOL) == 1
