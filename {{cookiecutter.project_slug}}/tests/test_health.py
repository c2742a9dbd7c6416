{%- set db = cookiecutter.database -%}
"""`/health` does a real round trip and says 503 when the database is gone."""

import time

from httpx import ASGITransport, AsyncClient

from app.main import create_app
from app.settings import Settings

{% if db == "sqlite" -%}
UNREACHABLE_URL = "sqlite+aiosqlite:////nonexistent-directory/unreachable.db"
{%- elif db == "postgresql" -%}
UNREACHABLE_URL = "postgresql+asyncpg://postgres@127.0.0.1:1/unreachable"
{%- else -%}
UNREACHABLE_URL = "mysql+aiomysql://root@127.0.0.1:1/unreachable"
{%- endif %}


async def test_health_ok(client: AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


async def test_health_503_when_database_unreachable() -> None:
    app = create_app(Settings(database_url=UNREACHABLE_URL))
    async with app.router.lifespan_context(app):
        transport = ASGITransport(app=app, raise_app_exceptions=False)
        async with AsyncClient(transport=transport, base_url="http://test") as client:
            started = time.monotonic()
            response = await client.get("/health")
            elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response.headers["retry-after"]
    assert response.json() == {"detail": "the database is unavailable; retry later"}
    assert elapsed < 3


async def test_openapi_docs(client: AsyncClient) -> None:
    assert (await client.get("/openapi.json")).status_code == 200
    assert (await client.get("/docs")).status_code == 200
