"""Authentication, rule by rule, with real tokens (`auth_client` checks them; the
other tests act as an admin owner of what they touch).

Registration never answers a password or a hash; a wrong password and an unknown
email get the same 401 in about the same time; tokens pin their algorithm, their
type and the user's token generation; a refresh token works once, reusing one
revokes its family, and a refresh spends and issues in one transaction; logging
out ends one session, logging out everywhere and changing the password end them
all, access tokens included. Who may call what: tests/test_access.py; the log-in
defences under attack: tests/test_login_defences.py.
"""

import asyncio
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import jwt
import pytest
from httpx import ASGITransport, AsyncClient
from pydantic import ValidationError
from sqlalchemy import event, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.auth import tokens
from app.db.types import utcnow
from app.main import create_app
from app.settings import Settings
from app.users.models import User
from tests.helpers import RolledBackDatabase, real_hashing_cost

PASSWORD = "correct horse battery staple"  # noqa: S105 -- the tests' user's password
NEW_PASSWORD = "a new password, long enough"  # noqa: S105
TOKEN = "/api/v1/auth/token"  # noqa: S105 -- a path
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
LOGOUT_ALL = "/api/v1/auth/logout-all"
PASSWORD_CHANGE = "/api/v1/auth/password"  # noqa: S105 -- a path
ME = "/api/v1/users/me"


async def register(client: AsyncClient, email: str, password: str = PASSWORD) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/auth/register",
        json={"email": email, "full_name": "Ada Lovelace", "password": password},
    )
    assert response.status_code == 201, response.text
    user: dict[str, Any] = response.json()
    return user


async def log_in(client: AsyncClient, email: str, password: str = PASSWORD) -> dict[str, Any]:
    response = await client.post(TOKEN, data={"username": email, "password": password})
    assert response.status_code == 200, response.text
    pair: dict[str, Any] = response.json()
    return pair


def bearer(pair: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {pair['access_token']}"}


def _keys(value: object) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


def _client(app: Any) -> AsyncClient:
    return AsyncClient(
        transport=ASGITransport(app=app, raise_app_exceptions=False), base_url="http://test"
    )


# Registration


async def test_register_answers_the_user_and_never_a_password(auth_client: AsyncClient) -> None:
    user = await register(auth_client, "Ada@Example.com")
    assert user["email"] == "ada@example.com"
    assert not {k for k in _keys(user) if "password" in k or "hash" in k}
    pair = await log_in(auth_client, "ADA@example.com")  # any letter case
    me = await auth_client.get(ME, headers=bearer(pair))
    assert me.status_code == 200
    assert me.json()["id"] == user["id"]
    assert not {k for k in _keys(me.json()) if "password" in k or "hash" in k}


async def test_register_refuses_short_passwords_and_taken_emails(
    auth_client: AsyncClient, test_settings: Settings
) -> None:
    short = "x" * (test_settings.password_min_length - 1)
    response = await auth_client.post(
        "/api/v1/auth/register",
        json={"email": "bob@example.com", "full_name": "Bob", "password": short},
    )
    assert response.status_code == 422
    assert "at least" in response.text
    assert short not in response.text
    await register(auth_client, "bob@example.com")
    again = await auth_client.post(
        "/api/v1/auth/register",
        json={"email": "BOB@example.com", "full_name": "Bob", "password": PASSWORD},
    )
    assert again.status_code == 409
    assert "bob" not in again.text.lower()  # the answer names no email


# Logging in


async def test_wrong_password_and_unknown_email_get_the_same_401(
    auth_client: AsyncClient,
) -> None:
    await register(auth_client, "cy@example.com")
    wrong = await auth_client.post(TOKEN, data={"username": "cy@example.com", "password": "no"})
    unknown = await auth_client.post(
        TOKEN, data={"username": "nobody@example.com", "password": PASSWORD}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.headers["www-authenticate"] == unknown.headers["www-authenticate"] == "Bearer"


async def test_unknown_email_takes_as_long_as_a_wrong_password(
    connection: AsyncConnection, test_settings: Settings
) -> None:
    """With the real hashing cost: an unknown email still verifies a hash. The fastest
    of seven interleaved tries each: load on the machine only ever adds time."""
    settings = real_hashing_cost(test_settings).model_copy(update={"login_max_failures": 100})
    app = create_app(settings)
    app.state.database = RolledBackDatabase(connection)
    async with _client(app) as client:
        await register(client, "dee@example.com")

        async def attempt(email: str) -> float:
            started = time.perf_counter()
            response = await client.post(TOKEN, data={"username": email, "password": "wrong"})
            assert response.status_code == 401
            return time.perf_counter() - started

        wrong, unknown = [], []
        for _ in range(7):
            wrong.append(await attempt("dee@example.com"))
            unknown.append(await attempt("nobody@example.com"))
    ratio = min(unknown) / min(wrong)
    assert 0.6 < ratio < 1.6, (wrong, unknown)


async def test_the_hash_is_renewed_when_the_cost_changes(
    connection: AsyncConnection, test_settings: Settings
) -> None:
    old = create_app(test_settings)
    old.state.database = RolledBackDatabase(connection)
    async with _client(old) as client:
        await register(client, "eve@example.com")
    stored = "SELECT password_hash FROM users WHERE email = 'eve@example.com'"
    before = await connection.scalar(text(stored))
    assert f"t={test_settings.password_hash_time_cost}," in before

    dearer = test_settings.model_copy(
        update={"password_hash_time_cost": test_settings.password_hash_time_cost + 1}
    )
    new = create_app(dearer)
    new.state.database = RolledBackDatabase(connection)
    async with _client(new) as client:
        await log_in(client, "eve@example.com")
        after = await connection.scalar(text(stored))
        assert f"t={dearer.password_hash_time_cost}," in after
        await log_in(client, "eve@example.com")  # the new hash verifies
    assert after != before


async def test_failed_logins_lock_the_account_for_every_worker(
    connection: AsyncConnection, test_settings: Settings
) -> None:
    """Two apps stand for two workers: the count and the lock-out are in the database."""
    quick = test_settings.model_copy(update={"login_max_failures": 3, "login_lockout_seconds": 60})
    workers = []
    for _ in range(2):
        app = create_app(quick)
        app.state.database = RolledBackDatabase(connection)
        workers.append(app)
    async with _client(workers[0]) as first, _client(workers[1]) as second:
        await register(first, "fay@example.com")
        for client in (first, second, first):  # 3 failures, spread over both workers
            failed = await client.post(
                TOKEN, data={"username": "fay@example.com", "password": "wrong"}
            )
            assert failed.status_code == 401
        right = {"username": "fay@example.com", "password": PASSWORD}
        locked = await second.post(TOKEN, data=right)
        assert locked.status_code == 401  # even the right password, with the same body
        assert locked.json() == failed.json()

        await connection.execute(
            update(User)
            .where(User.email == "fay@example.com")
            .values(locked_until=utcnow() - timedelta(seconds=1))
        )
        await log_in(second, "fay@example.com")  # the lock-out is over
        count = "SELECT failed_logins FROM users WHERE email = 'fay@example.com'"
        assert await connection.scalar(text(count)) == 0


async def test_a_success_clears_the_count(
    auth_client: AsyncClient, test_settings: Settings
) -> None:
    await register(auth_client, "gus@example.com")
    for _ in range(test_settings.login_max_failures - 1):
        await auth_client.post(TOKEN, data={"username": "gus@example.com", "password": "wrong"})
    await log_in(auth_client, "gus@example.com")
    await auth_client.post(TOKEN, data={"username": "gus@example.com", "password": "wrong"})
    await log_in(auth_client, "gus@example.com")  # not locked: the count started again


# Tokens


async def test_tokens_carry_the_pinned_claims(
    auth_client: AsyncClient, test_settings: Settings
) -> None:
    user = await register(auth_client, "hal@example.com")
    pair = await log_in(auth_client, "hal@example.com")
    assert pair["token_type"] == "bearer"  # noqa: S105 -- OAuth2's token type
    for name, kind in (("access_token", "access"), ("refresh_token", "refresh")):
        header = jwt.get_unverified_header(pair[name])
        assert header["alg"] == "HS256"
        claims = jwt.decode(pair[name], test_settings.jwt_secret_key, algorithms=["HS256"])
        assert {"exp", "iat", "sub", "type", "jti"} <= set(claims)
        assert claims["sub"] == user["id"]
        assert claims["type"] == kind
        assert ("gen" in claims) == (kind == "access")


async def test_forged_unsigned_expired_and_mistyped_tokens_are_refused(
    auth_client: AsyncClient, test_settings: Settings
) -> None:
    user = await register(auth_client, "ida@example.com")
    pair = await log_in(auth_client, "ida@example.com")
    claims = jwt.decode(pair["access_token"], test_settings.jwt_secret_key, algorithms=["HS256"])
    now = utcnow()
    user_id = uuid.UUID(user["id"])
    refused = {
        "unsigned (alg none)": jwt.encode(claims, key=None, algorithm="none"),
        "signed with another key": jwt.encode(
            claims, "another-key-of-at-least-32-bytes-long", algorithm="HS256"
        ),
        "expired": tokens.issue(
            test_settings, "access", subject=user_id, now=now - timedelta(days=1), generation=0
        )[0],
        "of a later generation": tokens.issue(
            test_settings, "access", subject=user_id, now=now, generation=1
        )[0],
        "a refresh token": pair["refresh_token"],
        "no jti": jwt.encode(
            {k: v for k, v in claims.items() if k != "jti"},
            test_settings.jwt_secret_key,
            algorithm="HS256",
        ),
        "no generation": jwt.encode(
            {k: v for k, v in claims.items() if k != "gen"},
            test_settings.jwt_secret_key,
            algorithm="HS256",
        ),
    }
    for why, token in refused.items():
        response = await auth_client.get(ME, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, why
    assert (await auth_client.get(ME, headers=bearer(pair))).status_code == 200
    as_refresh = await auth_client.post(REFRESH, json={"refresh_token": pair["access_token"]})
    assert as_refresh.status_code == 401


async def test_a_refresh_token_works_once_and_reuse_revokes_its_family(
    auth_client: AsyncClient,
) -> None:
    await register(auth_client, "jo@example.com")
    first = await log_in(auth_client, "jo@example.com")
    second = await auth_client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    second_pair = second.json()
    assert (await auth_client.get(ME, headers=bearer(second_pair))).is_success

    reused = await auth_client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    assert reused.status_code == 401
    # The family is revoked: the newer refresh token, never used, is refused too.
    newer = await auth_client.post(REFRESH, json={"refresh_token": second_pair["refresh_token"]})
    assert newer.status_code == 401
    # Another login is another family.
    other = await log_in(auth_client, "jo@example.com")
    again = await auth_client.post(REFRESH, json={"refresh_token": other["refresh_token"]})
    assert again.is_success


@contextmanager
def issuing_fails(connection: AsyncConnection) -> Iterator[None]:
    """Inside the block, storing a new refresh token fails as a lost connection would."""

    def fail(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO REFRESH_TOKENS"):
            raise ConnectionResetError("connection lost while issuing")

    sync_engine = connection.sync_engine
    event.listen(sync_engine, "before_cursor_execute", fail)
    try:
        yield
    finally:
        event.remove(sync_engine, "before_cursor_execute", fail)


async def test_a_refresh_spends_and_issues_in_one_transaction(
    auth_client: AsyncClient, connection: AsyncConnection
) -> None:
    """A failure while issuing the new pair undoes the spend: the user can retry with
    the same refresh token instead of being logged out."""
    await register(auth_client, "kai@example.com")
    pair = await log_in(auth_client, "kai@example.com")
    body = {"refresh_token": pair["refresh_token"]}
    with issuing_fails(connection):
        failed = await auth_client.post(REFRESH, json=body)
    assert failed.status_code == 500
    retried = await auth_client.post(REFRESH, json=body)
    assert retried.status_code == 200, retried.text


async def test_racing_refreshes_with_one_token_give_one_pair(
    live_client: AsyncClient,
) -> None:
    """Real concurrent requests, real commits: the spend is one conditional UPDATE."""
    await register(live_client, "kim@example.com")
    pair = await log_in(live_client, "kim@example.com")
    body = {"refresh_token": pair["refresh_token"]}
    answers = await asyncio.gather(*(live_client.post(REFRESH, json=body) for _ in range(6)))
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200, 401, 401, 401, 401, 401]
    [winner] = [answer.json() for answer in answers if answer.status_code == 200]
    # The losers were reuses: the family, the winner's new token included, is revoked.
    after = await live_client.post(REFRESH, json={"refresh_token": winner["refresh_token"]})
    assert after.status_code == 401


async def test_a_deleted_users_tokens_stop_working(auth_client: AsyncClient) -> None:
    user = await register(auth_client, "lee@example.com")
    pair = await log_in(auth_client, "lee@example.com")
    deleted = await auth_client.delete(f"/api/v1/users/{user['id']}", headers=bearer(pair))
    assert deleted.status_code == 204
    assert (await auth_client.get(ME, headers=bearer(pair))).status_code == 401
    refreshed = await auth_client.post(REFRESH, json={"refresh_token": pair["refresh_token"]})
    assert refreshed.status_code == 401


# Sessions


async def test_logout_ends_that_session_only(
    auth_client: AsyncClient, test_settings: Settings
) -> None:
    await register(auth_client, "mia@example.com")
    phone = await log_in(auth_client, "mia@example.com")
    laptop = await log_in(auth_client, "mia@example.com")
    out = await auth_client.post(LOGOUT, json={"refresh_token": phone["refresh_token"]})
    assert out.status_code == 204
    refused = await auth_client.post(REFRESH, json={"refresh_token": phone["refresh_token"]})
    assert refused.status_code == 401
    kept = await auth_client.post(REFRESH, json={"refresh_token": laptop["refresh_token"]})
    assert kept.status_code == 200  # another log-in, another family

    # An expired refresh token of ours still logs out; one we did not sign does not.
    claims = jwt.decode(kept.json()["refresh_token"], options={"verify_signature": False})
    expired = tokens.issue(
        test_settings,
        "refresh",
        subject=uuid.UUID(claims["sub"]),
        now=utcnow() - timedelta(days=test_settings.refresh_token_days + 1),
        family=uuid.UUID(claims["fam"]),
    )[0]
    assert (await auth_client.post(LOGOUT, json={"refresh_token": expired})).status_code == 204
    newest = await auth_client.post(REFRESH, json={"refresh_token": kept.json()["refresh_token"]})
    assert newest.status_code == 401  # its family is revoked now
    forged = jwt.encode(claims, "another-key-of-at-least-32-bytes-long", algorithm="HS256")
    assert (await auth_client.post(LOGOUT, json={"refresh_token": forged})).status_code == 401


async def test_logout_everywhere_ends_every_token_issued_before_it(
    auth_client: AsyncClient,
) -> None:
    await register(auth_client, "ned@example.com")
    sessions = [await log_in(auth_client, "ned@example.com") for _ in range(2)]
    assert (await auth_client.post(LOGOUT_ALL)).status_code == 401  # needs a token
    out = await auth_client.post(LOGOUT_ALL, headers=bearer(sessions[0]))
    assert out.status_code == 204
    for pair in sessions:
        assert (await auth_client.get(ME, headers=bearer(pair))).status_code == 401
        refreshed = await auth_client.post(REFRESH, json={"refresh_token": pair["refresh_token"]})
        assert refreshed.status_code == 401
    fresh = await log_in(auth_client, "ned@example.com")  # a new log-in works
    assert (await auth_client.get(ME, headers=bearer(fresh))).status_code == 200


async def test_changing_the_password_ends_every_session(
    auth_client: AsyncClient, test_settings: Settings
) -> None:
    await register(auth_client, "oli@example.com")
    pair = await log_in(auth_client, "oli@example.com")
    headers = bearer(pair)
    wrong = await auth_client.post(
        PASSWORD_CHANGE,
        json={"current_password": "not it", "new_password": NEW_PASSWORD},
        headers=headers,
    )
    assert wrong.status_code == 403
    short = await auth_client.post(
        PASSWORD_CHANGE,
        json={"current_password": PASSWORD, "new_password": "short"},
        headers=headers,
    )
    assert short.status_code == 422
    assert "short" not in short.text
    changed = await auth_client.post(
        PASSWORD_CHANGE,
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=headers,
    )
    assert changed.status_code == 204
    assert (await auth_client.get(ME, headers=headers)).status_code == 401
    refreshed = await auth_client.post(REFRESH, json={"refresh_token": pair["refresh_token"]})
    assert refreshed.status_code == 401
    old = await auth_client.post(TOKEN, data={"username": "oli@example.com", "password": PASSWORD})
    assert old.status_code == 401
    await log_in(auth_client, "oli@example.com", NEW_PASSWORD)


async def test_wrong_current_passwords_count_towards_the_lock_out(
    connection: AsyncConnection, test_settings: Settings
) -> None:
    """A stolen access token does not buy unlimited guesses at the password."""
    quick = test_settings.model_copy(update={"login_max_failures": 2})
    app = create_app(quick)
    app.state.database = RolledBackDatabase(connection)
    async with _client(app) as client:
        await register(client, "pam@example.com")
        headers = bearer(await log_in(client, "pam@example.com"))
        for _ in range(2):
            guess = {"current_password": "a guess", "new_password": NEW_PASSWORD}
            response = await client.post(PASSWORD_CHANGE, json=guess, headers=headers)
            assert response.status_code == 403
        right = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
        locked = await client.post(PASSWORD_CHANGE, json=right, headers=headers)
        assert locked.status_code == 403
        denied = await client.post(
            TOKEN, data={"username": "pam@example.com", "password": PASSWORD}
        )
        assert denied.status_code == 401


# Swagger UI and settings


def test_swagger_ui_authorizes_through_the_token_endpoint(test_settings: Settings) -> None:
    schema = create_app(test_settings).openapi()  # /openapi.json: only with DOCS_ENABLED
    [scheme] = schema["components"]["securitySchemes"].values()
    assert scheme["type"] == "oauth2"
    assert scheme["flows"]["password"]["tokenUrl"] == TOKEN
    form = schema["paths"][TOKEN]["post"]["requestBody"]["content"]
    assert "application/x-www-form-urlencoded" in form
    secured = schema["paths"]["/api/v1/users/{user_id}"]["patch"]
    assert "security" in secured


def test_the_placeholder_and_short_signing_keys_are_refused(test_settings: Settings) -> None:
    values = test_settings.model_dump()
    with pytest.raises(ValidationError, match="JWT_SECRET_KEY is the placeholder"):
        Settings(**{**values, "environment": "production", "jwt_secret_key": "change-me"})
    with pytest.raises(ValidationError, match="at least 32 bytes"):
        Settings(**{**values, "jwt_secret_key": "too-short"})
    Settings(**{**values, "environment": "development", "jwt_secret_key": "change-me"})
