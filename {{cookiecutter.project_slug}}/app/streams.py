"""Streamed responses from the database (the export), bounded so that no client can
hold a connection, a snapshot or a worker for long.

A stream's body is sent after its endpoint returns, for as long as the client takes
to read it, so it cannot use a request's connection. `stream_rows`:

- takes one of EXPORT_MAX_CONCURRENT places of this process, or answers 503 with
  `Retry-After` at once (the server is out of capacity, not broken);
- reads from a connection of its own pool (`Database.stream()`), never the request
  pool, and reads the first batch before answering: a database that is down gets a
  503, not an empty 200;
- drops a client that takes nothing for EXPORT_IDLE_SECONDS (each piece of at most
  PIECE_BYTES must be taken within that time), and ends any stream
  EXPORT_MAX_SECONDS after it began, so a client that reads a byte now and then
  cannot hold a snapshot open for ever;
- a stream cut short (dropped, ended, a client gone, an error) closes the HTTP
  connection without the end of the body, so no client mistakes part of it for
  all of it, and invalidates its database connection rather than reuse one that
  may have rows still on their way; either way the place is given back.

The request deadline (app.deadline) covers everything up to the first batch; these
limits replace it after that.
"""

import asyncio
import logging
import sys
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack
from typing import Any

from fastapi import HTTPException, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.types import Receive, Scope, Send

from app.db.session import database
from app.deadline import DeadlineError, lift_deadline
from app.errors import RETRY_AFTER_SECONDS
from app.settings import Settings

logger = logging.getLogger(__name__)
Batches = AsyncGenerator[Sequence[Any]]
# A batch is sent in pieces of at most this size: a client must take about this much
# (plus the server's buffers) within EXPORT_IDLE_SECONDS, however large the batch.
PIECE_BYTES = 16_384


def _pieces(chunk: bytes) -> list[bytes]:
    return [chunk[i : i + PIECE_BYTES] for i in range(0, len(chunk), PIECE_BYTES)]


class StreamPlaces:
    """How many streams this process may run at once (EXPORT_MAX_CONCURRENT)."""

    def __init__(self, size: int) -> None:
        self.free = size

    def take(self) -> bool:
        if self.free == 0:
            return False
        self.free -= 1
        return True

    def give_back(self) -> None:
        self.free += 1


def _places(request: Request) -> StreamPlaces:
    state = request.app.state
    if not hasattr(state, "stream_places"):
        state.stream_places = StreamPlaces(state.settings.export_max_concurrent)
    places: StreamPlaces = state.stream_places
    return places


async def stream_rows(
    request: Request,
    batches: Callable[[AsyncConnection], Batches],
    encode: Callable[[Sequence[Any]], bytes],
    *,
    media_type: str,
) -> StreamingResponse:
    """A bounded streamed response of what `batches` reads, one chunk per batch."""
    settings: Settings = request.app.state.settings
    places = _places(request)
    if not places.take():
        raise HTTPException(
            503,
            "too many streams at once (EXPORT_MAX_CONCURRENT); retry later",
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        )
    ends_at = asyncio.get_running_loop().time() + settings.export_max_seconds
    resources = AsyncExitStack()  # closed by the response, or here if there is none
    resources.callback(places.give_back)
    try:
        connection = await resources.enter_async_context(database(request).stream())
        rows = batches(connection)
        resources.push_async_callback(rows.aclose)
        first = await anext(rows, None)
        if not lift_deadline():
            raise DeadlineError("the request's deadline passed before its stream began")
    except BaseException:
        await resources.__aexit__(*sys.exc_info())
        raise

    async def body() -> AsyncIterator[bytes]:
        if first is not None:
            yield encode(first)
        async for more in rows:
            yield encode(more)

    return BoundedStream(
        body(),
        connection=connection,
        resources=resources,
        idle_seconds=settings.export_idle_seconds,
        ends_at=ends_at,
        media_type=media_type,
    )


class BoundedStream(StreamingResponse):
    """A StreamingResponse whose client must keep reading, and that ends in time."""

    def __init__(
        self,
        content: AsyncIterator[bytes],
        *,
        connection: AsyncConnection,
        resources: AsyncExitStack,
        idle_seconds: float,
        ends_at: float,
        media_type: str,
    ) -> None:
        super().__init__(content, media_type=media_type)
        self.chunks = content
        self.connection = connection
        self.resources = resources
        self.idle_seconds = idle_seconds
        self.ends_at = ends_at
        self.finished = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            if not self.finished:
                await asyncio.shield(self.connection.invalidate())
            await self.resources.aclose()

    async def stream_response(self, send: Send) -> None:
        whole = asyncio.timeout_at(self.ends_at)
        idle = asyncio.timeout(None)
        try:
            async with whole:
                await send(
                    {"type": "http.response.start", "status": 200, "headers": self.raw_headers}
                )
                async for chunk in self.chunks:
                    for piece in _pieces(chunk):
                        message = {"type": "http.response.body", "body": piece, "more_body": True}
                        async with (idle := asyncio.timeout(self.idle_seconds)):
                            await send(message)
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except TimeoutError:
            if not (whole.expired() or idle.expired()):
                raise
            why = "EXPORT_MAX_SECONDS" if whole.expired() else "EXPORT_IDLE_SECONDS"
            logger.warning("a stream was cut short: it ran past %s", why)
            return  # the server closes the connection: the body stays incomplete
        self.finished = True
