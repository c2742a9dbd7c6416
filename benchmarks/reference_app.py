"""The reference: the baked service's benchmarked endpoints on raw asyncpg.

Same framework (FastAPI, same uvicorn options), same request validation rules, the
same SQL work (the queries SQLAlchemy emits for the ORM version: users page, their
posts by `author_id = ANY($1)` newest first, their roles; soft-deleted rows hidden)
and byte-for-byte the same JSON. What is left out is exactly what the comparison is
about: the ORM (identity map, unit of work, loader machinery), per-row Pydantic
validation of the response, and the session/savepoint choreography.

    DSN=postgresql://postgres@127.0.0.1:5432/bench_svc_bench \
        python -m uvicorn reference_app:create_app --factory --app-dir benchmarks

`POST /api/v1/users/{id}/posts/bulk?method=executemany|copy` inserts with
`executemany` (the default) or `copy_records_to_table`.
Lists page like the baked app: `cursor` (the same signed format, with the baked
app's SECRET_KEY) and an RFC 8288 `Link` header for the next page.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import asyncpg  # type: ignore[import-untyped]
from fastapi import FastAPI, HTTPException, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, StringConstraints

# The same rules as the baked app's request schemas; the control-character rule is
# a regular expression here, checked by pydantic-core instead of a Python function.
NO_CONTROL = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f]*$"
ShortText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=NO_CONTROL)
]
Text = Annotated[str, StringConstraints(max_length=50_000, pattern=NO_CONTROL)]
Email = Annotated[EmailStr, Field(max_length=320), AfterValidator(str.lower)]


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: Email
    full_name: ShortText


class PostCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: ShortText
    body: Text


class PostBulkCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    posts: list[PostCreate] = Field(min_length=1, max_length=10_000)


# What the baked app's repositories send, written by hand: the page of users with
# their post count, each one's newest posts (one window query) and their roles.
USER_COLUMNS = (
    "SELECT u.id, u.email, u.full_name, u.version, u.created_at, u.updated_at,"
    " (SELECT count(p.id) FROM posts AS p WHERE p.author_id = u.id AND p.is_deleted IS false)"
    " AS post_count FROM users AS u WHERE u.is_deleted IS false"
)
USERS_PAGE = USER_COLUMNS + " ORDER BY u.created_at, u.id LIMIT $1 OFFSET $2"
USERS_PAGE_AFTER = (
    USER_COLUMNS + " AND (u.created_at, u.id) > ($3, $4) ORDER BY u.created_at, u.id LIMIT $1"
    " OFFSET $2"
)
USER_BY_ID = USER_COLUMNS + " AND u.id = $1"
POSTS_OF = (  # the newest 5 posts of each user
    "SELECT author_id, id, title, view_count, created_at FROM (SELECT author_id, id, title,"
    " view_count, created_at, row_number() OVER (PARTITION BY author_id ORDER BY created_at DESC,"
    " id DESC) AS rank FROM posts WHERE author_id = ANY($1::uuid[]) AND is_deleted IS false)"
    " AS ranked WHERE rank <= 5 ORDER BY rank"
)
ROLES_OF = (
    "SELECT ur.user_id, r.name FROM user_roles AS ur JOIN roles AS r ON r.id = ur.role_id"
    " WHERE ur.user_id = ANY($1::uuid[]) ORDER BY r.name"
)
INSERT_USER = (
    "INSERT INTO users (id, email, full_name, version, created_at, updated_at, is_deleted)"
    " VALUES ($1, $2, $3, 1, $4, $4, false)"
)
AUTHOR_EXISTS = "SELECT 1 FROM users WHERE id = $1 AND is_deleted IS false"
INSERT_POST = (
    "INSERT INTO posts (id, author_id, title, body, view_count, created_at, updated_at,"
    " is_deleted) VALUES ($1, $2, $3, $4, 0, $5, $5, false)"
)
POST_COLUMNS = [
    "id",
    "author_id",
    "title",
    "body",
    "view_count",
    "created_at",
    "updated_at",
    "is_deleted",
]
EXPORT = "SELECT id, author_id, title, view_count, created_at FROM posts ORDER BY created_at, id"

dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def iso(value: datetime) -> str:
    """Pydantic's format for an aware UTC datetime: ISO 8601 with a trailing Z."""
    return value.isoformat().replace("+00:00", "Z")


def json_response(content: Any, status_code: int = 200) -> Response:
    return Response(dumps(content).encode(), status_code, media_type="application/json")


async def users_with_children(
    conn: asyncpg.Connection, users: list[asyncpg.Record]
) -> list[dict[str, Any]]:
    ids = [u["id"] for u in users]
    posts = await conn.fetch(POSTS_OF, ids)
    roles = await conn.fetch(ROLES_OF, ids)
    out: dict[Any, dict[str, Any]] = {}
    for u in users:
        out[u["id"]] = {
            "id": str(u["id"]),
            "email": u["email"],
            "full_name": u["full_name"],
            "version": u["version"],
            "created_at": iso(u["created_at"]),
            "updated_at": iso(u["updated_at"]),
            "roles": [],
            "post_count": u["post_count"],
            "latest_posts": [],
        }
    for author_id, name in roles:
        out[author_id]["roles"].append({"name": name})
    for author_id, post_id, title, view_count, created_at in posts:
        out[author_id]["latest_posts"].append(
            {
                "id": str(post_id),
                "title": title,
                "view_count": view_count,
                "created_at": iso(created_at),
            }
        )
    return list(out.values())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(secret: str, path: str, payload: bytes) -> bytes:
    scope = json.dumps([path, []]).encode()  # no filters in the benchmarked lists
    return hmac.new(secret.encode(), scope + b"\0" + payload, hashlib.sha256).digest()[:16]


def encode_cursor(secret: str, path: str, created_at: datetime, user_id: uuid.UUID) -> str:
    """The baked app's cursor format: the last row's key, signed with the query."""
    payload = json.dumps([created_at.isoformat(), user_id.hex]).encode()
    return f"{_b64(payload)}.{_b64(_signature(secret, path, payload))}"


def decode_cursor(secret: str, path: str, cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        payload_text, signature_text = cursor.split(".")
        payload, signature = _unb64(payload_text), _unb64(signature_text)
        if not hmac.compare_digest(signature, _signature(secret, path, payload)):
            raise ValueError("bad signature")
        created_at, id_hex = json.loads(payload)
        return datetime.fromisoformat(created_at), uuid.UUID(hex=id_hex)
    except ValueError as exc:
        raise HTTPException(422, f"invalid cursor: {exc}") from None


def create_app() -> FastAPI:
    dsn = os.environ.get("DSN", "postgresql://postgres@127.0.0.1:5432/bench_svc_bench")
    secret = os.environ["SECRET_KEY"]  # the baked app's, so both sign the same cursors

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.pool = await asyncpg.create_pool(
            dsn,
            min_size=int(os.environ.get("POOL_MIN", "10")),
            max_size=int(os.environ.get("POOL_MAX", "20")),  # the baked pool: 10 + 10 overflow
            server_settings={"application_name": "reference", "statement_timeout": "30000"},
        )
        try:
            yield
        finally:
            await app.state.pool.close()

    app = FastAPI(title="raw asyncpg reference", lifespan=lifespan)

    @app.get("/health")
    async def health(request: Request) -> Response:
        async with request.app.state.pool.acquire() as conn:
            await conn.fetchval("SELECT 1")
        return json_response({"status": "ok", "database": "ok"})

    @app.get("/api/v1/users")
    async def list_users(
        request: Request,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        offset: Annotated[int, Query(ge=0, le=1000)] = 0,
        cursor: Annotated[str | None, Query(max_length=200)] = None,
    ) -> Response:
        path = request.url.path
        async with request.app.state.pool.acquire() as conn:
            if cursor is None:
                users = await conn.fetch(USERS_PAGE, limit + 1, offset)
            else:
                after = decode_cursor(secret, path, cursor)
                users = await conn.fetch(USERS_PAGE_AFTER, limit + 1, offset, *after)
            body = await users_with_children(conn, users[:limit]) if users else []
        response = json_response(body)
        if len(users) > limit:
            last = users[limit - 1]
            token = encode_cursor(secret, path, last["created_at"], last["id"])
            url = request.url.remove_query_params("offset").include_query_params(cursor=token)
            response.headers["Link"] = f'<{url.path}?{url.query}>; rel="next"'
        return response

    @app.get("/api/v1/users/{user_id}")
    async def get_user(user_id: uuid.UUID, request: Request) -> Response:
        async with request.app.state.pool.acquire() as conn:
            user = await conn.fetchrow(USER_BY_ID, user_id)
            if user is None:
                raise HTTPException(404, f"user {user_id} not found")
            body = (await users_with_children(conn, [user]))[0]
        return json_response(body)

    @app.post("/api/v1/users", status_code=201)
    async def create_user(data: UserCreate, request: Request) -> Response:
        user_id, now = uuid.uuid4(), datetime.now(UTC)
        async with request.app.state.pool.acquire() as conn:
            try:
                await conn.execute(INSERT_USER, user_id, data.email, data.full_name, now)
            except asyncpg.UniqueViolationError:
                raise HTTPException(
                    409, f"a user with email {data.email!r} already exists"
                ) from None
        stamp = iso(now)
        body = {
            "id": str(user_id),
            "email": data.email,
            "full_name": data.full_name,
            "version": 1,
            "created_at": stamp,
            "updated_at": stamp,
            "roles": [],
            "post_count": 0,
            "latest_posts": [],
        }
        return json_response(body, 201)

    @app.post("/api/v1/users/{user_id}/posts/bulk", status_code=201)
    async def bulk_create_posts(
        user_id: uuid.UUID,
        data: PostBulkCreate,
        request: Request,
        method: Literal["executemany", "copy"] = "executemany",
    ) -> Response:
        now = datetime.now(UTC)
        async with request.app.state.pool.acquire() as conn, conn.transaction():
            if await conn.fetchval(AUTHOR_EXISTS, user_id) is None:
                raise HTTPException(404, f"user {user_id} not found")
            if method == "copy":
                records = [
                    (uuid.uuid4(), user_id, p.title, p.body, 0, now, now, False) for p in data.posts
                ]
                await conn.copy_records_to_table("posts", records=records, columns=POST_COLUMNS)
            else:
                args = [(uuid.uuid4(), user_id, p.title, p.body, now) for p in data.posts]
                await conn.executemany(INSERT_POST, args)
        return json_response({"created": len(data.posts)}, 201)

    @app.get("/api/v1/posts/export")
    async def export_posts(request: Request) -> StreamingResponse:
        pool: asyncpg.Pool = request.app.state.pool

        async def lines() -> AsyncIterator[bytes]:
            async with pool.acquire() as conn, conn.transaction():
                cursor = await conn.cursor(EXPORT)
                while batch := await cursor.fetch(1000):
                    yield "".join(
                        dumps(
                            {
                                "id": str(r[0]),
                                "author_id": str(r[1]),
                                "title": r[2],
                                "view_count": r[3],
                                "created_at": iso(r[4]),
                            }
                        )
                        + "\n"
                        for r in batch
                    ).encode()

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    return app
