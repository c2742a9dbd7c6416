"""The posts API: creation, bulk, filters, the window query and the export stream."""

import json
from collections.abc import AsyncIterator
from typing import Any
from uuid import uuid4

import pytest
from httpx import AsyncClient
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.db.error_codes import is_conflict
from app.posts import repository as posts_repository
from app.posts.models import Post
from tests.factories import create_post, create_user
from tests.helpers import commits_fail

POSTS = "/api/v1/posts"


async def test_create_post_includes_author(client: AsyncClient) -> None:
    user = await create_user(client)
    post = await create_post(client, user["id"], title="Hello")
    assert post["author"] == {
        "id": user["id"],
        "email": user["email"],
        "full_name": user["full_name"],
    }
    assert post["view_count"] == 0


async def test_create_post_for_missing_or_deleted_user_is_404(client: AsyncClient) -> None:
    body = {"title": "t", "body": "b"}
    assert (await client.post(f"/api/v1/users/{uuid4()}/posts", json=body)).status_code == 404
    user = await create_user(client)
    await client.delete(f"/api/v1/users/{user['id']}")
    assert (await client.post(f"/api/v1/users/{user['id']}/posts", json=body)).status_code == 404


async def test_a_post_whose_author_is_gone_is_a_conflict(session: AsyncSession) -> None:
    """An author purged between the route's check and the INSERT: the foreign key
    refuses the row, and app.errors answers that with a 409, like a duplicate."""
    session.add(Post(author_id=uuid4(), title="t", body="b"))
    with pytest.raises(IntegrityError) as refused:
        await session.flush()
    assert is_conflict(refused.value)


async def test_bulk_create_posts(client: AsyncClient) -> None:
    user = await create_user(client)
    rows = [{"title": f"Post {i}", "body": "..."} for i in range(25)]
    response = await client.post(f"/api/v1/users/{user['id']}/posts/bulk", json={"posts": rows})
    assert response.status_code == 201
    assert response.json() == {"created": 25}
    listed = await client.get(POSTS, params={"author_id": user["id"], "limit": 100})
    assert len(listed.json()) == 25


async def test_bulk_with_one_bad_row_creates_nothing(client: AsyncClient) -> None:
    user = await create_user(client)
    rows = [{"title": "ok", "body": "..."}, {"title": "", "body": "..."}]
    response = await client.post(f"/api/v1/users/{user['id']}/posts/bulk", json={"posts": rows})
    assert response.status_code == 422
    assert (await client.get(POSTS, params={"author_id": user["id"]})).json() == []


async def test_get_post(client: AsyncClient) -> None:
    user = await create_user(client)
    post = await create_post(client, user["id"])
    response = await client.get(f"{POSTS}/{post['id']}")
    assert response.status_code == 200
    assert response.json()["author"]["id"] == user["id"]
    assert (await client.get(f"{POSTS}/{uuid4()}")).status_code == 404
    assert (await client.get(f"{POSTS}/nope")).status_code == 422


async def test_list_posts_filters(client: AsyncClient) -> None:
    ada = await create_user(client)
    bob = await create_user(client)
    await create_post(client, ada["id"], title="Engines of thought")
    await create_post(client, ada["id"], title="Poetry")
    await create_post(client, bob["id"], title="Engines again")

    by_author = (await client.get(POSTS, params={"author_id": ada["id"]})).json()
    assert {p["title"] for p in by_author} == {"Engines of thought", "Poetry"}
    by_title = (await client.get(POSTS, params={"title": "ENGINES"})).json()
    assert {p["title"] for p in by_title} == {"Engines of thought", "Engines again"}
    assert (await client.get(POSTS, params={"min_views": 1})).json() == []
    newest_first = (await client.get(POSTS, params={"limit": 3})).json()
    assert newest_first[0]["title"] == "Engines again"


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 101}, {"min_views": -1}])
async def test_list_posts_bounds(client: AsyncClient, params: dict[str, int]) -> None:
    assert (await client.get(POSTS, params=params)).status_code == 422


async def test_latest_posts_caps_authors_and_posts_per_author(client: AsyncClient) -> None:
    ada = await create_user(client)
    bob = await create_user(client)
    cyd = await create_user(client)
    for i in range(4):
        await create_post(client, ada["id"], title=f"ada {i}")
    await create_post(client, bob["id"], title="bob 0")
    await create_post(client, cyd["id"], title="cyd 0")  # the most recent author

    posts = (await client.get(f"{POSTS}/latest", params={"authors": 2, "per_user": 2})).json()
    titles_by_author: dict[str, list[str]] = {}
    for post in posts:
        titles_by_author.setdefault(post["author_id"], []).append(post["title"])
    assert titles_by_author == {cyd["id"]: ["cyd 0"], bob["id"]: ["bob 0"]}
    everyone = (await client.get(f"{POSTS}/latest", params={"per_user": 2})).json()
    assert [p["title"] for p in everyone] == ["cyd 0", "bob 0", "ada 3", "ada 2"]


@pytest.mark.parametrize("params", [{"authors": 0}, {"authors": 51}, {"per_user": 21}])
async def test_latest_posts_bounds(client: AsyncClient, params: dict[str, int]) -> None:
    assert (await client.get(f"{POSTS}/latest", params=params)).status_code == 422


async def test_export_streams_every_post_as_ndjson(client: AsyncClient) -> None:
    user = await create_user(client)
    rows = [{"title": f"Post {i}", "body": "..."} for i in range(30)]
    await client.post(f"/api/v1/users/{user['id']}/posts/bulk", json={"posts": rows})
    response = await client.get(f"{POSTS}/export")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert len(lines) == 30
    assert set(lines[0]) == {"id", "author_id", "title", "view_count", "created_at"}


async def test_title_filter_refuses_control_characters(client: AsyncClient) -> None:
    assert (await client.get(POSTS, params={"title": "a\x00b"})).status_code == 422


async def test_export_with_the_database_down_is_503_not_an_empty_200(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def unreachable(*_: Any, **__: Any) -> AsyncIterator[list[Any]]:
        raise OperationalError("SELECT", {}, ConnectionRefusedError(), connection_invalidated=True)
        yield []  # an async generator, like the real one

    monkeypatch.setattr(posts_repository, "stream_posts", unreachable)
    response = await client.get(f"{POSTS}/export")
    assert response.status_code == 503
    assert response.headers["retry-after"]


async def test_bulk_whose_commit_fails_leaves_no_post(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    """The INSERT of all rows ran; the failed COMMIT must take every one of them back."""
    user = await create_user(client)
    rows = [{"title": f"Post {i}", "body": "..."} for i in range(50)]
    with commits_fail():
        response = await client.post(f"/api/v1/users/{user['id']}/posts/bulk", json={"posts": rows})
    assert response.status_code == 503
    assert await connection.scalar(select(func.count()).select_from(Post.__table__)) == 0
