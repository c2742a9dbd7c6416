"""The worker's own metrics, served on WORKER_METRICS_PORT: `/metrics` and `/livez`.

Counters by task: succeeded, failed (an attempt that raised or timed out), retried
(scheduled again after a delay) and dead-lettered (gave up after TASK_MAX_ATTEMPTS);
and the outbox rows the relay published. `/metrics` asks for `Authorization: Bearer
<METRICS_TOKEN>` when METRICS_TOKEN is set, as the web's does. `/livez` answers
while the worker's event loop does: the Kubernetes liveness probe.

A worker has no web framework to serve these, and Prometheus' own server cannot
check a token, so this is a deliberately small HTTP/1.0 responder: one request per
connection, GET only, a bounded request head, a deadline to send it.
"""

import asyncio
import contextlib
import hmac
import logging
from collections.abc import AsyncIterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest

logger = logging.getLogger(__name__)
HEAD_LIMIT = 8192
HEAD_TIMEOUT_SECONDS = 5.0

REGISTRY = CollectorRegistry()
SUCCEEDED = Counter("tasks_succeeded", "Tasks that ran to the end.", ["task"], registry=REGISTRY)
FAILED = Counter("tasks_failed", "Attempts that raised or timed out.", ["task"], registry=REGISTRY)
RETRIED = Counter(
    "tasks_retried", "Failed tasks scheduled to run again.", ["task"], registry=REGISTRY
)
DEAD_LETTERED = Counter(
    "tasks_dead_lettered", "Tasks moved to the dead-letter queue.", ["task"], registry=REGISTRY
)
RELAYED = Counter("outbox_relayed", "Outbox rows published and confirmed.", registry=REGISTRY)


def _response(status: str, body: bytes, content_type: str = "text/plain") -> bytes:
    head = (
        f"HTTP/1.0 {status}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


def answer(head: bytes, token: str | None) -> bytes:
    """The response to one request head (request line and headers)."""
    lines = head.decode("latin-1").split("\r\n")
    method, _, rest = lines[0].partition(" ")
    path = rest.partition(" ")[0].partition("?")[0]
    if method != "GET":
        return _response("405 Method Not Allowed", b"GET only\n")
    if path == "/livez":
        return _response("200 OK", b"ok\n")
    if path != "/metrics":
        return _response("404 Not Found", b"not found\n")
    if token is not None:
        given = ""
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "authorization":
                given = value.strip()
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return _response("401 Unauthorized", b"a bearer token is needed\n")
    return _response("200 OK", generate_latest(REGISTRY), CONTENT_TYPE_LATEST)


@contextlib.asynccontextmanager
async def serve_metrics(port: int, token: str | None) -> AsyncIterator[asyncio.Server]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Too slow, cut short, too long or gone: closed without an answer.
        with contextlib.suppress(
            TimeoutError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ConnectionError,
        ):
            async with asyncio.timeout(HEAD_TIMEOUT_SECONDS):
                head = await reader.readuntil(b"\r\n\r\n")
                writer.write(answer(head[:-4], token))
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, port=port, limit=HEAD_LIMIT)
    logger.info("worker metrics on port %d", port)
    try:
        yield server
    finally:
        server.close()
        await server.wait_closed()
