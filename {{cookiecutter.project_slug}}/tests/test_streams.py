"""A streamed response (app.streams) reads on the streams' own pool, at most
EXPORT_MAX_CONCURRENT at a time: one more is refused at once, and a stream that ends
gives its place back."""

import asyncio
from collections.abc import AsyncGenerator, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.main import create_app
from app.settings import Settings
from app.streams import stream_rows
from tests.helpers import serve

POOL = "{{ 'database' if cookiecutter.database == 'sqlite' else 'primary' }}.streams"


def streaming_app(settings: Settings, streaming: asyncio.Event, release: asyncio.Event) -> FastAPI:
    app = create_app(settings.model_copy(update={"export_max_concurrent": 1}))

    async def batches(connection: AsyncConnection) -> AsyncGenerator[Sequence[Any]]:
        yield (await connection.execute(text("SELECT version_num FROM alembic_version"))).all()
        streaming.set()
        await release.wait()  # holds its place until the test lets it end
        yield []

    def lines(rows: Sequence[Any]) -> bytes:
        return b"".join(f"{row[0]}\n".encode() for row in rows)

    @app.get("/_probe/stream")
    async def stream(request: Request) -> StreamingResponse:
        return await stream_rows(request, batches, lines, media_type="text/plain")

    return app


async def test_one_stream_too_many_is_refused_and_an_ended_one_gives_its_place_back(
    test_settings: Settings,
) -> None:
    streaming, release = asyncio.Event(), asyncio.Event()
    app = streaming_app(test_settings, streaming, release)
    async with serve(app) as client:
        first = asyncio.create_task(client.get("/_probe/stream"))
        await asyncio.wait_for(streaming.wait(), timeout=5)
        assert app.state.engines.pools[POOL].pool.checkedout() == 1  # its own pool's
        refused = await client.get("/_probe/stream")
        release.set()
        streamed = await first
        again = await client.get("/_probe/stream")
    assert refused.status_code == 503
    assert refused.headers["retry-after"]
    assert streamed.status_code == 200
    assert len(streamed.text.splitlines()) == 1  # alembic_version's one row
    assert again.status_code == 200
