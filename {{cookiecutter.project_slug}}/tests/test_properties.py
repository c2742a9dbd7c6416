"""Property-based: no request body or query, however malformed, produces a 500.

Hypothesis drives the real app (and database) with arbitrary JSON and
near-valid bodies; every answer must be a deliberate 2xx, 404, 409 or 422. Each
example gets a connection, a transaction and a client of its own, rolled back
afterwards: no example sees what another wrote, so each one fails or passes alone
(and Hypothesis can shrink a failure to the example that caused it).
Docs: https://hypothesis.readthedocs.io/
"""

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from httpx import ASGITransport, AsyncClient, Response
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from app.settings import Settings
from tests.helpers import rolled_back_app

USERS = "/api/v1/users"
LIST_PARAMS = ["limit", "offset", "email"]

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=10,
)
near_valid_users = st.fixed_dictionaries(
    {"email": st.emails() | st.text(max_size=400), "full_name": st.text(max_size=250)},
    optional={"version": st.integers(), "extra": json_values},
)
path_segments = st.text(
    st.characters(exclude_categories=("Cs", "Cc"), exclude_characters="/?#%"),
    min_size=1,
    max_size=40,
)
fuzz = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


Call = Callable[[AsyncClient], Awaitable[Response]]
Run = Callable[[Call], Response]


@pytest.fixture
async def loop() -> asyncio.AbstractEventLoop:
    """The loop the session's engine lives on."""
    return asyncio.get_running_loop()


@pytest.fixture
def run(engine: AsyncEngine, test_settings: Settings, loop: asyncio.AbstractEventLoop) -> Run:
    """Hypothesis calls plain functions: run each example's request on the engine's
    loop, in a transaction of its own that is rolled back afterwards."""

    async def in_own_transaction(call: Call) -> Response:
        async with engine.connect() as connection:
            transaction = await connection.begin()
            try:
                app = rolled_back_app(connection, test_settings)
                transport = ASGITransport(app=app, raise_app_exceptions=False)
                async with AsyncClient(transport=transport, base_url="http://test") as client:
                    return await call(client)
            finally:
                await transaction.rollback()

    def runner(call: Call) -> Response:
        return loop.run_until_complete(in_own_transaction(call))

    return runner


@fuzz
@given(body=json_values | near_valid_users)
def test_create_user_never_500(run: Run, body: Any) -> None:
    response = run(lambda client: client.post(USERS, json=body))
    assert response.status_code in {201, 409, 422}, response.text


@fuzz
@given(raw=st.binary(max_size=200))
@example(raw=b'{"email": "a@example.com", "full_name": "\\ud800"}')
@example(raw=b'{"email": "a@example.com", "full_name": "\\u0000"}')
@example(raw=b"\xff\xfe not utf-8")
def test_raw_bodies_never_500(run: Run, raw: bytes) -> None:
    headers = {"content-type": "application/json"}
    response = run(lambda client: client.post(USERS, content=raw, headers=headers))
    # 400 or 422: a body FastAPI cannot decode or parse; 422: not a valid user.
    assert response.status_code in {201, 400, 409, 422}, response.text


@fuzz
@given(params=st.dictionaries(st.sampled_from(LIST_PARAMS), st.text(max_size=30)))
@example(params={"email": "\x00"})
def test_list_query_never_500(run: Run, params: dict[str, str]) -> None:
    response = run(lambda client: client.get(USERS, params=params))
    assert response.status_code in {200, 422}, response.text


@fuzz
@given(user_id=path_segments, body=json_values | near_valid_users)
def test_patch_never_500(run: Run, user_id: str, body: Any) -> None:
    response = run(lambda client: client.patch(f"{USERS}/{user_id}", content=json.dumps(body)))
    assert response.status_code in {200, 404, 405, 409, 422}, response.text
