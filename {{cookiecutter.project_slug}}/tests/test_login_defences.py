{%- set db = cookiecutter.database -%}
"""The log-in defences under attack: real concurrent requests over real sockets
(uvicorn on loopback), real commits.

Each test keeps the other defences out of its way, so that it fails when its own is
removed rather than passing on another's: the lock-out and hashing tests send each
request from its own `X-Forwarded-For` address (the peer, 127.0.0.1, is a trusted
proxy), so the throttle never counts one address twice; the throttle tests use
unknown or distinct emails, so no lock-out is involved. Memory under a burst of
log-ins is measured on a served process by the template's own tests.
"""

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.auth.passwords import Passwords
from app.auth.throttle import client_key, seconds_to_wait
from app.db.types import utcnow
from app.main import create_app
from app.settings import Settings
from app.users.models import User
from tests.helpers import real_hashing_cost, running_server

PASSWORD = "correct horse battery staple"  # noqa: S105 -- the tests' user's password
TOKEN = "/api/v1/auth/token"  # noqa: S105 -- a path
REGISTER = "/api/v1/auth/register"
REFRESH = "/api/v1/auth/refresh"
pytestmark = pytest.mark.usefixtures("committed")


class CountedChecks(Passwords):
    """Passwords that count the checks that reached a stored hash (not the stand-in),
    as each one begins, and how many had begun when a right password was confirmed."""

    real = 0
    begun_at_first_success: int | None = None

    async def verify(self, password: str, stored: str | None) -> tuple[bool, str | None]:
        if stored is not None:
            self.real += 1
        valid, new_hash = await super().verify(password, stored)
        if valid and self.begun_at_first_success is None:
            self.begun_at_first_success = self.real
        return valid, new_hash


@asynccontextmanager
async def served(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, CountedChecks]]:
    app = create_app(settings)
    checks = app.state.passwords = CountedChecks(settings)
    async with running_server(app, as_owner=False) as (host, port):
        limits = httpx.Limits(max_connections=100)
        async with httpx.AsyncClient(
            base_url=f"http://{host}:{port}", timeout=30, limits=limits
        ) as client:
            yield client, checks


def from_address(index: int) -> dict[str, str]:
    """A client address of its own (TEST-NET-3), named by the trusted proxy."""
    return {"X-Forwarded-For": f"203.0.113.{index % 250 + 1}"}


def attempt(password: str, email: str = "victim@example.com") -> dict[str, str]:
    return {"username": email, "password": password}


async def register(client: httpx.AsyncClient, email: str, address: int = 0) -> None:
    body = {"email": email, "full_name": "Victim", "password": PASSWORD}
    response = await client.post(REGISTER, json=body, headers=from_address(address))
    assert response.status_code == 201, response.text


# The lock-out


async def test_parallel_guesses_get_no_more_checks_than_the_limit(
    test_settings: Settings, engine: AsyncEngine
) -> None:
    settings = test_settings.model_copy(
        update={"login_max_failures": 5, "password_hash_concurrency": 4}
    )
    async with served(settings) as (client, checks):
        await register(client, "victim@example.com")
        guesses = await asyncio.gather(
            *(
                client.post(TOKEN, data=attempt(f"guess {i}"), headers=from_address(i))
                for i in range(20)
            )
        )
        assert [r.status_code for r in guesses] == [401] * 20
        assert checks.real == 5  # the other 15 were refused before any hash
        right = await client.post(TOKEN, data=attempt(PASSWORD), headers=from_address(99))
        assert right.status_code == 401  # locked: even the right password
        assert checks.real == 5
    async with engine.connect() as connection:
        account = (
            await connection.execute(
                select(User.failed_logins, User.locked_until).where(
                    User.email == "victim@example.com"
                )
            )
        ).one()
    assert account.failed_logins == 5
    assert account.locked_until is not None


async def test_the_right_password_in_a_burst_of_guesses_gains_no_extra_checks(
    test_settings: Settings,
) -> None:
    """The reported attack: 11 wrong passwords and the right one at once.

    Until a success clears the count, at most five checks can begin; so when the right
    password wins, at most five had begun by the time it was confirmed (checks that
    begin after the success, on a cleared count, are the owner's allowance again).
    Without the claim before the hash, all twelve begin at once and this fails."""
    settings = test_settings.model_copy(
        update={"login_max_failures": 5, "password_hash_concurrency": 4}
    )
    async with served(settings) as (client, checks):
        await register(client, "victim@example.com")
        passwords = [f"guess {i}" for i in range(11)] + [PASSWORD]
        answers = await asyncio.gather(
            *(
                client.post(TOKEN, data=attempt(p), headers=from_address(i))
                for i, p in enumerate(passwords)
            )
        )
    statuses = [answer.status_code for answer in answers]
    assert set(statuses[:11]) == {401}
    if statuses[11] == 200:  # it was one of the five checks the account allowed
        assert checks.begun_at_first_success is not None
        assert checks.begun_at_first_success <= 5
    else:  # refused without a check: nothing cleared the count
        assert statuses[11] == 401
        assert checks.begun_at_first_success is None
        assert checks.real == 5


async def test_a_locked_account_answers_as_slowly_as_a_wrong_password(
    test_settings: Settings, engine: AsyncEngine
) -> None:
    """At the real hashing cost: a refused attempt still verifies the stand-in hash.
    The fastest of seven interleaved tries each: load on the machine only adds time."""
    settings = real_hashing_cost(test_settings).model_copy(update={"login_max_failures": 100})
    async with served(settings) as (client, _):
        await register(client, "locked@example.com", address=1)
        await register(client, "open@example.com", address=2)
        async with engine.begin() as connection:
            await connection.execute(
                update(User)
                .where(User.email == "locked@example.com")
                .values(locked_until=utcnow() + timedelta(hours=1))
            )

        async def timed(email: str, index: int) -> float:
            started = time.perf_counter()
            response = await client.post(
                TOKEN, data=attempt("wrong", email), headers=from_address(index)
            )
            assert response.status_code == 401
            return time.perf_counter() - started

        locked, wrong = [], []
        for i in range(7):
            locked.append(await timed("locked@example.com", 2 * i))
            wrong.append(await timed("open@example.com", 2 * i + 1))
    ratio = min(locked) / min(wrong)
    assert 0.6 < ratio < 1.6, (locked, wrong)


# Hashing within bounds


async def test_password_checks_beyond_capacity_get_503_with_retry_after(
    test_settings: Settings,
) -> None:
    settings = real_hashing_cost(test_settings).model_copy(
        update={"password_hash_concurrency": 1, "password_hash_wait_seconds": 0.02}
    )
    async with served(settings) as (client, _):
        answers = await asyncio.gather(
            *(
                client.post(TOKEN, data=attempt("x", f"u{i}@example.com"), headers=from_address(i))
                for i in range(12)
            )
        )
    statuses = [answer.status_code for answer in answers]
    assert set(statuses) == {401, 503}, statuses
    busy = [answer for answer in answers if answer.status_code == 503]
    assert all(int(answer.headers["Retry-After"]) > 0 for answer in busy)


# Throttling


@pytest.mark.parametrize("endpoint", [TOKEN, REGISTER, REFRESH])
async def test_a_flood_from_one_address_gets_429_and_others_are_served(
    test_settings: Settings, endpoint: str
) -> None:
    settings = test_settings.model_copy(update={"auth_throttle_requests": 5})

    def request(index: int) -> dict[str, Any]:
        if endpoint == TOKEN:
            return {"data": attempt("wrong", f"nobody{index}@example.com")}
        if endpoint == REGISTER:
            user = {"email": f"r{index}@example.com", "full_name": "R", "password": PASSWORD}
            return {"json": user}
        return {"json": {"refresh_token": "not a token"}}

    async with served(settings) as (client, _):
        flood = [
            await client.post(endpoint, headers=from_address(7), **request(i)) for i in range(8)
        ]
        elsewhere = await client.post(endpoint, headers=from_address(8), **request(99))
    statuses = [answer.status_code for answer in flood]
    assert 429 not in statuses[:5]
    assert statuses[5:] == [429, 429, 429]
    assert all(int(answer.headers["Retry-After"]) >= 1 for answer in flood[5:])
    assert elsewhere.status_code != 429


async def test_the_throttle_is_shared_by_every_worker(test_settings: Settings) -> None:
    """Two servers stand for two workers{{ "" if db == "sqlite" else " or instances" }}: the counts are in the database."""
    settings = test_settings.model_copy(update={"auth_throttle_requests": 4})
    async with served(settings) as (first, _), served(settings) as (second, _):
        answers = [
            await client.post(
                TOKEN, data=attempt("x", f"n{i}@example.com"), headers=from_address(3)
            )
            for i, client in enumerate([first, second] * 3)
        ]
    assert [answer.status_code for answer in answers] == [401, 401, 401, 401, 429, 429]


async def test_forwarded_for_from_an_untrusted_peer_is_ignored(test_settings: Settings) -> None:
    """Only a proxy named in FORWARDED_ALLOW_IPS may name the client: from anyone
    else, a made-up X-Forwarded-For does not buy a fresh count."""
    settings = test_settings.model_copy(
        update={"auth_throttle_requests": 3, "forwarded_allow_ips": "10.0.0.0/8"}
    )
    async with served(settings) as (client, _):
        answers = [
            await client.post(
                TOKEN, data=attempt("x", f"z{i}@example.com"), headers=from_address(i)
            )
            for i in range(5)
        ]
    assert [answer.status_code for answer in answers] == [401, 401, 401, 429, 429]


def test_ipv6_clients_are_counted_per_64_network() -> None:
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::2")
    assert client_key("2001:db8:1:2::1") != client_key("2001:db8:1:3::1")
    assert client_key("::ffff:203.0.113.9") == client_key("203.0.113.9") == "203.0.113.9"


def test_the_window_slides() -> None:
    """The previous window weighs in by how much of it still overlaps."""
    assert seconds_to_wait(10, 60, elapsed=30, previous=10, current=5) is None  # 5 + 5
    assert seconds_to_wait(10, 60, elapsed=6, previous=10, current=5) is not None  # 9 + 5
    wait = seconds_to_wait(10, 60, elapsed=6, previous=10, current=5)
    assert wait is not None
    assert wait == pytest.approx(30 - 6)  # at 30 s, 10 x 0.5 + 5 = 10
