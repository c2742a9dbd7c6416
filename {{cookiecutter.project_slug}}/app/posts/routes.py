{%- set db = cookiecutter.database -%}
{%- set auth = cookiecutter.auth == "jwt" -%}
{%- if auth -%}
"""HTTP endpoints for posts: `/api/v1/posts` and a user's `/api/v1/users/{id}/posts`.

Each states who may call it (app.auth.access): anyone reads posts (an author's email
only reaches the author and admins), users post only as themselves, and the export
needs an access token.
"""
{%- else -%}
"""HTTP endpoints for posts: `/api/v1/posts` and a user's `/api/v1/users/{id}/posts`."""
{%- endif %}

import uuid
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import StreamingResponse

{% if auth -%}
from app.auth.access import SIGNED_IN, Anyone, SelfOnly
{% endif -%}
from app.db.session import {% if db != "sqlite" %}PrimaryReadConnection, {% endif %}ReadConnection, WriteSession
from app.edge import body_limit
from app.pages import PageParams, link_next_page, start_of_page
from app.posts import repository
from app.posts.schemas import PostBulkCreate, PostBulkCreated, PostCreate, PostExportRow, PostRead
from app.schemas import Text
from app.streams import stream_rows

router = APIRouter(tags=["posts"])

Responses = dict[int | str, dict[str, Any]]
NOT_FOUND: Responses = {404: {"description": "No such user or post."}}
PAGED: Responses = {200: {"description": 'More pages: a `Link: <...>; rel="next"` header.'}}
{%- if auth %}
NOT_YOURS: Responses = {
    401: {"description": "No valid access token."},
    403: {"description": "Not your user."},
}


def _as_seen_by(caller: Anyone, post: PostRead) -> PostRead:
    """The post as the caller may see it: the author's email for the author and admins."""
    if caller is not None and caller.may_see(post.author_id):
        return post
    return post.model_copy(update={"author": post.author.model_copy(update={"email": None})})
{%- endif %}


@router.post(
    "/users/{user_id}/posts",
    status_code=status.HTTP_201_CREATED,
    responses=NOT_FOUND{% if auth %} | NOT_YOURS{% endif %},
)
{%- if auth %}
async def create_post(
    user_id: uuid.UUID, data: PostCreate, session: WriteSession, _: SelfOnly
) -> PostRead:
    return await repository.create_post(session, user_id, data)
{%- else %}
async def create_post(user_id: uuid.UUID, data: PostCreate, session: WriteSession) -> PostRead:
    return await repository.create_post(session, user_id, data)
{%- endif %}


@router.get("/users/{user_id}/posts", responses=NOT_FOUND | PAGED)
async def list_user_posts(
    user_id: uuid.UUID,
    request: Request,
    response: Response,
    connection: ReadConnection,
    page: PageParams,
{%- if auth %}
    caller: Anyone,
{%- endif %}
) -> list[PostRead]:
    """All of a user's posts, newest first, page by page."""
    posts = await repository.list_user_posts(
        connection,
        user_id,
        limit=page.limit,
        offset=page.offset,
        after=start_of_page(request, page, {}),
    )
    link_next_page(request, response, posts, {})
{%- if auth %}
    return [_as_seen_by(caller, post) for post in posts.rows]
{%- else %}
    return list(posts.rows)
{%- endif %}


@router.post(
    "/users/{user_id}/posts/bulk",
    status_code=status.HTTP_201_CREATED,
    responses=NOT_FOUND{% if auth %} | NOT_YOURS{% endif %},
    openapi_extra=body_limit("bulk_max_request_bytes"),
)
async def bulk_create_posts(
    user_id: uuid.UUID,
    data: PostBulkCreate,
    session: WriteSession,
{%- if auth %}
    _: SelfOnly,
{%- endif %}
) -> PostBulkCreated:
    """All or nothing: either every post is created or none is."""
    return PostBulkCreated(created=await repository.bulk_create_posts(session, user_id, data.posts))


@router.get("/posts", responses=PAGED)
async def list_posts(
    request: Request,
    response: Response,
    connection: ReadConnection,
    page: PageParams,
{%- if auth %}
    caller: Anyone,
{%- endif %}
    author_id: uuid.UUID | None = None,
    title: Annotated[
        Text | None, Query(max_length=200, description="The start of the title, any letter case.")
    ] = None,
    min_views: Annotated[int | None, Query(ge=0, le=2**31 - 1)] = None,
) -> list[PostRead]:
    """Posts newest first, with their author."""
    filters = {"author_id": author_id, "title": title, "min_views": min_views}
    posts = await repository.list_posts(
        connection,
        limit=page.limit,
        offset=page.offset,
        after=start_of_page(request, page, filters),
        author_id=author_id,
        title_prefix=title,
        min_views=min_views,
    )
    link_next_page(request, response, posts, filters)
{%- if auth %}
    return [_as_seen_by(caller, post) for post in posts.rows]
{%- else %}
    return list(posts.rows)
{%- endif %}


@router.get("/posts/latest")
async def latest_posts(
    connection: ReadConnection,
{%- if auth %}
    caller: Anyone,
{%- endif %}
    authors: Annotated[int, Query(ge=1, le=50)] = 10,
    per_user: Annotated[int, Query(ge=1, le=20)] = 3,
) -> list[PostRead]:
    """The newest posts of the most recently active authors, among the newest 1,000
    posts: at most `authors` x `per_user` posts, a bounded report rather than a
    paged list."""
{%- if auth %}
    posts = await repository.latest_posts_per_author(connection, authors=authors, per_user=per_user)
    return [_as_seen_by(caller, post) for post in posts]
{%- else %}
    return await repository.latest_posts_per_author(connection, authors=authors, per_user=per_user)
{%- endif %}


def _ndjson(rows: Sequence[Any]) -> bytes:
    # One chunk per batch, not per row: 100,000 tiny writes cost twice the time.
    return b"".join(
        PostExportRow.model_validate(row).model_dump_json().encode() + b"\n" for row in rows
    )


@router.get(
    "/posts/export",
    response_class=StreamingResponse,
    responses={
{%- if auth %}
        401: {"description": "No valid access token."},
{%- endif %}
        503: {"description": "Too many exports at once, or the database is unavailable."},
    },
{%- if auth %}
    dependencies=[SIGNED_IN],
{%- endif %}
)
async def export_posts(request: Request) -> StreamingResponse:
    """Every post as NDJSON, streamed from a server-side cursor, in one snapshot.

    The stream reads from a pool of its own and is bounded (app.streams): a few at
    a time per process, a client that stops reading is dropped, and none lasts
    longer than EXPORT_MAX_SECONDS. The first batch is read before answering, so a
    database that is down gets a 503, not an empty 200; a stream cut short later
    ends without the end of its body, which clients see as an error.
    """
    return await stream_rows(
        request, repository.stream_posts, _ndjson, media_type="application/x-ndjson"
    )


@router.get("/posts/{post_id}", responses=NOT_FOUND)
{%- if auth %}
async def get_post(
    post_id: uuid.UUID,
    caller: Anyone,
    connection: {% if db != "sqlite" %}PrimaryReadConnection{% else %}ReadConnection{% endif %},
) -> PostRead:
    return _as_seen_by(caller, await repository.get_post(connection, post_id))
{%- else %}
async def get_post(post_id: uuid.UUID, connection: {% if db != "sqlite" %}PrimaryReadConnection{% else %}ReadConnection{% endif %}) -> PostRead:
    return await repository.get_post(connection, post_id)
{%- endif %}
