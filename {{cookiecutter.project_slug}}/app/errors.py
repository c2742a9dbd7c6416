"""Domain errors and how every failure maps to an HTTP answer, in one place.

Routes raise `NotFoundError` / `ConflictError`; database failures are mapped here
so no endpoint has to remember them. Every error body is `{"detail": "..."}`.
"""

import json
import logging
import socket

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DBAPIError, InterfaceError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm.exc import StaleDataError

from app.db.error_codes import is_conflict, is_transient

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = "2"


class DomainError(Exception):
    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFoundError(DomainError):
    status_code = 404


class ConflictError(DomainError):
    status_code = 409


async def _domain_error(_: Request, exc: DomainError) -> JSONResponse:
    return JSONResponse({"detail": exc.message}, status_code=exc.status_code)


async def _validation_error(_: Request, exc: RequestValidationError) -> Response:
    # FastAPI's default answer echoes the input as UTF-8, which fails (a 500) when
    # the input holds a lone surrogate; escaping to ASCII always encodes.
    body = json.dumps({"detail": jsonable_encoder(exc.errors())}, ensure_ascii=True)
    return Response(body, status_code=422, media_type="application/json")


async def _stale_data(_: Request, exc: StaleDataError) -> JSONResponse:
    return JSONResponse(
        {"detail": "the resource was modified by another request; read it again and retry"},
        status_code=409,
    )


async def _database_unavailable(_: Request, exc: Exception) -> JSONResponse:
    logger.warning("database unavailable: %s", exc)
    return JSONResponse(
        {"detail": "the database is unavailable; retry later"},
        status_code=503,
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )


async def _database_error(request: Request, exc: DBAPIError) -> JSONResponse:
    """Unique/foreign-key violations are conflicts, outages are transient, and the
    rest (a NOT NULL or CHECK violation, bad SQL) is a bug in this service."""
    if is_conflict(exc):
        logger.info("conflict: %s", exc)
        return JSONResponse({"detail": "the request conflicts with existing data"}, status_code=409)
    if is_transient(exc) or isinstance(exc, InterfaceError):
        return await _database_unavailable(request, exc)
    logger.error("database error", exc_info=exc)
    return JSONResponse({"detail": "internal error"}, status_code=500)


def register_error_handlers(app: FastAPI) -> None:
    app.exception_handler(DomainError)(_domain_error)
    app.exception_handler(RequestValidationError)(_validation_error)
    app.exception_handler(StaleDataError)(_stale_data)
    app.exception_handler(DBAPIError)(_database_error)
    # The pool had no connection within DB_POOL_TIMEOUT, or the driver could not
    # reach the server at all: transient, so the client is told to retry.
    for exc_type in (PoolTimeoutError, ConnectionError, TimeoutError, socket.gaierror):
        app.exception_handler(exc_type)(_database_unavailable)
