"""Who may call what: every endpoint states exactly one access rule in its signature.

The rules, each a dependency (tests/test_access.py fails for a route with none, or
with two, and checks every route as anonymous, owner, another user and admin):

- `PUBLIC`: anyone, and who calls does not matter (log-in, registration, probes).
- `Anyone`: anyone; a valid access token, when sent, says who calls, and the answer
  may show them more (their own email and roles).
- `SignedIn`: any user with a valid access token.
- `SelfOrAdmin`: the user named by `{user_id}` in the path, or an admin.
- `SelfOnly`: the user named by `{user_id}` in the path (posting as them).
- `AdminOnly`: an admin: a user with the `admin` role, which only an admin (or
  `python -m scripts.users grant-admin EMAIL`) can give.
- `require_metrics_token` (app.metrics): the scraper, with METRICS_TOKEN when set.

An access token must verify (app.auth.tokens), its user must be live (deleting an
account ends its tokens at once) and it must carry the user's current token
generation (logging out everywhere or changing the password ends every older one).
The user's row is read once per request that sends a token, on the primary, and
that read also says whether they are an admin: a role given or taken takes effect
at the next request, not when the token expires. Missing or invalid tokens get 401
with `WWW-Authenticate: Bearer`; a valid token without the right gets 403.
Docs: https://fastapi.tiangolo.com/tutorial/security/
"""

import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import bindparam, exists, select

from app.auth.tokens import InvalidTokenError, decode
from app.db.session import database
from app.metrics import require_metrics_token
from app.settings import Settings
from app.users.models import Role, User, user_roles

ADMIN_ROLE = "admin"
TOKEN_URL = "/api/v1/auth/token"  # noqa: S105 -- a path, not a password
# Swagger UI's Authorize button logs in through the token endpoint named here.
bearer = OAuth2PasswordBearer(tokenUrl=TOKEN_URL, auto_error=False)

_IS_ADMIN = exists(
    select(user_roles.c.user_id)
    .join(Role, Role.id == user_roles.c.role_id)
    .where(user_roles.c.user_id == User.id, Role.name == ADMIN_ROLE)
)
_CALLER = select(User.token_generation, _IS_ADMIN.label("is_admin")).where(
    User.id == bindparam("user_id"), User.is_deleted.is_(False)
)


@dataclass(frozen=True)
class Caller:
    """Who sent the request: a live user with a valid access token."""

    id: uuid.UUID
    is_admin: bool

    def may_see(self, user_id: uuid.UUID) -> bool:
        """Whether the caller may see the user's private fields (email, roles)."""
        return self.is_admin or self.id == user_id


def unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"}
    )


def forbidden(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_403_FORBIDDEN, detail)


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def caller_of(
    request: Request, token: Annotated[str | None, Depends(bearer)]
) -> Caller | None:
    """The caller, or None when no token was sent; 401 for a token that does not hold."""
    if token is None:
        return None
    refused = unauthorized("invalid or expired access token")
    try:
        claims = decode(settings_of(request), token, "access")
    except InvalidTokenError as exc:
        raise refused from exc
    async with database(request).{{ "primary_read" if cookiecutter.database != "sqlite" else "read" }}() as connection:
        row = (await connection.execute(_CALLER, {"user_id": claims.subject})).first()
    if row is None or row.token_generation != claims.generation:
        raise refused
    return Caller(claims.subject, bool(row.is_admin))


async def public() -> None:
    """Anyone; the endpoint does not look at who calls."""


async def anyone(caller: Annotated[Caller | None, Depends(caller_of)]) -> Caller | None:
    """Anyone; the caller when a valid token was sent."""
    return caller


async def signed_in(caller: Annotated[Caller | None, Depends(caller_of)]) -> Caller:
    if caller is None:
        raise unauthorized("not authenticated: send an access token as a Bearer token")
    return caller


async def admin_only(caller: Annotated[Caller, Depends(signed_in)]) -> Caller:
    if not caller.is_admin:
        raise forbidden("this needs the admin role")
    return caller


async def self_or_admin(
    user_id: uuid.UUID, caller: Annotated[Caller, Depends(signed_in)]
) -> Caller:
    if not caller.may_see(user_id):
        raise forbidden("you can only change your own user")
    return caller


async def self_only(user_id: uuid.UUID, caller: Annotated[Caller, Depends(signed_in)]) -> Caller:
    if caller.id != user_id:
        raise forbidden("you can only post as yourself")
    return caller


PUBLIC = Depends(public)
Anyone = Annotated[Caller | None, Depends(anyone)]
SignedIn = Annotated[Caller, Depends(signed_in)]
AdminOnly = Annotated[Caller, Depends(admin_only)]
SelfOrAdmin = Annotated[Caller, Depends(self_or_admin)]
SelfOnly = Annotated[Caller, Depends(self_only)]
# For endpoints that need the rule but not the caller: `dependencies=[ADMIN_ONLY]`.
SIGNED_IN = Depends(signed_in)
ADMIN_ONLY = Depends(admin_only)
RULES: frozenset[Any] = frozenset(
    {public, anyone, signed_in, admin_only, self_or_admin, self_only, require_metrics_token}
)
