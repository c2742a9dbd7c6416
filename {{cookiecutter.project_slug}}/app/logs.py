"""Structured logs: one JSON object per line, each with the request id when there is one.

JSON lines are what log collectors parse without configuration; set
`LOG_FORMAT=text` for a readable console while developing. uvicorn's own loggers
go through the same handler, so its lines are JSON too.
Docs: https://docs.python.org/3/library/logging.config.html
"""

import json
import logging
import logging.config
import time
from typing import Any

from app.request_id import RequestIdFilter
from app.settings import Settings

# Attributes every LogRecord has; anything else was passed with `extra=` and is logged.
_STANDARD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "request_id",
}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.gmtime(record.created)),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id is not None:
            entry["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRIBUTES:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(settings: Settings) -> None:
    formatter = "json" if settings.log_format == "json" else "text"
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "filters": {"request_id": {"()": RequestIdFilter}},
            "formatters": {
                "json": {"()": JsonFormatter},
                "text": {
                    "format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"
                },
            },
            "handlers": {
                "stderr": {
                    "class": "logging.StreamHandler",
                    "formatter": formatter,
                    "filters": ["request_id"],
                },
            },
            "root": {"handlers": ["stderr"], "level": settings.log_level},
            "loggers": {
                # SQL echo goes through the same handler, so it is structured too.
                "sqlalchemy.engine": {"level": "INFO" if settings.database_echo else "WARNING"},
                # uvicorn's loggers propagate to the root handler; its access log is
                # replaced by app.request's line.
                "uvicorn": {"handlers": [], "propagate": True, "level": "INFO"},
                "uvicorn.error": {"handlers": [], "propagate": True},
                "uvicorn.access": {"handlers": [], "propagate": True, "level": "WARNING"},
            },
        }
    )
