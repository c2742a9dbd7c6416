"""Structured logs: one JSON object per line, and one line per request.

JSON lines are what log collectors parse without configuration; set
`LOG_FORMAT=text` for a readable console while developing.
Docs: https://docs.python.org/3/library/logging.config.html
"""

import json
import logging
import logging.config
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.settings import Settings

request_logger = logging.getLogger("app.request")
REQUEST_ID = b"x-request-id"
_SAFE_REQUEST_ID = re.compile(rb"[A-Za-z0-9._-]{1,128}")

# Attributes every LogRecord has; anything else was passed with `extra=` and is logged.
_STANDARD_ATTRIBUTES = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry |= {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRIBUTES}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(settings: Settings) -> None:
    formatter = "json" if settings.log_format == "json" else "text"
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {
                "json": {"()": JsonFormatter},
                "text": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
            },
            "handlers": {
                "stderr": {"class": "logging.StreamHandler", "formatter": formatter},
            },
            "root": {"handlers": ["stderr"], "level": settings.log_level},
            "loggers": {
                # SQL echo goes through the same handler, so it is structured too.
                "sqlalchemy.engine": {"level": "INFO" if settings.database_echo else "WARNING"},
                "uvicorn.access": {"level": "WARNING"},
            },
        }
    )


def _request_id(scope: Scope) -> bytes:
    """The caller's id when it is a plain token, else a fresh one (never echo junk)."""
    for name, value in scope["headers"]:
        if name == REQUEST_ID and _SAFE_REQUEST_ID.fullmatch(value):
            return bytes(value)
    return uuid.uuid4().hex.encode()


class RequestLogMiddleware:
    """Log method, path, status and duration of every request (pure ASGI: no
    buffering, so streaming responses stay streams).

    The request id comes from the caller's `X-Request-ID` (a proxy's, say) or is
    made here, and is sent back in the response, so a client's report and the log
    line can be matched.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        request_id = _request_id(scope)

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (REQUEST_ID, request_id)]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            request_logger.info(
                "%s %s %s",
                scope["method"],
                scope["path"],
                status,
                extra={
                    "request_id": request_id.decode("latin-1"),
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )
