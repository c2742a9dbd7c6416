"""HTTP endpoints for posts: `/api/v1/posts` and a user's `/api/v1/users/{id}/posts`."""

import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.session import SessionDep
from app.posts import repository
from app.posts.schemas import PostBulkCreate, PostBulkCreated, PostCreate, PostExportRow, PostRead
from app.schemas import Text

router = APIRouter(tags=["posts"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such user or post."}}


@router.post("/users/{user_id}/posts", status_code=status.HTTP_201_CREATED, responses=NOT_FOUND)
async def create_post(user_id: uuid.UUID, data: PostCreate, session: SessionDep) -> PostRead:
    return PostRead.model_validate(await repository.create_post(session, user_id, data))


@router.post(
    "/users/{user_id}/posts/bulk", status_code=status.HTTP_201_CREATED, responses=NOT_FOUND
)
async def bulk_create_posts(
    user_id: uuid.UUID, data: PostBulkCreate, session: SessionDep
) -> PostBulkCreated:
    """All or nothing: either every post is created or none is."""
    return PostBulkCreated(created=await repository.bulk_create_posts(session, user_id, data.posts))


@router.get("/posts")
async def list_posts(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    author_id: uuid.UUID | None = None,
    title: Annotated[Text | None, Query(max_length=200, description="Part of the title.")] = None,
    min_views: Annotated[int | None, Query(ge=0, le=2**31 - 1)] = None,
) -> list[PostRead]:
    posts = await repository.list_posts(
        session,
        limit=limit,
        offset=offset,
        author_id=author_id,
        title_contains=title,
        min_views=min_views,
    )
    return [PostRead.model_validate(post) for post in posts]


@router.get("/posts/latest")
async def latest_posts(
    session: SessionDep, per_user: Annotated[int, Query(ge=1, le=20)] = 3
) -> list[PostRead]:
    """Each author's newest posts, ranked by a window function."""
    posts = await repository.latest_posts_per_user(session, per_user=per_user)
    return [PostRead.model_validate(post) for post in posts]


def _ndjson(rows: Sequence[Any]) -> bytes:
    # One chunk per batch, not per row: 100,000 tiny writes cost twice the time.
    return b"".join(
        PostExportRow.model_validate(row).model_dump_json().encode() + b"\n" for row in rows
    )


@router.get("/posts/export", response_class=StreamingResponse)
async def export_posts(request: Request) -> StreamingResponse:
    """Every post as NDJSON, streamed from a server-side cursor.

    The body is sent after the endpoint returns, when the request's session is
    closed, so the stream owns a session of its own. Its first batch is read
    before answering: a database that is down gets a 503, not an empty 200. (A
    failure later aborts the connection mid-body, which clients see as an error.)
    """
    factory: async_sessionmaker[AsyncSession] = request.app.state.session_factory
    session = factory()
    batches = repository.stream_posts(session)
    try:
        first = await anext(batches, None)
    except BaseException:
        await session.close()
        raise

    async def body() -> AsyncIterator[bytes]:
        try:
            if first is not None:
                yield _ndjson(first)
            async for rows in batches:
                yield _ndjson(rows)
        finally:
            await batches.aclose()
            await session.close()

    return StreamingResponse(body(), media_type="application/x-ndjson")


@router.get("/posts/{post_id}", responses=NOT_FOUND)
async def get_post(post_id: uuid.UUID, session: SessionDep) -> PostRead:
    return PostRead.model_validate(await repository.get_post(session, post_id))
