{%- set db = cookiecutter.database -%}
"""Domain errors and how every failure maps to an HTTP answer, in one place.

Routes raise `NotFoundError` / `ConflictError`; database failures are mapped here
so no endpoint has to remember them. Every error body is `{"detail": "..."}`.
"""

import json
import logging

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
{%- if db == "postgresql" %}
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
{%- else %}
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
{%- endif %}
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm.exc import StaleDataError

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = "2"
{%- if db == "postgresql" %}
QUERY_CANCELED = "57014"  # SQLSTATE for statement_timeout
{%- endif %}


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


async def _integrity_error(_: Request, exc: IntegrityError) -> JSONResponse:
    logger.info("integrity error: %s", exc)
    return JSONResponse({"detail": "the request conflicts with existing data"}, status_code=409)


async def _database_unavailable(_: Request, exc: Exception) -> JSONResponse:
    logger.warning("database unavailable: %s", exc)
    return JSONResponse(
        {"detail": "the database is unavailable; retry later"},
        status_code=503,
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )


{% if db == "postgresql" -%}
async def _dbapi_error(request: Request, exc: DBAPIError) -> JSONResponse:
    if getattr(exc.orig, "sqlstate", None) == QUERY_CANCELED:
        return await _database_unavailable(request, exc)
    raise exc


{% endif -%}
def register_error_handlers(app: FastAPI) -> None:
    app.exception_handler(DomainError)(_domain_error)
    app.exception_handler(RequestValidationError)(_validation_error)
    app.exception_handler(StaleDataError)(_stale_data)
    app.exception_handler(IntegrityError)(_integrity_error)
    # Connection refused or dropped, pool exhausted, statement timeout, deadlock:
    # all transient, so the client is told to retry.
    for exc_type in (OperationalError, InterfaceError, PoolTimeoutError, OSError):
        app.exception_handler(exc_type)(_database_unavailable)
{%- if db == "postgresql" %}
    # statement_timeout cancels the query with a plain DBAPIError: also transient.
    app.exception_handler(DBAPIError)(_dbapi_error)
{%- endif %}
