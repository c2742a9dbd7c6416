"""HTTP endpoints under `/api/v1/auth`: register, log in, refresh.

Logging in answers a token pair: a short-lived access token for the API and a
refresh token that buys the next pair once (app.auth.refresh). Wrong password,
unknown email and locked account all get the same 401.
"""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, status
from fastapi.security import OAuth2PasswordRequestForm

from app.auth import accounts, refresh, tokens
from app.auth.dependencies import passwords_of, settings_of, unauthorized
from app.auth.schemas import RefreshRequest, Registration, TokenPair
from app.db.keys import new_id
{%- if cookiecutter.task_queue == "taskiq" %}
from app.db.outbox import enqueue
{%- endif %}
from app.db.session import database
from app.db.types import utcnow
from app.errors import InvalidInputError
{%- if cookiecutter.task_queue == "taskiq" %}
from app.tasks.welcome_email import send_welcome_email
{%- endif %}
from app.users import repository as users
from app.users.schemas import UserCreate, UserRead

router = APIRouter(prefix="/auth", tags=["auth"])

Responses = dict[int | str, dict[str, Any]]
LOGIN_FAILED = "wrong email or password"
REFRESH_FAILED = "invalid, expired or already used refresh token"


async def _issue_pair(request: Request, user_id: uuid.UUID, family: uuid.UUID) -> TokenPair:
    """An access token, and a refresh token of `family`, stored."""
    settings, now = settings_of(request), utcnow()
    access, _ = tokens.issue(settings, "access", subject=user_id, now=now)
    refresh_token, claims = tokens.issue(
        settings, "refresh", subject=user_id, now=now, family=family
    )
    async with database(request).transaction() as connection:
        await refresh.remember(connection, claims)
    return TokenPair(access_token=access, refresh_token=refresh_token)


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    responses={409: {"description": "Email taken."}},
)
async def register(data: Registration, request: Request) -> UserRead:
    minimum = settings_of(request).password_min_length
    if len(data.password) < minimum:
        raise InvalidInputError(f"password: at least {minimum} characters")
    password_hash = await passwords_of(request).hash(data.password)
    async with database(request).transaction() as connection:
{%- if cookiecutter.task_queue == "taskiq" %}
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


@router.post("/token", responses={401: {"description": LOGIN_FAILED}})
async def log_in(
    request: Request, form: Annotated[OAuth2PasswordRequestForm, Depends()]
) -> TokenPair:
    """The OAuth2 password flow: `username` is the email."""
    user_id = await accounts.authenticate(
        database(request), passwords_of(request), settings_of(request), form.username, form.password
    )
    if user_id is None:
        raise unauthorized(LOGIN_FAILED)
    return await _issue_pair(request, user_id, family=new_id())


@router.post("/refresh", responses={401: {"description": REFRESH_FAILED}})
async def refresh_tokens(data: RefreshRequest, request: Request) -> TokenPair:
    """A new pair for a refresh token, which is spent. A token spent before revokes
    its whole family: every refresh token descended from the same login."""
    try:
        claims = tokens.decode(settings_of(request), data.refresh_token, "refresh")
    except tokens.InvalidTokenError as exc:
        raise unauthorized(REFRESH_FAILED) from exc
    if claims.family is None:  # decode() refuses a refresh token without one
        raise unauthorized(REFRESH_FAILED)
    now = utcnow()
    async with database(request).transaction() as connection:
        spent = await refresh.spend(connection, claims, now)
        if not spent:
            await refresh.revoke_family(connection, claims.family, now)
        live = spent and await accounts.is_live(connection, claims.subject)
    if not live:
        raise unauthorized(REFRESH_FAILED)
    return await _issue_pair(request, claims.subject, family=claims.family)
