{%- set examples = cookiecutter.include_example_models == "yes" -%}
"""Deny by default: every route states one access rule, and every route is tried as
anonymous, its owner, another user and an admin, with real tokens.

`test_every_route_states_one_access_rule` fails for a route added without a rule (or
with two); `ROUTES` below must list every route with what each caller gets, so a
route added without a row fails `test_every_route_is_in_the_table`. Then the privacy
rules: emails and roles reach only the user themselves and admins, in every schema
that embeds a user, and no error names an email.
"""

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from httpx import ASGITransport, AsyncClient
from sqlalchemy.ext.asyncio import AsyncConnection

from app.auth.access import RULES
from app.auth.admins import set_admin
from app.db.engine import Engines
from app.main import create_app
from app.settings import Settings
from tests.helpers import RolledBackDatabase

PASSWORD = "correct horse battery staple"  # noqa: S105 -- the tests' users' password
CALLERS = ("anonymous", "owner", "other", "admin")
# The routes FastAPI adds for the API's documentation: their rule is DOCS_ENABLED.
DOCS_ROUTES = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


@dataclass(frozen=True)
class Row:
    """What each caller gets from one route: anonymous, owner, other user, admin."""

    anonymous: int
    owner: int
    other: int
    admin: int
    json: Any = None
    form: dict[str, str] | None = None


def everyone(status: int, **body: Any) -> Row:
    return Row(status, status, status, status, **body)


def signed_in(status: int, **body: Any) -> Row:
    return Row(401, status, status, status, **body)


def owner_or_admin(status: int, **body: Any) -> Row:
    return Row(401, status, 403, status, **body)


def admin_only(status: int, **body: Any) -> Row:
    return Row(401, 403, 403, status, **body)


def owner_only(status: int, **body: Any) -> Row:
    return Row(401, status, 403, 403, **body)


NEW_USER = {"email": "new@example.com", "full_name": "New"}
{%- if examples %}
POST = {"title": "Hello", "body": "World"}
{%- endif %}
ROUTES: dict[tuple[str, str], Row] = {
    ("GET", "/livez"): everyone(200),
    ("GET", "/readyz"): everyone(200),
    ("GET", "/health"): everyone(200),
    ("GET", "/metrics"): everyone(200),
    ("POST", "/api/v1/auth/register"): everyone(
        201, json={"email": "reg@example.com", "full_name": "R", "password": PASSWORD}
    ),
    ("POST", "/api/v1/auth/token"): everyone(
        200, form={"username": "owner@example.com", "password": PASSWORD}
    ),
    ("POST", "/api/v1/auth/refresh"): everyone(200, json={"refresh_token": "{refresh_token}"}),
    ("POST", "/api/v1/auth/logout"): everyone(204, json={"refresh_token": "{refresh_token}"}),
    ("POST", "/api/v1/auth/logout-all"): signed_in(204),
    ("POST", "/api/v1/auth/password"): signed_in(
        204, json={"current_password": PASSWORD, "new_password": "another long password"}
    ),
    ("POST", "/api/v1/users"): admin_only(201, json=NEW_USER),
    ("GET", "/api/v1/users"): everyone(200),
{%- if examples %}
    ("GET", "/api/v1/users/post-counts"): everyone(200),
{%- endif %}
    ("POST", "/api/v1/users/import"): admin_only(200, json={"users": [NEW_USER]}),
    ("GET", "/api/v1/users/me"): signed_in(200),
    ("GET", "/api/v1/users/{user_id}"): everyone(200),
    ("PATCH", "/api/v1/users/{user_id}"): owner_or_admin(200, json={"full_name": "Renamed"}),
    ("DELETE", "/api/v1/users/{user_id}"): owner_or_admin(204),
    ("POST", "/api/v1/users/{user_id}/roles"): admin_only(200, json={"name": "editor"}),
{%- if examples %}
    ("POST", "/api/v1/users/{user_id}/posts"): owner_only(201, json=POST),
    ("GET", "/api/v1/users/{user_id}/posts"): everyone(200),
    ("POST", "/api/v1/users/{user_id}/posts/bulk"): owner_only(201, json={"posts": [POST]}),
    ("GET", "/api/v1/posts"): everyone(200),
    ("GET", "/api/v1/posts/latest"): everyone(200),
    ("GET", "/api/v1/posts/export"): signed_in(200),
    ("GET", "/api/v1/posts/{post_id}"): everyone(200),
{%- endif %}
}


def _routes(app: FastAPI) -> list[RouteContext]:
    """Every route the app serves, as served: with its routers' prefixes and
    dependencies (probes and metrics get theirs where app.main includes them)."""
    return list(iter_route_contexts(app.routes))


def test_every_route_states_one_access_rule(test_settings: Settings) -> None:
    for route in _routes(create_app(test_settings)):
        if not isinstance(route.original_route, APIRoute):
            assert route.path in DOCS_ROUTES, f"{route.path}: not an API route, not the docs"
            continue
        rules = [d.call for d in route.dependant.dependencies if d.call in RULES]
        assert len(rules) == 1, f"{route.methods} {route.path} states {len(rules)} access rules"


def test_every_route_is_in_the_table(test_settings: Settings) -> None:
    served = {
        (method, route.path)
        for route in _routes(create_app(test_settings))
        if isinstance(route.original_route, APIRoute)
        for method in route.methods or ()
    }
    assert served == set(ROUTES)


@dataclass
class World:
    """Three users (the owner of what the paths name, another user, an admin) and
    their tokens{% if examples %}, and a post of the owner's{% endif %}."""

    client: AsyncClient
    ids: dict[str, str]
    tokens: dict[str, dict[str, str]]
{%- if examples %}
    post_id: str
{%- endif %}

    def headers(self, caller: str) -> dict[str, str]:
        if caller == "anonymous":
            return {}
        return {"Authorization": f"Bearer {self.tokens[caller]['access_token']}"}


def _client(app: FastAPI) -> AsyncClient:
    transport = ASGITransport(app=app, raise_app_exceptions=False)
    return AsyncClient(transport=transport, base_url="http://test")


@pytest.fixture
async def world(
    connection: AsyncConnection, engines: Engines, test_settings: Settings
) -> AsyncIterator[World]:
    app = create_app(test_settings)
    database = RolledBackDatabase(connection)
    app.state.database, app.state.engines = database, engines
    async with _client(app) as client:
        ids, tokens = {}, {}
        for caller in ("owner", "other", "admin"):
            email = f"{caller}@example.com"
            registered = await client.post(
                "/api/v1/auth/register",
                json={"email": email, "full_name": caller.title(), "password": PASSWORD},
            )
            assert registered.status_code == 201, registered.text
            ids[caller] = registered.json()["id"]
            if caller == "admin":
                assert await set_admin(database, email, admin=True) is not None
            pair = await client.post(
                "/api/v1/auth/token", data={"username": email, "password": PASSWORD}
            )
            tokens[caller] = pair.json()
{%- if examples %}
        headers = {"Authorization": f"Bearer {tokens['owner']['access_token']}"}
        post = await client.post(f"/api/v1/users/{ids['owner']}/posts", json=POST, headers=headers)
        assert post.status_code == 201, post.text
        yield World(client, ids, tokens, post.json()["id"])
{%- else %}
        yield World(client, ids, tokens)
{%- endif %}


def _filled(value: Any, world: World) -> Any:
    if isinstance(value, dict):
        return {key: _filled(item, world) for key, item in value.items()}
    if value == "{refresh_token}":
        return world.tokens["owner"]["refresh_token"]
    return value


@pytest.mark.parametrize("caller", CALLERS)
async def test_each_route_answers_each_caller_as_the_table_says(
    world: World, connection: AsyncConnection, caller: str
) -> None:
    """Each request in a savepoint rolled back afterwards: every row starts from the
    same three users."""
    wrong = []
    for (method, template), row in ROUTES.items():
{%- if examples %}
        path = template.format(user_id=world.ids["owner"], post_id=world.post_id)
{%- else %}
        path = template.format(user_id=world.ids["owner"])
{%- endif %}
        savepoint = await connection.begin_nested()
        try:
            response = await world.client.request(
                method,
                path,
                json=_filled(row.json, world),
                data=row.form,
                headers=world.headers(caller),
            )
        finally:
            await savepoint.rollback()
        expected = getattr(row, caller)
        if response.status_code != expected:
            wrong.append(f"{method} {template}: {response.status_code}, not {expected}")
    assert not wrong, "\n".join(wrong)


# Privacy


def _emails(users: list[dict[str, Any]]) -> dict[str, str | None]:
    return {user["id"]: user["email"] for user in users}


async def test_emails_and_roles_reach_only_their_user_and_admins(world: World) -> None:
    client, ids = world.client, world.ids
    anonymous = (await client.get("/api/v1/users")).json()
    assert all(user["email"] is None and user["roles"] is None for user in anonymous)
    as_owner = _emails((await client.get("/api/v1/users", headers=world.headers("owner"))).json())
    assert as_owner[ids["owner"]] == "owner@example.com"
    assert as_owner[ids["other"]] is None
    assert as_owner[ids["admin"]] is None
    as_admin = (await client.get("/api/v1/users", headers=world.headers("admin"))).json()
    assert all(user["email"] and user["roles"] is not None for user in as_admin)
    one = await client.get(f"/api/v1/users/{ids['owner']}", headers=world.headers("other"))
    assert one.json()["email"] is None
    assert one.json()["roles"] is None
{%- if examples %}
    for caller, shown in (("anonymous", None), ("other", None), ("owner", "owner@example.com")):
        posts = (await client.get("/api/v1/posts", headers=world.headers(caller))).json()
        assert {post["author"]["email"] for post in posts} == {shown}, caller
        latest = (await client.get("/api/v1/posts/latest", headers=world.headers(caller))).json()
        assert {post["author"]["email"] for post in latest} == {shown}, caller
        post = await client.get(f"/api/v1/posts/{world.post_id}", headers=world.headers(caller))
        assert post.json()["author"]["email"] == shown, caller
    counts = (await client.get("/api/v1/users/post-counts")).json()
    assert counts
    assert not any("email" in row for row in counts)
{%- endif %}


async def test_only_admins_filter_by_email(world: World) -> None:
    for caller in ("anonymous", "owner"):
        response = await world.client.get(
            "/api/v1/users", params={"email": "other@"}, headers=world.headers(caller)
        )
        assert response.status_code == 403, caller
    found = await world.client.get(
        "/api/v1/users", params={"email": "other@"}, headers=world.headers("admin")
    )
    assert [user["id"] for user in found.json()] == [world.ids["other"]]


async def test_no_error_or_log_names_an_email(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)  # LOG_LEVEL's default
    taken = {"email": "OTHER@example.com", "full_name": "Copy"}
    created = await world.client.post("/api/v1/users", json=taken, headers=world.headers("admin"))
    assert created.status_code == 409
    renamed = await world.client.patch(
        f"/api/v1/users/{world.ids['owner']}",
        json={"email": "other@example.com"},
        headers=world.headers("owner"),
    )
    assert renamed.status_code == 409
    for response in (created, renamed):
        assert "@" not in response.text, response.text
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "409" in logged  # the request lines
    assert "other@" not in logged.lower()


async def test_ordinary_users_cannot_make_themselves_admins(world: World) -> None:
    grant = await world.client.post(
        f"/api/v1/users/{world.ids['owner']}/roles",
        json={"name": "admin"},
        headers=world.headers("owner"),
    )
    assert grant.status_code == 403
    sneaky = await world.client.patch(
        f"/api/v1/users/{world.ids['owner']}",
        json={"roles": [{"name": "admin"}]},
        headers=world.headers("owner"),
    )
    assert sneaky.status_code == 422  # not a field a user may send
    users = await world.client.post("/api/v1/users", json=NEW_USER, headers=world.headers("owner"))
    assert users.status_code == 403
    me = await world.client.get("/api/v1/users/me", headers=world.headers("owner"))
    assert me.json()["roles"] == []


async def test_an_admin_role_takes_effect_at_the_next_request(
    world: World, connection: AsyncConnection
) -> None:
    database = RolledBackDatabase(connection)
    assert await set_admin(database, "owner@example.com", admin=True) is not None
    users = await world.client.post("/api/v1/users", json=NEW_USER, headers=world.headers("owner"))
    assert users.status_code == 201  # the same token, now an admin's
    assert await set_admin(database, "owner@example.com", admin=False) is not None
    again = await world.client.post(
        "/api/v1/users",
        json=NEW_USER | {"email": "newer@example.com"},
        headers=world.headers("owner"),
    )
    assert again.status_code == 403
