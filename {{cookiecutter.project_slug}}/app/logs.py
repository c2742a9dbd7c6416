"""Structured logs: one JSON object per line, each with the request id when there is one.

JSON lines are what log collectors parse without configuration; set
`LOG_FORMAT=text` for a readable console while developing. uvicorn's own loggers
go through the same handler, so its lines are JSON too.

Records are written by a thread of their own (QueueHandler/QueueListener): the
event loop only enqueues them, so formatting JSON and a slow or blocked stderr (a
log collector applying back-pressure) never hold up a request.
Docs: https://docs.python.org/3/howto/logging-cookbook.html#dealing-with-handlers-that-block
"""

import copy
import json
import logging
import queue
import sys
import time
from logging.handlers import QueueHandler, QueueListener
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
        elif record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, default=str)


class _Enqueue(QueueHandler):
    """Hands records to the writer thread. What belongs to the moment of logging is
    settled here: the request id (a contextvar, so the filter runs on this side),
    the message with its arguments, and the traceback as text."""

    _tracebacks = logging.Formatter()

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        record = copy.copy(record)
        record.msg, record.args = record.getMessage(), None
        if record.exc_info:
            record.exc_text = self._tracebacks.formatException(record.exc_info)
            record.exc_info = None
        return record


class LogWriter:
    """The thread that writes the records. `stop()` writes out what is queued and
    hands stderr back to the logging calls themselves, for whatever is logged after
    the app has shut down (uvicorn's last lines)."""

    def __init__(
        self, records: queue.SimpleQueue[logging.LogRecord], stderr: logging.Handler
    ) -> None:
        self._stderr = stderr
        self._listener = QueueListener(records, stderr, respect_handler_level=True)
        self._listener.start()

    def stop(self) -> None:
        self._listener.stop()
        self._stderr.addFilter(RequestIdFilter())
        logging.getLogger().handlers[:] = [self._stderr]


def configure_logging(settings: Settings) -> LogWriter:
    """Route every logger to the writer thread; the caller stops the returned
    writer at shutdown."""
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setFormatter(
        JsonFormatter() if settings.log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    enqueue = _Enqueue(records)
    enqueue.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.handlers[:] = [enqueue]
    root.setLevel(settings.log_level)
    # SQL echo goes through the same handler, so it is structured too.
    logging.getLogger("sqlalchemy.engine").setLevel(
        logging.INFO if settings.database_echo else logging.WARNING
    )
    # uvicorn's loggers propagate to the root; its access log is replaced by the
    # app.request line (app.middleware).
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    return LogWriter(records, stderr)
