"""Liveness plus a real round trip to the database."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from app.db.session import ReadConnection

router = APIRouter(tags=["health"])


@router.get("/health", responses={503: {"description": "The database is unreachable."}})
async def health(connection: ReadConnection) -> JSONResponse:
    await connection.execute(text("SELECT 1"))
    return JSONResponse({"status": "ok", "database": "ok"})
