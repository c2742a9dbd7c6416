"""The limits every request passes before a route acts on it (docs/security.md).

- Request bodies: at most MAX_REQUEST_BYTES, or the limit a route declares for itself
  with `openapi_extra=body_limit("<setting>")`{% if cookiecutter.__users == "yes" %} (the bulk endpoints: BULK_MAX_REQUEST_BYTES){% endif %}.
  A Content-Length over it gets 413 before a byte is read; a body sent without one
  (chunked) is counted as it arrives and refused at the limit. The 413 closes the
  connection, so the server reads nothing more of that body.
- CORS: only for the origins in CORS_ORIGINS; with none (the default), no CORS header.
- /docs, /redoc and /openapi.json exist only with DOCS_ENABLED (by default, only in
  development).

The body limit is pure ASGI (not BaseHTTPMiddleware), so streaming responses stay
streams. A route's own limit is read from the route that routing chose, when it first
reads its body (as FastAPI's own `max_body_size` does; that one takes a number when
the route is declared, these come from the settings).
"""

from typing import Any, TypedDict

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.settings import Settings

# In a route's openapi_extra: the setting that holds its body limit. The OpenAPI
# document shows the limit itself instead (install_edge).
LIMIT_SETTING = "x-body-limit-setting"
CORS_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
CORS_HEADERS = ["Authorization", "Content-Type", "X-Request-ID"]
CORS_EXPOSED_HEADERS = ["Link", "Retry-After", "X-Request-ID"]
CORS_MAX_AGE = 600


class DocumentationUrls(TypedDict):
    openapi_url: str | None
    docs_url: str | None
    redoc_url: str | None


def documentation_urls(settings: Settings) -> DocumentationUrls:
    """FastAPI's three URLs when DOCS_ENABLED; otherwise none of them exists (404)."""
    if settings.docs_served:
        return {"openapi_url": "/openapi.json", "docs_url": "/docs", "redoc_url": "/redoc"}
    return {"openapi_url": None, "docs_url": None, "redoc_url": None}


def body_limit(setting: str) -> dict[str, Any]:
    """`openapi_extra` for a route whose bodies may be larger than MAX_REQUEST_BYTES:
    the name of the int setting that holds its own limit."""
    field = Settings.model_fields.get(setting)
    if field is None or field.annotation is not int:
        raise ValueError(f"body_limit: {setting!r} is not an int setting of app.settings")
    return {LIMIT_SETTING: setting}


def install_edge(app: FastAPI, settings: Settings) -> None:
    """The body limit and, with CORS_ORIGINS, CORS; the limits in the OpenAPI document."""
    app.add_middleware(RequestBodyLimit, settings=settings)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=CORS_METHODS,
            allow_headers=CORS_HEADERS,
            expose_headers=CORS_EXPOSED_HEADERS,
            max_age=CORS_MAX_AGE,
        )
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:  # generate() fills it in: document the limits once
            app.openapi_schema = _document_limits(generate(), settings)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's "Extending OpenAPI"


class BodyTooLarge(HTTPException):
    """Raised from `receive`, that is, in a route reading its body: FastAPI lets an
    HTTPException through its body parsing, and the app's exception handling (inside
    this middleware) answers it, as `{"detail": ...}`."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            status_code=413,
            detail=f"the request body is larger than {limit} bytes",
            # The rest of the body is never read: the server closes the connection.
            headers={"Connection": "close"},
        )


class RequestBodyLimit:
    """Counts each request's body against its limit as the route reads it."""

    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    def limit_of(self, scope: Scope) -> int:
        """The limit of the route routing chose, if it declares one (`body_limit`)."""
        extra = getattr(scope.get("route"), "openapi_extra", None) or {}
        setting = extra.get(LIMIT_SETTING)
        return int(getattr(self.settings, setting)) if setting else self.settings.max_request_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        received = 0

        async def receive_within_limit() -> Message:
            nonlocal received
            limit = self.limit_of(scope)
            if declared is not None and declared > limit:
                raise BodyTooLarge(limit)  # before a byte of it is read
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def send_and_close_if_unread(message: Message) -> None:
            # A route that never read a body over its limit: the server must not read
            # it after the answer either.
            if message["type"] == "http.response.start" and (
                declared is not None and declared > self.limit_of(scope)
            ):
                headers = list(message.get("headers", []))
                if (b"connection", b"close") not in headers:
                    message["headers"] = [*headers, (b"connection", b"close")]
            await send(message)

        await self.app(scope, receive_within_limit, send_and_close_if_unread)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses such a request before it gets here
    return None


def _document_limits(schema: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Every operation that takes a body answers 413 above its limit; a route with a
    limit of its own states it in its description."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            setting = operation.pop(LIMIT_SETTING, None)
            if "requestBody" not in operation:
                continue
            limit = getattr(settings, setting) if setting else settings.max_request_bytes
            name = (setting or "max_request_bytes").upper()
            operation.setdefault("responses", {})["413"] = {
                "description": f"The body is larger than {limit} bytes ({name})."
            }
            if setting:
                stated = f"Bodies up to {limit} bytes ({name}); a larger one gets 413."
                operation["description"] = "\n\n".join(
                    part for part in (operation.get("description"), stated) if part
                )
    return schema
