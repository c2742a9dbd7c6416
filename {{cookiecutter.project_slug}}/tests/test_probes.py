{%- set db = cookiecutter.database -%}
{%- set main = "database" if db == "sqlite" else "primary" -%}
"""`/livez` answers without the database; `/readyz` (and its alias `/health`) asks
the {{ main }} for a trivial query, on a connection of its own, and answers 503 +
Retry-After, fast, only when it does not answer, whether it is down{% if db != "sqlite" %} or hung{% endif %}. A
request pool that is exhausted does not make the instance unready{% if db != "sqlite" %}, and neither does
the replica (tests/test_replica.py){% endif %}."""

import asyncio
import time

{%- if db == "sqlite" %}
from pathlib import Path
{%- endif %}
{% if db != "sqlite" %}
import pytest
{%- endif %}
from fastapi import FastAPI
from httpx import AsyncClient, Response
from sqlalchemy import event

from app.main import create_app
from app.settings import Settings
from tests.helpers import serve

READINESS_TIMEOUT = 0.5


def _unreachable(settings: Settings, {% if db == "sqlite" %}missing_dir: Path{% else %}port: int{% endif %}) -> Settings:
{%- if db == "sqlite" %}
    url = settings.url.set(database=str(missing_dir / "no-such-dir" / "db.sqlite"))
{%- else %}
    url = settings.url.set(host="127.0.0.1", port=port)
{%- endif %}
    return settings.model_copy(
        update={
            "database_url": url.render_as_string(hide_password=False),
            "readiness_timeout": READINESS_TIMEOUT,
{%- if db != "sqlite" %}
            "db_connect_timeout": 5.0,
{%- endif %}
        }
    )


async def _timed_get(client: AsyncClient, path: str) -> tuple[Response, float]:
    started = time.monotonic()
    response = await client.get(path)
    return response, time.monotonic() - started


def assert_not_ready(response: Response, checks: dict[str, str]) -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) > 0
    assert response.json() == {"status": "unavailable", "checks": checks}


async def test_ready_when_the_database_answers(test_settings: Settings) -> None:
    async with serve(create_app(test_settings)) as client:
        for path in ("/livez", "/readyz", "/health"):
            response = await client.get(path)
            assert response.status_code == 200, (path, response.text)
        assert (await client.get("/livez")).json() == {"status": "ok"}
        ready = (await client.get("/readyz")).json()
        assert ready == {"status": "ok", "checks": {"{{ main }}": "ok"}}
        assert (await client.get("/health")).json() == ready
{%- if db == "sqlite" %}


async def test_unreachable_database_is_not_ready_but_alive(
    test_settings: Settings, tmp_path: Path
) -> None:
    async with serve(create_app(_unreachable(test_settings, tmp_path))) as client:
        live, _ = await _timed_get(client, "/livez")
        assert live.status_code == 200
        for path in ("/readyz", "/health"):
            response, elapsed = await _timed_get(client, path)
            assert_not_ready(response, {"database": "error"})
            assert elapsed < 1
{%- else %}


@pytest.mark.parametrize("failure", ["refused", "hung"])
async def test_unreachable_database_is_not_ready_but_alive(
    test_settings: Settings, silent_server: int, failure: str
) -> None:
    """A refused connection is an error at once; a server that accepts and says nothing
    is cut at READINESS_TIMEOUT, well before the 5 s connect timeout."""
    port = 1 if failure == "refused" else silent_server
    async with serve(create_app(_unreachable(test_settings, port))) as client:
        live, elapsed = await _timed_get(client, "/livez")
        assert live.status_code == 200
        assert elapsed < 0.2
        for path in ("/readyz", "/health"):
            response, elapsed = await _timed_get(client, path)
            assert_not_ready(response, {"primary": "error" if failure == "refused" else "timeout"})
            assert elapsed < READINESS_TIMEOUT + 0.5
{%- endif %}


async def test_an_exhausted_request_pool_leaves_the_instance_ready(
    test_settings: Settings,
) -> None:
    """The probe has a connection of its own: a busy instance still serves what it
    can, and taking it out would move its load onto the next instance."""
    tiny = test_settings.model_copy(
        update={
            "db_pool_size": 1,
            "db_max_overflow": 0,
            "db_pool_timeout": 5.0,
            "readiness_timeout": READINESS_TIMEOUT,
        }
    )
    app = create_app(tiny)
    async with serve(app) as client, app.state.engines.pools["{{ main }}"].connect():
        response, elapsed = await _timed_get(client, "/readyz")  # with the only connection held
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok", "checks": {"{{ main }}": "ok"}}
    assert elapsed < READINESS_TIMEOUT


async def test_probes_that_arrive_together_share_one_check(test_settings: Settings) -> None:
    """A burst of probes costs one query, not one each, on the probe's one connection."""
    app = create_app(test_settings)
    checks: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        checks.append(statement)

    async with serve(app) as client:
        probe = app.state.engines.{% if db == "sqlite" %}probe{% else %}primary.probe{% endif %}
        event.listen(probe.sync_engine, "before_cursor_execute", record)
        try:
            responses = await asyncio.gather(*(client.get("/readyz") for _ in range(20)))
        finally:
            event.remove(probe.sync_engine, "before_cursor_execute", record)
    assert [r.status_code for r in responses] == [200] * 20
    assert 1 <= checks.count("SELECT 1") < 5, checks


def test_probes_are_documented_in_openapi(app: FastAPI) -> None:
    # The document itself: /openapi.json is served only with DOCS_ENABLED (test_edge.py).
    paths = app.openapi()["paths"]
    assert "deprecated" not in paths["/readyz"]["get"]
    assert paths["/health"]["get"]["deprecated"] is True
    assert "503" in paths["/readyz"]["get"]["responses"]
