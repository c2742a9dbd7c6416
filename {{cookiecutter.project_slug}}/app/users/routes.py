{%- set db = cookiecutter.database -%}
{%- set auth = cookiecutter.auth == "jwt" -%}
"""HTTP endpoints for users under `/api/v1/users`.

Each endpoint declares what it opens (app.db.session): a WriteSession for a unit of
work, a ReadConnection for lists{% if db != "sqlite" %} (which a replica may serve, a little behind), and a
PrimaryConnection where a caller expects to read what it has just written, or for
a write of one statement{% endif %}.
{%- if auth %}
Writes need an access token (app.auth): any user may create users, but changes
only their own.
{%- endif %}
"""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status

{% if auth -%}
from app.auth.dependencies import AUTHENTICATED, CurrentUserId, require_self
{% endif -%}
{% if cookiecutter.task_queue == "taskiq" -%}
from app.db.outbox import enqueue
{% endif -%}
from app.db.session import {% if db != "sqlite" %}PrimaryConnection, {% endif %}ReadConnection, WriteSession
from app.pages import PageParams, link_next_page, start_of_page
from app.schemas import Text
{% if cookiecutter.task_queue == "taskiq" -%}
from app.tasks.welcome_email import send_welcome_email
{% endif -%}
from app.users import repository
from app.users.schemas import (
    RoleAssign,
    UserCreate,
    UserImport,
    UserImportResult,
    UserPostCount,
    UserRead,
    UserUpdate,
)

router = APIRouter(prefix="/users", tags=["users"])

Responses = dict[int | str, dict[str, Any]]
NOT_FOUND: Responses = {404: {"description": "No such user."}}
CONFLICT: Responses = {409: {"description": "Email taken, or the user changed since it was read."}}
PAGED: Responses = {200: {"description": 'More pages: a `Link: <...>; rel="next"` header.'}}
{%- if auth %}
UNAUTHORIZED: Responses = {401: {"description": "No valid access token."}}
NOT_YOURS: Responses = UNAUTHORIZED | {403: {"description": "Not your user."}}
{%- endif %}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=CONFLICT{% if auth %} | UNAUTHORIZED{% endif %},
{%- if auth %}
    dependencies=AUTHENTICATED,
{%- endif %}
)
{%- if cookiecutter.task_queue == "taskiq" %}
async def create_user(data: UserCreate, session: WriteSession) -> UserRead:
    """The user and its welcome email (app.tasks) commit together, or neither does."""
    connection = await session.connection()
    user = await repository.create_user(connection, data)
    await enqueue(connection, send_welcome_email, user_id=user.id)
    return user
{%- elif db == "sqlite" %}
async def create_user(data: UserCreate, session: WriteSession) -> UserRead:
    return await repository.create_user(await session.connection(), data)
{%- else %}
async def create_user(data: UserCreate, connection: PrimaryConnection) -> UserRead:
    return await repository.create_user(connection, data)
{%- endif %}


@router.get("", responses=PAGED)
async def list_users(
    request: Request,
    response: Response,
    connection: ReadConnection,
    page: PageParams,
    email: Annotated[Text | None, Query(max_length=320, description="Part of the email.")] = None,
) -> list[UserRead]:
    """Users in creation order, with their newest posts and post count."""
    filters = {"email": email}
    users = await repository.list_users(
        connection,
        limit=page.limit,
        offset=page.offset,
        after=start_of_page(request, page, filters),
        email_contains=email,
    )
    link_next_page(request, response, users, filters)
    return list(users.rows)


@router.get("/post-counts")
async def post_counts(
    connection: ReadConnection, limit: Annotated[int, Query(ge=1, le=100)] = 20
) -> list[UserPostCount]:
    """The `limit` users with the most posts: a bounded report, not a paged list."""
    rows = await repository.users_with_post_counts(connection, limit=limit)
    return [UserPostCount.model_validate(row) for row in rows]


@router.post("/import"{% if auth %}, responses=UNAUTHORIZED, dependencies=AUTHENTICATED{% endif %})
async def import_users(data: UserImport, session: WriteSession) -> list[UserImportResult]:
    """Create many users; duplicates are reported per row, the rest are created."""
    return await repository.import_users(session, data.users)


{% if auth -%}
@router.get("/me", responses=UNAUTHORIZED)
async def get_me(current: CurrentUserId, connection: {% if db != "sqlite" %}PrimaryConnection{% else %}ReadConnection{% endif %}) -> UserRead:
    """The user the access token belongs to."""
    return await repository.get_user(connection, current)


{% endif -%}
@router.get("/{user_id}", responses=NOT_FOUND)
async def get_user(user_id: uuid.UUID, connection: {% if db != "sqlite" %}PrimaryConnection{% else %}ReadConnection{% endif %}) -> UserRead:
    return await repository.get_user(connection, user_id)


@router.patch("/{user_id}", responses=NOT_FOUND | CONFLICT{% if auth %} | NOT_YOURS{% endif %})
{%- if auth %}
async def update_user(
    user_id: uuid.UUID, data: UserUpdate, session: WriteSession, current: CurrentUserId
) -> UserRead:
    require_self(current, user_id)
    return await repository.update_user(session, user_id, data)
{%- else %}
async def update_user(user_id: uuid.UUID, data: UserUpdate, session: WriteSession) -> UserRead:
    return await repository.update_user(session, user_id, data)
{%- endif %}


@router.delete(
    "/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=NOT_FOUND{% if auth %} | NOT_YOURS{% endif %},
)
{%- if auth %}
async def delete_user(user_id: uuid.UUID, session: WriteSession, current: CurrentUserId) -> None:
    require_self(current, user_id)
    await repository.soft_delete_user(session, user_id)
{%- else %}
async def delete_user(user_id: uuid.UUID, session: WriteSession) -> None:
    await repository.soft_delete_user(session, user_id)
{%- endif %}


@router.post("/{user_id}/roles", responses=NOT_FOUND | CONFLICT{% if auth %} | NOT_YOURS{% endif %})
{%- if auth %}
async def assign_role(
    user_id: uuid.UUID, data: RoleAssign, session: WriteSession, current: CurrentUserId
) -> UserRead:
    require_self(current, user_id)
    return await repository.assign_role(session, user_id, data.name)
{%- else %}
async def assign_role(user_id: uuid.UUID, data: RoleAssign, session: WriteSession) -> UserRead:
    return await repository.assign_role(session, user_id, data.name)
{%- endif %}
