{%- set welcome = cookiecutter.task_queue == "taskiq" and cookiecutter.include_example_models == "yes" -%}
"""HTTP endpoints under `/api/v1/auth`: register, log in, refresh, log out, change the
password.

Logging in answers a token pair: a short-lived access token for the API and a
refresh token that buys the next pair once (app.auth.refresh). A wrong password, an
unknown email and a locked account all get the same 401. Registration, log-in and
refresh are throttled per client address (app.auth.throttle).
"""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, status
from fastapi.security import OAuth2PasswordRequestForm
from sqlalchemy.ext.asyncio import AsyncConnection

from app.auth import login, refresh, sessions, tokens
from app.auth.access import PUBLIC, SignedIn, forbidden, settings_of, unauthorized
from app.auth.passwords import Passwords
from app.auth.schemas import PasswordChange, RefreshRequest, Registration, TokenPair
from app.auth.throttle import throttled
from app.db.keys import new_id
{%- if welcome %}
from app.db.outbox import enqueue
{%- endif %}
from app.db.session import database
from app.db.types import utcnow
from app.errors import InvalidInputError
{%- if welcome %}
from app.tasks.welcome_email import send_welcome_email
{%- endif %}
from app.users import repository as users
from app.users.schemas import UserCreate, UserRead

router = APIRouter(prefix="/auth", tags=["auth"])

LOGIN_FAILED = "wrong email or password"
REFRESH_FAILED = "invalid, expired or already used refresh token"
Responses = dict[int | str, dict[str, Any]]
THROTTLED: Responses = {429: {"description": "Too many from your address: see `Retry-After`."}}
BUSY: Responses = {503: {"description": "Too many password checks at once: see `Retry-After`."}}
EMAIL_TAKEN: Responses = {409: {"description": "Email taken."}}
BAD_LOGIN: Responses = {401: {"description": LOGIN_FAILED}}
BAD_REFRESH: Responses = {401: {"description": REFRESH_FAILED}}
WRONG_PASSWORD: Responses = {
    401: {"description": "No valid access token."},
    403: {"description": "The current password is wrong, or the account is locked."},
}


def passwords_of(request: Request) -> Passwords:
    passwords: Passwords = request.app.state.passwords
    return passwords


def _long_enough(request: Request, password: str, field: str) -> None:
    minimum = settings_of(request).password_min_length
    if len(password) < minimum:
        raise InvalidInputError(f"{field}: at least {minimum} characters")


async def _new_pair(
    request: Request,
    connection: AsyncConnection,
    user_id: uuid.UUID,
    generation: int,
    family: uuid.UUID,
) -> TokenPair:
    """An access token, and a refresh token of `family` stored on `connection`."""
    settings, now = settings_of(request), utcnow()
    access, _ = tokens.issue(settings, "access", subject=user_id, now=now, generation=generation)
    refresh_token, claims = tokens.issue(
        settings, "refresh", subject=user_id, now=now, family=family
    )
    await refresh.remember(connection, claims)
    return TokenPair(access_token=access, refresh_token=refresh_token)


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    responses=EMAIL_TAKEN | THROTTLED | BUSY,
    dependencies=[PUBLIC, Depends(throttled("register"))],
)
async def register(data: Registration, request: Request) -> UserRead:
    """The 409 for a taken email tells that the email is registered: the throttle
    bounds how many emails one address can try (docs/security.md)."""
    _long_enough(request, data.password, "password")
    password_hash = await passwords_of(request).hash(data.password)
    async with database(request).transaction() as connection:
{%- if welcome %}
        user = await users.create_user(
            connection, UserCreate(email=data.email, full_name=data.full_name), password_hash
        )
        await enqueue(connection, send_welcome_email, user_id=user.id)
        return user
{%- else %}
        return await users.create_user(
            connection, UserCreate(email=data.email, full_name=data.full_name), password_hash
        )
{%- endif %}


@router.post(
    "/token",
    responses=BAD_LOGIN | THROTTLED | BUSY,
    dependencies=[PUBLIC, Depends(throttled("token"))],
)
async def log_in(
    request: Request, form: Annotated[OAuth2PasswordRequestForm, Depends()]
) -> TokenPair:
    """The OAuth2 password flow: `username` is the email."""
    account = await login.check_password(
        database(request),
        passwords_of(request),
        settings_of(request),
        form.password,
        email=form.username,
    )
    if account is None:
        raise unauthorized(LOGIN_FAILED)
    async with database(request).transaction() as connection:
        return await _new_pair(
            request, connection, account.id, account.token_generation, family=new_id()
        )


@router.post(
    "/refresh",
    responses=BAD_REFRESH | THROTTLED,
    dependencies=[PUBLIC, Depends(throttled("refresh"))],
)
async def refresh_tokens(data: RefreshRequest, request: Request) -> TokenPair:
    """A new pair for a refresh token, which is spent, in one transaction. A token
    spent before revokes its whole family (every refresh token descended from the
    same log-in), and that revocation is committed before the 401 goes out."""
    try:
        claims = tokens.decode(settings_of(request), data.refresh_token, "refresh")
    except tokens.InvalidTokenError as exc:
        raise unauthorized(REFRESH_FAILED) from exc
    if claims.family is None:  # decode() refuses a refresh token without one
        raise unauthorized(REFRESH_FAILED)
    now, pair = utcnow(), None
    async with database(request).transaction() as connection:
        if not await refresh.spend(connection, claims, now):
            await refresh.revoke_family(connection, claims.family, now)
        elif (generation := await sessions.live_generation(connection, claims.subject)) is not None:
            pair = await _new_pair(request, connection, claims.subject, generation, claims.family)
    if pair is None:
        raise unauthorized(REFRESH_FAILED)
    return pair


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={401: {"description": "Not a refresh token of this service."}},
    dependencies=[PUBLIC],
)
async def log_out(data: RefreshRequest, request: Request) -> None:
    """Revoke the refresh token's family: that log-in's session ends. The token may
    have expired; it must be one this service signed."""
    try:
        claims = tokens.decode(settings_of(request), data.refresh_token, "refresh", expired_ok=True)
    except tokens.InvalidTokenError as exc:
        raise unauthorized(REFRESH_FAILED) from exc
    if claims.family is None:
        raise unauthorized(REFRESH_FAILED)
    async with database(request).transaction() as connection:
        await refresh.revoke_family(connection, claims.family, utcnow())


@router.post(
    "/logout-all",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={401: {"description": "No valid access token."}},
)
async def log_out_everywhere(caller: SignedIn, request: Request) -> None:
    """End every session of the caller: every refresh token, and every access token
    issued until now (this request's included)."""
    async with database(request).transaction() as connection:
        await sessions.end_every_session(connection, caller.id, utcnow())


@router.post(
    "/password",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=WRONG_PASSWORD | BUSY,
)
async def change_password(data: PasswordChange, caller: SignedIn, request: Request) -> None:
    """Change the caller's password and end every session, this one included. The
    current password is checked like a log-in: it counts against the lock-out."""
    _long_enough(request, data.new_password, "new_password")
    passwords = passwords_of(request)
    account = await login.check_password(
        database(request),
        passwords,
        settings_of(request),
        data.current_password,
        user_id=caller.id,
    )
    if account is None:
        raise forbidden("the current password is wrong")
    new_hash = await passwords.hash(data.new_password)
    async with database(request).transaction() as connection:
        await sessions.end_every_session(connection, caller.id, utcnow(), password_hash=new_hash)
