"""The current user: `CurrentUserId` in an endpoint's signature requires a valid
access token (`Authorization: Bearer ...`), else 401 with `WWW-Authenticate`.

The token must verify (app.auth.tokens) and its user must still be live: deleting
an account ends its tokens at once, not when they expire. Swagger UI's Authorize
button logs in through the token endpoint named here.
"""

import uuid
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordBearer

from app.auth.accounts import is_live
from app.auth.passwords import Passwords
from app.auth.tokens import InvalidTokenError, decode
from app.db.session import database
from app.settings import Settings

TOKEN_URL = "/api/v1/auth/token"  # noqa: S105 -- a path, not a password
bearer = OAuth2PasswordBearer(tokenUrl=TOKEN_URL, auto_error=False)


def unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"}
    )


def forbidden(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_403_FORBIDDEN, detail)


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def passwords_of(request: Request) -> Passwords:
    passwords: Passwords = request.app.state.passwords
    return passwords


async def current_user_id(
    request: Request, token: Annotated[str | None, Depends(bearer)]
) -> uuid.UUID:
    if token is None:
        raise unauthorized("not authenticated: send an access token as a Bearer token")
    try:
        claims = decode(settings_of(request), token, "access")
    except InvalidTokenError as exc:
        raise unauthorized("invalid or expired access token") from exc
    async with database(request).{{ "primary" if cookiecutter.database != "sqlite" else "read" }}() as connection:
        if not await is_live(connection, claims.subject):
            raise unauthorized("invalid or expired access token")
    return claims.subject


CurrentUserId = Annotated[uuid.UUID, Depends(current_user_id)]
# For endpoints open to any authenticated user: `dependencies=AUTHENTICATED`.
AUTHENTICATED = [Depends(current_user_id)]


def require_self(current: uuid.UUID, user_id: uuid.UUID) -> None:
    """403 unless the current user is `user_id`: users change only themselves."""
    if current != user_id:
        raise forbidden("you can only change your own user and posts")
