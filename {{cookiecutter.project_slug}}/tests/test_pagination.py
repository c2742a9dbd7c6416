"""Keyset pagination over HTTP: the Link header, its cursor, and what paging through
a table that another client writes to gives back."""

import asyncio
import base64
import re
from typing import Any

import pytest
from httpx import AsyncClient, Response

from tests.factories import create_post, create_user

USERS = "/api/v1/users"
POSTS = "/api/v1/posts"
NEXT = re.compile(r'^<(?P<url>[^>]+)>; rel="next"$')


def next_url(response: Response) -> str | None:
    link = response.headers.get("link")
    if link is None:
        return None
    match = NEXT.match(link)
    assert match, link
    return match["url"]


async def every_page(client: AsyncClient, url: str, **params: Any) -> list[list[dict[str, Any]]]:
    pages = []
    response = await client.get(url, params=params)
    while True:
        assert response.status_code == 200, response.text
        pages.append(response.json())
        following = next_url(response)
        if following is None:
            return pages
        response = await client.get(following)


async def test_pages_follow_the_link_header_to_the_last_page(client: AsyncClient) -> None:
    created = [(await create_user(client))["id"] for _ in range(7)]
    pages = await every_page(client, USERS, limit=3)
    assert [len(page) for page in pages] == [3, 3, 1]
    assert [u["id"] for page in pages for u in page] == created


async def test_the_next_link_keeps_the_filters_and_drops_the_offset(client: AsyncClient) -> None:
    author = await create_user(client)
    other = await create_user(client)
    for i in range(5):
        await create_post(client, author["id"], title=f"Engine {i}")
        await create_post(client, other["id"], title=f"Engine {i}")
    first = await client.get(
        POSTS, params={"author_id": author["id"], "title": "engine", "limit": 2, "offset": 1}
    )
    url = next_url(first)
    assert url is not None
    assert url.startswith(f"{POSTS}?")
    assert f"author_id={author['id']}" in url
    assert "title=engine" in url
    assert "limit=2" in url
    assert "offset" not in url
    second = (await client.get(url)).json()
    assert {p["author_id"] for p in second} == {author["id"]}
    assert [p["title"] for p in first.json() + second] == [f"Engine {i}" for i in (3, 2, 1, 0)]


async def test_the_last_page_has_no_next_link(client: AsyncClient) -> None:
    await create_user(client)
    response = await client.get(USERS, params={"limit": 5})
    assert len(response.json()) == 1
    assert "link" not in response.headers


def _tampered(cursor: str) -> str:
    payload, signature = cursor.split(".")
    raw = bytearray(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    raw[3] ^= 1  # one bit of the timestamp
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode() + "." + signature


async def first_cursor(client: AsyncClient, url: str, **params: Any) -> str:
    link = next_url(await client.get(url, params={"limit": 1, **params}))
    assert link is not None
    cursor = re.search(r"cursor=([^&]+)", link)
    assert cursor is not None
    return cursor[1]


@pytest.mark.parametrize("change", ["garbage", "truncated", "tampered", "with offset"])
async def test_a_malformed_or_altered_cursor_is_a_422(client: AsyncClient, change: str) -> None:
    author = await create_user(client)
    for _ in range(3):
        await create_post(client, author["id"])
    url = f"{USERS}/{author['id']}/posts"
    good = await first_cursor(client, url)
    assert (await client.get(url, params={"cursor": good})).status_code == 200
    cases: dict[str, dict[str, Any]] = {
        "garbage": {"cursor": "not a cursor"},
        "truncated": {"cursor": good[:-4]},
        "tampered": {"cursor": _tampered(good)},
        "with offset": {"cursor": good, "offset": 1},
    }
    response = await client.get(url, params=cases[change])
    assert response.status_code == 422, response.text
    assert "cursor" in response.json()["detail"]


async def test_a_cursor_only_works_for_the_query_it_came_from(client: AsyncClient) -> None:
    ada, bob = await create_user(client), await create_user(client)
    for author in (ada, bob):
        for _ in range(2):
            await create_post(client, author["id"])
    ada_posts = f"{USERS}/{ada['id']}/posts"
    other_user = await client.get(
        f"{USERS}/{bob['id']}/posts", params={"cursor": await first_cursor(client, ada_posts)}
    )
    filtered = await first_cursor(client, POSTS, author_id=ada["id"])
    other_filter = await client.get(POSTS, params={"author_id": bob["id"], "cursor": filtered})
    same_filter_other_limit = await client.get(
        POSTS, params={"author_id": ada["id"], "cursor": filtered, "limit": 5}
    )
    assert other_user.status_code == 422
    assert other_filter.status_code == 422
    assert same_filter_other_limit.status_code == 200


async def test_paging_while_another_client_inserts_repeats_and_skips_nothing(
    live_client: AsyncClient,
) -> None:
    """Newest first: a post created meanwhile lands before the cursor. OFFSET paging
    would shift every later page by one and repeat a row per insert."""
    author = await create_user(live_client)
    existing = [(await create_post(live_client, author["id"]))["id"] for _ in range(25)]
    paging_done = asyncio.Event()

    async def insert_meanwhile() -> int:
        inserted = 0
        while not paging_done.is_set():
            await create_post(live_client, author["id"], title="meanwhile")
            inserted += 1
            await asyncio.sleep(0)
        return inserted

    async def page_through() -> list[str]:
        seen = []
        response = await live_client.get(POSTS, params={"limit": 4})
        while True:
            seen += [p["id"] for p in response.json()]
            following = next_url(response)
            if following is None:
                break
            await asyncio.sleep(0.01)  # let the other client write between pages
            response = await live_client.get(following)
        paging_done.set()
        return seen

    inserted, seen = await asyncio.gather(insert_meanwhile(), page_through())
    assert inserted > 0
    assert len(seen) == len(set(seen)), "a row came back twice"
    assert set(existing) <= set(seen), "a row that existed before paging was skipped"
