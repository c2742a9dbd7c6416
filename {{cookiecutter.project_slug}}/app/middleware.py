"""What happens around every request, as one pure ASGI middleware.

Pure ASGI (not BaseHTTPMiddleware), so streaming responses stay streams. Per request:
the request id goes into its contextvar and back to the caller as `X-Request-ID`;
an unhandled error is logged once, at ERROR with its traceback and the request id,
and answered `500 {"detail": "internal error"}`; the request is counted and timed
for /metrics (app.metrics); and with LOG_REQUESTS one access line is logged:
method, path, status, duration.
"""

import json
import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.metrics import record_request, route_of
from app.request_id import REQUEST_ID_HEADER, request_id_from, request_id_var

request_logger = logging.getLogger("app.request")
error_logger = logging.getLogger("app.errors")
_INTERNAL_ERROR = json.dumps({"detail": "internal error"}).encode()


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, log_requests: bool, debug: bool = False) -> None:
        self.app = app
        self.log_requests = log_requests
        self.debug = debug

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = request_id_from(scope["headers"])
        token = request_id_var.set(request_id)
        header = (REQUEST_ID_HEADER, request_id.encode("ascii"))
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status, response_started = message["status"], True
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            error_logger.exception("unhandled error in %s %s", scope["method"], scope["path"])
            if response_started or self.debug:
                raise  # the server closes the connection (or shows the debug page)
            await send_with_id(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send_with_id({"type": "http.response.body", "body": _INTERNAL_ERROR})
        finally:
            elapsed = time.perf_counter() - started
            record_request(scope["method"], route_of(scope), status, elapsed)
            if self.log_requests:
                request_logger.info(
                    "%s %s %s",
                    scope["method"],
                    scope["path"],
                    status,
                    extra={
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                    },
                )
            request_id_var.reset(token)
