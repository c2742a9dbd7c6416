"""A deadline for every request: REQUEST_TIMEOUT_SECONDS, then a 503.

A pure ASGI middleware runs each HTTP request under `asyncio.timeout`. When the time
is up, the handler is cancelled wherever it waits (for a pool connection, a
statement, the request body of a client that sends it slowly), the connections it
held are invalidated rather than returned to the pool (app.db.session: a statement
it sent may still be running), and the client gets `503` with `Retry-After`, or, if
its response had started, a closed connection. Nothing else may hold a worker's
handler and its connection for longer.

Two moments lift the deadline. A COMMIT: just before one is sent, `before_commit`
(a SQLAlchemy `commit` event of the write engine) either stops the clock, so a write
the database may have committed is never answered 503, or, if the time is already
up, refuses the COMMIT, so nothing is written. And a streamed response, which
EXPORT_MAX_SECONDS and EXPORT_IDLE_SECONDS bound instead (app.streams).

Slow request *headers* (slowloris) never reach the app: the ingress or load balancer
in front must bound those (docs/operations.md).
"""

import asyncio
import json
import logging
from contextvars import ContextVar
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import RETRY_AFTER_SECONDS

logger = logging.getLogger(__name__)
TOO_LONG = json.dumps({"detail": "the request took too long; retry later"}).encode()


class DeadlineError(TimeoutError):
    """A COMMIT was about to be sent after the request's deadline had passed."""


_current: ContextVar[asyncio.Timeout | None] = ContextVar("request_deadline", default=None)


def lift_deadline() -> bool:
    """Stop the current request's clock. False if it has run out already: the
    request is being cancelled, and nothing must start that cannot be taken back."""
    timeout = _current.get()
    if timeout is None or timeout.when() is None:
        return True
    if timeout.expired():
        return False
    timeout.reschedule(None)
    return True


def before_commit(_connection: Any) -> None:
    """SQLAlchemy's `commit` event, just before COMMIT is sent."""
    if not lift_deadline():
        raise DeadlineError("the request's deadline passed before its COMMIT was sent")


class RequestDeadlineMiddleware:
    def __init__(self, app: ASGIApp, *, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        response_started = False

        async def watching(message: Message) -> None:
            nonlocal response_started
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        timeout = asyncio.timeout(self.seconds)
        try:
            async with timeout:
                token = _current.set(timeout)
                try:
                    await self.app(scope, receive, watching)
                finally:
                    _current.reset(token)
        except TimeoutError:
            if not timeout.expired():
                raise  # the app's own, not the deadline
            logger.warning(
                "%s %s ended after REQUEST_TIMEOUT_SECONDS (%s s)",
                scope["method"],
                scope["path"],
                self.seconds,
            )
            if response_started:
                return  # the server closes the connection: the response stays incomplete
            await send(
                {
                    "type": "http.response.start",
                    "status": 503,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(TOO_LONG)).encode()),
                        (b"retry-after", RETRY_AFTER_SECONDS.encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": TOO_LONG})
