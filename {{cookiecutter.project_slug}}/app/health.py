"""Liveness plus a real round trip to the database."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from app.db.session import ReadSession

router = APIRouter(tags=["health"])


@router.get("/health", responses={503: {"description": "The database is unreachable."}})
async def health(session: ReadSession) -> JSONResponse:
    await session.execute(text("SELECT 1"))
    return JSONResponse({"status": "ok", "database": "ok"})
