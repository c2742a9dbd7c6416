"""Concurrent writers, with real commits: no lost, duplicated or phantom writes."""

import asyncio
from typing import Any

from httpx import AsyncClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.users.models import Role, User

USERS = "/api/v1/users"


async def _count_users(engine: AsyncEngine, email: str) -> int:
    async with engine.connect() as conn:
        count = await conn.scalar(
            select(func.count()).select_from(User.__table__).where(User.email == email)
        )
    return int(count or 0)


async def test_racing_duplicates_make_one_user_and_409s(
    live_client: AsyncClient, engine: AsyncEngine
) -> None:
    body = {"email": "race@example.com", "full_name": "Racer"}
    responses = await asyncio.gather(*(live_client.post(USERS, json=body) for _ in range(12)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * 11, [r.text for r in responses if r.status_code >= 500]
    assert await _count_users(engine, "race@example.com") == 1


async def test_concurrent_patches_of_one_version_cannot_both_win(
    live_client: AsyncClient,
) -> None:
    created = await live_client.post(USERS, json={"email": "lu@example.com", "full_name": "A"})
    user = created.json()
    url = f"{USERS}/{user['id']}"

    async def patch(name: str) -> Any:
        return await live_client.patch(url, json={"full_name": name, "version": user["version"]})

    first, second = await asyncio.gather(patch("Writer one"), patch("Writer two"))
    assert sorted([first.status_code, second.status_code]) == [200, 409]
    winner = first if first.status_code == 200 else second
    loser = second if winner is first else first
    assert "read it again and retry" in loser.json()["detail"]
    stored = (await live_client.get(url)).json()
    assert stored["full_name"] == winner.json()["full_name"]
    assert stored["version"] == user["version"] + 1


async def test_every_201_was_committed(live_client: AsyncClient, engine: AsyncEngine) -> None:
    emails = [f"user{i % 15}@example.com" for i in range(40)]  # deliberate duplicates
    responses = await asyncio.gather(
        *(live_client.post(USERS, json={"email": e, "full_name": "N"}) for e in emails)
    )
    assert {r.status_code for r in responses} <= {201, 409}
    created = {r.json()["id"] for r in responses if r.status_code == 201}
    assert len(created) == 15
    async with engine.connect() as conn:
        stored = set((await conn.scalars(select(User.__table__.c.id))).all())
    assert {str(i) for i in stored} == created


async def test_concurrent_first_use_of_a_role_creates_it_once(
    live_client: AsyncClient, engine: AsyncEngine
) -> None:
    """get_or_create_role under a real race: the savepoint absorbs the losers' INSERT."""
    users = []
    for i in range(6):
        created = await live_client.post(USERS, json={"email": f"r{i}@x.com", "full_name": "R"})
        users.append(created.json())
    responses = await asyncio.gather(
        *(live_client.post(f"{USERS}/{u['id']}/roles", json={"name": "reviewer"}) for u in users)
    )
    assert [r.status_code for r in responses] == [200] * len(users)
    async with engine.connect() as conn:
        roles = await conn.scalar(select(func.count()).select_from(Role.__table__))
    assert roles == 1
