"""The id of the request being served, on every log record made while serving it.

It lives in a contextvar, so a traceback, a slow-query line or a database warning
logged deep inside a request carries the same id as its access line. A caller's
`X-Request-ID` (a proxy's, say) is kept when it is short and printable; anything
else gets a fresh id, so no junk reaches the logs.
"""

import logging
import re
import uuid
from collections.abc import Iterable
from contextvars import ContextVar

REQUEST_ID_HEADER = b"x-request-id"
# Printable ASCII without spaces, at most 64 characters.
_ACCEPTABLE = re.compile(rb"[!-~]{1,64}")

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)


def request_id_from(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The caller's id when it is acceptable, else a new one."""
    for name, value in headers:
        if name == REQUEST_ID_HEADER and _ACCEPTABLE.fullmatch(value):
            return value.decode("ascii")
    return uuid.uuid4().hex


class RequestIdFilter(logging.Filter):
    """Stamps `request_id` (None outside a request) on every record a handler emits."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True
