"""Domain errors and how every failure maps to an HTTP answer, in one place.

Routes raise `NotFoundError` / `ConflictError`; database failures are mapped here
so no endpoint has to remember them. Only errors raised by the database driver
(SQLAlchemy's `DBAPIError`, classified by `app.db.error_codes`) and SQLAlchemy's own
pool timeout can become 409 or 503: a `TimeoutError` from other code (an outbound
HTTP call, say) is a bug or an outage of something else, and answers 500 through
`app.middleware`. Every error body is `{"detail": "..."}`.
"""

import json
import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm.exc import StaleDataError

from app.db.error_codes import is_configuration_error, is_conflict, is_transient

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = "2"
INTERNAL_ERROR = {"detail": "internal error"}
# A 422's size, whatever the input: errors listed, characters per message and per
# part of a field's location.
MAX_VALIDATION_ERRORS = 50
MAX_MESSAGE_CHARS = 200
MAX_LOC_CHARS = 100


class DomainError(Exception):
    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFoundError(DomainError):
    status_code = 404


class ConflictError(DomainError):
    status_code = 409


class InvalidInputError(DomainError):
    """A well-formed request the service cannot act on (a bad cursor, say)."""

    status_code = 422


async def _domain_error(_: Request, exc: DomainError) -> JSONResponse:
    return JSONResponse({"detail": exc.message}, status_code=exc.status_code)


async def _validation_error(_: Request, exc: RequestValidationError) -> Response:
    """Each error names the field (`loc`) and the rule (`type`, `msg`), never the input:
    FastAPI's default echoes it (`input`, `ctx`), handing a client's whole body back to
    it and to every log and proxy on the way. What is left is bounded too: a message
    may quote part of the input (email-validator lists the characters it refused), a
    `loc` may hold a client's key, and a bulk body can fail on every row."""
    errors = exc.errors()
    detail = [_without_input(error) for error in errors[:MAX_VALIDATION_ERRORS]]
    if len(errors) > MAX_VALIDATION_ERRORS:
        more = len(errors) - MAX_VALIDATION_ERRORS
        detail.append({"loc": [], "msg": f"and {more} more errors", "type": "too_many_errors"})
    # ASCII escapes: a lone surrogate in a message cannot be encoded as UTF-8 (a 500).
    body = json.dumps({"detail": detail}, ensure_ascii=True)
    return Response(body, status_code=422, media_type="application/json")


def _without_input(error: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "loc": [p if isinstance(p, int) else _bounded(str(p), MAX_LOC_CHARS) for p in error["loc"]],
        "msg": _bounded(str(error["msg"]), MAX_MESSAGE_CHARS),
        "type": _bounded(str(error["type"]), MAX_LOC_CHARS),
    }


def _bounded(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


async def _stale_data(_: Request, exc: StaleDataError) -> JSONResponse:
    return JSONResponse(
        {"detail": "the resource was modified by another request; read it again and retry"},
        status_code=409,
    )


def database_unavailable() -> JSONResponse:
    return JSONResponse(
        {"detail": "the database is unavailable; retry later"},
        status_code=503,
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )


async def _pool_timeout(_: Request, exc: PoolTimeoutError) -> JSONResponse:
    logger.warning("database unavailable: %s", exc)
    return database_unavailable()


async def _database_error(_: Request, exc: DBAPIError) -> JSONResponse:
    """Unique/foreign-key violations are conflicts and outages are transient; {% if cookiecutter.database == "sqlite" %}a
    database file that cannot be opened needs an operator{% else %}bad
    credentials or a missing database need an operator{% endif %}, and the rest (a NOT NULL or
    CHECK violation, bad SQL) is a bug in this service: both are a logged 500."""
    if is_conflict(exc):
        # The class only: the driver's message can quote the row (an email, say).
        logger.info("conflict: %s", type(exc.orig).__name__)
        return JSONResponse({"detail": "the request conflicts with existing data"}, status_code=409)
    if is_configuration_error(exc):
        logger.error("database configuration error (check DATABASE_URL): %s", exc.orig)
        return JSONResponse(INTERNAL_ERROR, status_code=500)
    if is_transient(exc):
        logger.warning("database unavailable: %s", exc.orig)
        return database_unavailable()
    logger.error("database error", exc_info=exc)
    return JSONResponse(INTERNAL_ERROR, status_code=500)


def register_error_handlers(app: FastAPI) -> None:
    app.exception_handler(DomainError)(_domain_error)
    app.exception_handler(RequestValidationError)(_validation_error)
    app.exception_handler(StaleDataError)(_stale_data)
    app.exception_handler(DBAPIError)(_database_error)
    # Every pooled connection busy for DB_POOL_TIMEOUT: retry later.
    app.exception_handler(PoolTimeoutError)(_pool_timeout)
