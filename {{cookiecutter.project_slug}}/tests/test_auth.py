"""Authentication, rule by rule, with real tokens (`auth_client` checks them; the
other tests act as the owner of what they touch).

Registration never answers a password or a hash; a wrong password, an unknown email
and a locked account get the same 401 in about the same time; tokens pin their
algorithm and their type; a refresh token works once, and reusing one revokes its
family, also when the reuse is a race; writes need a token and touch only the
caller's own user and posts; failed logins lock the account in the database.
"""

import asyncio
import statistics
import time
import uuid
from datetime import timedelta
from typing import Any

import jwt
import pytest
from httpx import ASGITransport, AsyncClient
from pydantic import ValidationError
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.auth import tokens
from app.db.types import utcnow
from app.main import create_app
from app.settings import Settings
from app.users.models import User
from tests.helpers import RolledBackDatabase

PASSWORD = "correct horse battery staple"  # noqa: S105 -- the tests' user's password
TOKEN = "/api/v1/auth/token"  # noqa: S105 -- a path
REFRESH = "/api/v1/auth/refresh"


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
    me = await auth_client.get("/api/v1/users/me", headers=bearer(pair))
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
    """With the real hashing cost: an unknown email still verifies a hash."""
    real_cost = test_settings.model_copy(
        update={
            "password_hash_time_cost": Settings.model_fields["password_hash_time_cost"].default,
            "password_hash_memory_kib": Settings.model_fields["password_hash_memory_kib"].default,
            "password_hash_parallelism": Settings.model_fields["password_hash_parallelism"].default,
        }
    )
    app = create_app(real_cost)
    app.state.database = RolledBackDatabase(connection)
    async with _client(app) as client:
        await register(client, "dee@example.com")

        async def attempt(email: str) -> float:
            started = time.perf_counter()
            response = await client.post(TOKEN, data={"username": email, "password": "wrong"})
            assert response.status_code == 401
            return time.perf_counter() - started

        wrong, unknown = [], []
        for _ in range(3):  # interleaved; fewer than LOGIN_MAX_FAILURES
            wrong.append(await attempt("dee@example.com"))
            unknown.append(await attempt("nobody@example.com"))
    ratio = statistics.median(unknown) / statistics.median(wrong)
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
    auth_client: AsyncClient, connection: AsyncConnection, test_settings: Settings
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


async def test_forged_unsigned_expired_and_mistyped_tokens_are_refused(
    auth_client: AsyncClient, test_settings: Settings
) -> None:
    user = await register(auth_client, "ida@example.com")
    pair = await log_in(auth_client, "ida@example.com")
    claims = jwt.decode(pair["access_token"], test_settings.jwt_secret_key, algorithms=["HS256"])
    now = utcnow()
    refused = {
        "unsigned (alg none)": jwt.encode(claims, key=None, algorithm="none"),
        "signed with another key": jwt.encode(
            claims, "another-key-of-at-least-32-bytes-long", algorithm="HS256"
        ),
        "expired": tokens.issue(
            test_settings, "access", subject=uuid.UUID(user["id"]), now=now - timedelta(days=1)
        )[0],
        "a refresh token": pair["refresh_token"],
        "no jti": jwt.encode(
            {k: v for k, v in claims.items() if k != "jti"},
            test_settings.jwt_secret_key,
            algorithm="HS256",
        ),
    }
    for why, token in refused.items():
        response = await auth_client.get(
            "/api/v1/users/me", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 401, why
    assert (await auth_client.get("/api/v1/users/me", headers=bearer(pair))).status_code == 200
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
    assert (await auth_client.get("/api/v1/users/me", headers=bearer(second_pair))).is_success

    reused = await auth_client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    assert reused.status_code == 401
    # The family is revoked: the newer refresh token, never used, is refused too.
    newer = await auth_client.post(REFRESH, json={"refresh_token": second_pair["refresh_token"]})
    assert newer.status_code == 401
    # Another login is another family.
    other = await log_in(auth_client, "jo@example.com")
    again = await auth_client.post(REFRESH, json={"refresh_token": other["refresh_token"]})
    assert again.is_success


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
    assert (await auth_client.get("/api/v1/users/me", headers=bearer(pair))).status_code == 401
    refreshed = await auth_client.post(REFRESH, json={"refresh_token": pair["refresh_token"]})
    assert refreshed.status_code == 401


# Who may write what


async def test_writes_need_a_token_and_reads_do_not(auth_client: AsyncClient) -> None:
    user = await register(auth_client, "max@example.com")
    post = {"title": "Hello", "body": "World"}
    writes = [
        ("POST", "/api/v1/users", {"email": "new@example.com", "full_name": "New"}),
        ("POST", "/api/v1/users/import", {"users": [{"email": "n@example.com", "full_name": "N"}]}),
        ("PATCH", f"/api/v1/users/{user['id']}", {"full_name": "Max"}),
        ("DELETE", f"/api/v1/users/{user['id']}", None),
        ("POST", f"/api/v1/users/{user['id']}/roles", {"name": "editor"}),
        ("POST", f"/api/v1/users/{user['id']}/posts", post),
        ("POST", f"/api/v1/users/{user['id']}/posts/bulk", {"posts": [post]}),
    ]
    for method, url, body in writes:
        response = await auth_client.request(method, url, json=body)
        assert response.status_code == 401, (method, url)
        assert response.headers["www-authenticate"] == "Bearer"
    for url in ("/api/v1/users", f"/api/v1/users/{user['id']}", "/api/v1/posts"):
        assert (await auth_client.get(url)).status_code == 200, url
    assert (await auth_client.get("/api/v1/users/me")).status_code == 401


async def test_users_change_only_themselves_and_post_only_as_themselves(
    auth_client: AsyncClient,
) -> None:
    me = await register(auth_client, "ned@example.com")
    other = await register(auth_client, "oli@example.com")
    headers = bearer(await log_in(auth_client, "ned@example.com"))
    post = {"title": "Hello", "body": "World"}
    theirs = [
        ("PATCH", f"/api/v1/users/{other['id']}", {"full_name": "Not you"}),
        ("DELETE", f"/api/v1/users/{other['id']}", None),
        ("POST", f"/api/v1/users/{other['id']}/roles", {"name": "editor"}),
        ("POST", f"/api/v1/users/{other['id']}/posts", post),
        ("POST", f"/api/v1/users/{other['id']}/posts/bulk", {"posts": [post]}),
    ]
    for method, url, body in theirs:
        response = await auth_client.request(method, url, json=body, headers=headers)
        assert response.status_code == 403, (method, url)
    untouched = (await auth_client.get(f"/api/v1/users/{other['id']}")).json()
    assert untouched["full_name"] == other["full_name"]
    assert untouched["post_count"] == 0

    mine = await auth_client.post(f"/api/v1/users/{me['id']}/posts", json=post, headers=headers)
    assert mine.status_code == 201
    renamed = await auth_client.patch(
        f"/api/v1/users/{me['id']}", json={"full_name": "Ned"}, headers=headers
    )
    assert renamed.status_code == 200
    created = await auth_client.post(
        "/api/v1/users", json={"email": "pat@example.com", "full_name": "Pat"}, headers=headers
    )
    assert created.status_code == 201  # any user may add users; they cannot log in


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
