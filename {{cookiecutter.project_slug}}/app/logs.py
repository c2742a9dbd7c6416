"""Structured logs: one JSON object per line, each with the request id when there is one.

JSON lines are what log collectors parse without configuration; set
`LOG_FORMAT=text` for a readable console while developing. uvicorn's own loggers
go through the same handler, so its lines are JSON too. The formatter is written
for the per-request line's sake: it runs once per request.
Docs: https://docs.python.org/3/library/logging.html
"""

import json
import logging
import sys
import time
from functools import lru_cache
from typing import Any

from app.request_id import RequestIdFilter
from app.settings import Settings

# Attributes every LogRecord has; anything else was passed with `extra=` and is logged.
_STANDARD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "request_id",
    "color_message",  # uvicorn's copy of the message with terminal colours
}
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"
_dumps = json.JSONEncoder(default=str).encode


@lru_cache(maxsize=4)
def _utc_second(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(second))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _utc_second(int(record.created)),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = record.__dict__
        if fields.get("request_id") is not None:
            entry["request_id"] = fields["request_id"]
        for key in fields.keys() - _STANDARD_ATTRIBUTES:
            entry[key] = fields[key]
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return _dumps(entry)


def configure_logging(settings: Settings) -> None:
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setFormatter(
        JsonFormatter() if settings.log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    stderr.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.handlers[:] = [stderr]
    root.setLevel(settings.log_level)
    # SQL echo goes through the same handler, so it is structured too.
    logging.getLogger("sqlalchemy.engine").setLevel(
        logging.INFO if settings.database_echo else logging.WARNING
    )
{%- if cookiecutter.database == "sqlite" %}
    # aiosqlite logs every statement with its values at DEBUG: not even LOG_LEVEL=DEBUG
    # may put users' data in the logs, only DATABASE_ECHO.
    logging.getLogger("aiosqlite").setLevel(
        logging.DEBUG if settings.database_echo else logging.INFO
    )
{%- endif %}
    # uvicorn's loggers propagate to the root; its access log is replaced by the
    # app.request line (app.middleware).
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
