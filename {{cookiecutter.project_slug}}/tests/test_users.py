{%- set examples = cookiecutter.include_example_models == "yes" -%}
"""The users API: every endpoint and status code of the contract."""

from datetime import datetime
from uuid import uuid4

import pytest
from httpx import AsyncClient

{% if examples -%}
from app.users.repository import IMPORT_BATCH, LATEST_POSTS, MAX_ROLES
from tests.factories import create_post, create_user
{%- else -%}
from app.users.repository import IMPORT_BATCH, MAX_ROLES
from tests.factories import create_user
{%- endif %}

USERS = "/api/v1/users"


async def test_create_user(client: AsyncClient) -> None:
    response = await client.post(USERS, json={"email": "Ada@Example.com", "full_name": "Ada"})
    assert response.status_code == 201
    user = response.json()
    assert set(user) >= {"id", "email", "full_name", "created_at", "updated_at"}
    assert user["email"] == "ada@example.com"
{%- if examples %}
    assert user["latest_posts"] == []
    assert user["post_count"] == 0
{%- endif %}
    assert user["version"] == 1
    assert datetime.fromisoformat(user["created_at"]).utcoffset() is not None


async def test_duplicate_email_is_409_and_the_first_user_stays(client: AsyncClient) -> None:
    await create_user(client, email="dup@example.com")
    response = await client.post(USERS, json={"email": "DUP@example.com", "full_name": "Other"})
    assert response.status_code == 409
    assert "already exists" in response.json()["detail"]
    # The failed request rolled back only its own work.
    listed = (await client.get(USERS, params={"email": "dup@"})).json()
    assert [u["full_name"] for u in listed] == ["Ada Lovelace"]


@pytest.mark.parametrize(
    "body",
    [
        {"email": "not-an-email", "full_name": "X"},
        {"email": "a@example.com"},
        {"email": "a@example.com", "full_name": ""},
        {"email": "a@example.com", "full_name": "x" * 201},
        {"email": "a@example.com", "full_name": "nul\x00byte"},
        {"email": "a@example.com", "full_name": "X", "is_admin": True},
        {"email": 42, "full_name": "X"},
    ],
)
async def test_create_user_rejects_bad_input(client: AsyncClient, body: dict[str, object]) -> None:
    response = await client.post(USERS, json=body)
    assert response.status_code == 422
    assert response.json()["detail"]


async def test_invalid_json_is_422(client: AsyncClient) -> None:
    response = await client.post(
        USERS, content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422


{% if examples -%}
async def test_a_listed_user_carries_only_their_newest_posts_and_a_count(
    client: AsyncClient,
) -> None:
    ada = await create_user(client)
    titles = [f"Post {i}" for i in range(LATEST_POSTS + 3)]
    for title in titles:
        await create_post(client, ada["id"], title=title)
    await create_user(client)
    newest_first = titles[::-1][:LATEST_POSTS]
    listed = {u["id"]: u for u in (await client.get(USERS, params={"limit": 10})).json()}
    one = (await client.get(f"{USERS}/{ada['id']}")).json()
    for user in (listed[ada["id"]], one):
        assert [p["title"] for p in user["latest_posts"]] == newest_first
        assert user["post_count"] == len(titles)
    # All of them, page by page.
    posts = (await client.get(f"{USERS}/{ada['id']}/posts", params={"limit": 100})).json()
    assert [p["title"] for p in posts] == titles[::-1]


async def test_user_posts_of_a_missing_or_deleted_user_are_404(client: AsyncClient) -> None:
    assert (await client.get(f"{USERS}/{uuid4()}/posts")).status_code == 404
    user = await create_user(client)
    await client.delete(f"{USERS}/{user['id']}")
    assert (await client.get(f"{USERS}/{user['id']}/posts")).status_code == 404


{% endif -%}
async def test_list_users_in_creation_order(client: AsyncClient) -> None:
    created = [(await create_user(client))["id"] for _ in range(5)]
    first = (await client.get(USERS, params={"limit": 2, "offset": 0})).json()
    rest = (await client.get(USERS, params={"limit": 10, "offset": 2})).json()
    assert [u["id"] for u in first + rest] == created


async def test_list_users_email_filter_escapes_wildcards_and_ignores_case(
    client: AsyncClient,
) -> None:
    await create_user(client, email="percent@example.com")
    assert (await client.get(USERS, params={"email": "%"})).json() == []
    assert len((await client.get(USERS, params={"email": "PerCent@"})).json()) == 1


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 101}, {"offset": -1}, {"offset": 1001}, {"limit": "ten"}],
)
async def test_list_users_bounds(client: AsyncClient, params: dict[str, int | str]) -> None:
    assert (await client.get(USERS, params=params)).status_code == 422


async def test_get_user(client: AsyncClient) -> None:
    user = await create_user(client)
    response = await client.get(f"{USERS}/{user['id']}")
    assert response.status_code == 200
    assert response.json() == user


async def test_get_user_404_and_422(client: AsyncClient) -> None:
    missing = await client.get(f"{USERS}/{uuid4()}")
    assert missing.status_code == 404
    assert "not found" in missing.json()["detail"]
    assert (await client.get(f"{USERS}/not-a-uuid")).status_code == 422


async def test_patch_user(client: AsyncClient) -> None:
    user = await create_user(client)
{%- if examples %}
    await create_post(client, user["id"], title="Kept")
{%- endif %}
    response = await client.patch(
        f"{USERS}/{user['id']}", json={"full_name": "Countess", "version": 1}
    )
    assert response.status_code == 200
    updated = response.json()
    assert updated["full_name"] == "Countess"
    assert updated["version"] == 2
    assert updated["created_at"] == user["created_at"]
{%- if examples %}
    assert [p["title"] for p in updated["latest_posts"]] == ["Kept"]
{%- endif %}
    assert datetime.fromisoformat(updated["updated_at"]) > datetime.fromisoformat(
        user["updated_at"]
    )


async def test_patch_user_404_409(client: AsyncClient) -> None:
    taken = await create_user(client, email="taken@example.com")
    user = await create_user(client)
    assert (await client.patch(f"{USERS}/{uuid4()}", json={"full_name": "X"})).status_code == 404
    conflict = await client.patch(f"{USERS}/{user['id']}", json={"email": "TAKEN@example.com"})
    assert conflict.status_code == 409
    unchanged = (await client.get(f"{USERS}/{user['id']}")).json()
    assert unchanged["email"] == user["email"]
    assert (await client.get(f"{USERS}/{taken['id']}")).status_code == 200


async def test_patch_with_stale_version_is_409(client: AsyncClient) -> None:
    user = await create_user(client)
    url = f"{USERS}/{user['id']}"
    assert (await client.patch(url, json={"full_name": "First", "version": 1})).status_code == 200
    stale = await client.patch(url, json={"full_name": "Second", "version": 1})
    assert stale.status_code == 409
    assert "version 2" in stale.json()["detail"]
    assert (await client.get(url)).json()["full_name"] == "First"


async def test_delete_is_soft_and_hides_the_user(client: AsyncClient) -> None:
    user = await create_user(client)
{%- if examples %}
    post = await create_post(client, user["id"])
{%- endif %}
    url = f"{USERS}/{user['id']}"
    assert (await client.delete(url)).status_code == 204
    assert (await client.get(url)).status_code == 404
    assert (await client.delete(url)).status_code == 404
    assert user["id"] not in [u["id"] for u in (await client.get(USERS)).json()]
{%- if examples %}
    assert (await client.get(f"/api/v1/posts/{post['id']}")).status_code == 404
{%- endif %}


async def test_a_deleted_users_email_can_be_registered_again(client: AsyncClient) -> None:
    """Uniqueness counts live users only, so a 409 never tells that a deleted account
    existed; among live users it holds whatever the letter case."""
    user = await create_user(client, email="again@example.com")
    assert (await client.delete(f"{USERS}/{user['id']}")).status_code == 204
    again = await client.post(USERS, json={"email": "Again@Example.com", "full_name": "Again"})
    assert again.status_code == 201, again.text
    assert again.json()["email"] == "again@example.com"
    twice = await client.post(USERS, json={"email": "AGAIN@example.COM", "full_name": "Twice"})
    assert twice.status_code == 409


async def test_assign_role_is_idempotent(client: AsyncClient) -> None:
    ada = await create_user(client)
    bob = await create_user(client)
    url = f"{USERS}/{ada['id']}/roles"
    first = (await client.post(url, json={"name": "editor"})).json()
    assert [r["name"] for r in first["roles"]] == ["editor"]
    again = (await client.post(url, json={"name": "editor"})).json()
    assert [r["name"] for r in again["roles"]] == ["editor"]
    # The second user reuses the existing role row.
    bob_roles = (await client.post(f"{USERS}/{bob['id']}/roles", json={"name": "editor"})).json()
    assert [r["name"] for r in bob_roles["roles"]] == ["editor"]
    assert (await client.post(url, json={"name": "Bad Name"})).status_code == 422
    assert (await client.post(f"{USERS}/{uuid4()}/roles", json={"name": "x"})).status_code == 404


async def test_roles_per_user_are_capped(client: AsyncClient) -> None:
    user = await create_user(client)
    url = f"{USERS}/{user['id']}/roles"
    for i in range(MAX_ROLES):
        assert (await client.post(url, json={"name": f"role-{i}"})).status_code == 200
    refused = await client.post(url, json={"name": "one-too-many"})
    assert refused.status_code == 409
    assert f"maximum of {MAX_ROLES} roles" in refused.json()["detail"]
    assert len((await client.get(f"{USERS}/{user['id']}")).json()["roles"]) == MAX_ROLES


async def test_import_reports_each_row(client: AsyncClient) -> None:
    await create_user(client, email="exists@example.com")
    rows = [
        {"email": "new1@example.com", "full_name": "New One"},
        {"email": "exists@example.com", "full_name": "Dup"},
        {"email": "new2@example.com", "full_name": "New Two"},
        {"email": "NEW1@example.com", "full_name": "Dup in batch"},
    ]
    response = await client.post(f"{USERS}/import", json={"users": rows})
    assert response.status_code == 200
    statuses = [r["status"] for r in response.json()]
    assert statuses == ["created", "duplicate", "created", "duplicate"]
    emails = {u["email"] for u in (await client.get(USERS, params={"limit": 100})).json()}
    assert {"new1@example.com", "new2@example.com", "exists@example.com"} <= emails


async def test_an_import_of_1000_rows_is_one_statement_per_batch_and_no_savepoint(
    client: AsyncClient, statements: list[str]
) -> None:
    """Not a savepoint per row{% if cookiecutter.database == "postgresql" %}: PostgreSQL caches 64 subtransactions per backend{% endif %}."""
    await create_user(client, email="bulk7@example.com")
    rows = [{"email": f"bulk{i}@example.com", "full_name": "B"} for i in range(1000)]
    rows[999] = rows[500]  # a duplicate within the import
    statements.clear()
    response = await client.post(f"{USERS}/import", json={"users": rows})
    assert response.status_code == 200
    duplicates = [i for i, row in enumerate(response.json()) if row["status"] == "duplicate"]
    assert duplicates == [7, 999]
    sent = [s.lstrip().split()[0].upper() for s in statements]
    assert sent.count("INSERT") == 1000 // IMPORT_BATCH
{%- if cookiecutter.database == "mysql" %}
    # MySQL, which has no INSERT ... RETURNING, is asked which rows it took.
    assert sent.count("SELECT") in (0, 1000 // IMPORT_BATCH)
{%- endif %}
    assert sent.count("SAVEPOINT") <= 1, "one for the test's own isolation, none per row"
{%- if examples %}


async def test_post_counts(client: AsyncClient) -> None:
    ada = await create_user(client)
    bob = await create_user(client)
    for _ in range(3):
        await create_post(client, ada["id"])
    await create_post(client, bob["id"])
    bulk = [{"title": f"Post {i}", "body": "."} for i in range(5)]
    await client.post(f"{USERS}/{bob['id']}/posts/bulk", json={"posts": bulk})
    counts = {r["id"]: r["post_count"] for r in (await client.get(f"{USERS}/post-counts")).json()}
    assert counts == {bob["id"]: 6, ada["id"]: 3}
    assert (await client.get(f"{USERS}/{ada['id']}")).json()["post_count"] == 3
    first = (await client.get(f"{USERS}/post-counts", params={"limit": 1})).json()
    assert [r["id"] for r in first] == [bob["id"]]
{%- endif %}


async def test_assigning_a_role_bumps_the_version(client: AsyncClient) -> None:
    user = await create_user(client)
    updated = (await client.post(f"{USERS}/{user['id']}/roles", json={"name": "editor"})).json()
    assert updated["version"] == user["version"] + 1
    stale = await client.patch(
        f"{USERS}/{user['id']}", json={"full_name": "X", "version": user["version"]}
    )
    assert stale.status_code == 409


async def test_patch_with_null_is_422_not_a_silent_no_op(client: AsyncClient) -> None:
    user = await create_user(client)
    response = await client.patch(f"{USERS}/{user['id']}", json={"email": None})
    assert response.status_code == 422
    assert "leave the field out" in response.text
