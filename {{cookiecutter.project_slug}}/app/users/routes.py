{%- set db = cookiecutter.database -%}
{%- set auth = cookiecutter.auth == "jwt" -%}
{%- set examples = cookiecutter.include_example_models == "yes" -%}
{%- set welcome = cookiecutter.task_queue == "taskiq" and examples -%}
"""HTTP endpoints for users under `/api/v1/users`.

Each endpoint declares what it opens (app.db.session): a WriteSession for a unit of
work, a WriteConnection for writes that need none, a ReadConnection for lists{% if db != "sqlite" %}
(which a replica may serve, a little behind), and a PrimaryReadConnection where a
caller expects to read what it has just written{% endif %}.
{%- if auth %}
Each also states who may call it (app.auth.access): anyone reads users, but emails
and roles only reach the user themselves and admins; users change only their own
account; creating users other than by registering, importing them and assigning
roles is for admins.
{%- endif %}
"""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status

{% if auth -%}
from app.auth.access import ADMIN_ONLY, Anyone, SelfOrAdmin, SignedIn, forbidden
{% endif -%}
{% if welcome -%}
from app.db.outbox import enqueue
{% endif -%}
from app.db.session import (
{%- if db != "sqlite" %}
    PrimaryReadConnection,
{%- endif %}
    ReadConnection,
    WriteConnection,
    WriteSession,
)
from app.edge import body_limit
from app.pages import PageParams, link_next_page, start_of_page
from app.schemas import Text
{% if welcome -%}
from app.tasks.welcome_email import send_welcome_email
{% endif -%}
from app.users import repository
from app.users.schemas import (
    RoleAssign,
    UserCreate,
    UserImport,
    UserImportResult,
{%- if examples %}
    UserPostCount,
{%- endif %}
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
NOT_ADMIN: Responses = UNAUTHORIZED | {403: {"description": "Not an admin."}}
NOT_YOURS: Responses = UNAUTHORIZED | {403: {"description": "Neither you nor an admin."}}


def _private_to(caller: Anyone) -> repository.ShowsPrivate:
    """Whose email and roles the caller may see: their own, or everyone's for an admin."""
    return caller.may_see if caller is not None else _nobody


def _nobody(_: uuid.UUID) -> bool:
    return False
{%- endif %}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=CONFLICT{% if auth %} | NOT_ADMIN{% endif %},
{%- if auth %}
    dependencies=[ADMIN_ONLY],
{%- endif %}
)
async def create_user(data: UserCreate, connection: WriteConnection) -> UserRead:
{%- if welcome %}
{%- if auth %}
    """A user without a password (for admins) and its welcome email (app.tasks):
    both commit, or neither does."""
{%- else %}
    """The user and its welcome email (app.tasks) commit together, or neither does."""
{%- endif %}
    user = await repository.create_user(connection, data)
    await enqueue(connection, send_welcome_email, user_id=user.id)
    return user
{%- else %}
{%- if auth %}
    """A user without a password, who cannot log in until one is set: for admins."""
{%- endif %}
    return await repository.create_user(connection, data)
{%- endif %}


@router.get("", responses=PAGED{% if auth %} | NOT_ADMIN{% endif %})
async def list_users(
    request: Request,
    response: Response,
    connection: ReadConnection,
    page: PageParams,
{%- if auth %}
    caller: Anyone,
    email: Annotated[
        Text | None,
        Query(max_length=320, description="The start of the email, any letter case: admins only."),
    ] = None,
{%- else %}
    email: Annotated[
        Text | None, Query(max_length=320, description="The start of the email, any letter case.")
    ] = None,
{%- endif %}
) -> list[UserRead]:
    """Users in creation order{% if examples %}, with their newest posts and post count{% endif %}."""
{%- if auth %}
    if email is not None and not (caller is not None and caller.is_admin):
        raise forbidden("filtering by email is for admins")
{%- endif %}
    filters = {"email": email}
    users = await repository.list_users(
        connection,
        limit=page.limit,
        offset=page.offset,
        after=start_of_page(request, page, filters),
        email_prefix=email,
{%- if auth %}
        private=_private_to(caller),
{%- endif %}
    )
    link_next_page(request, response, users, filters)
    return list(users.rows)
{%- if examples %}


@router.get("/post-counts")
async def post_counts(
    connection: ReadConnection,
{%- if auth %}
    _: Anyone,
{%- endif %}
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> list[UserPostCount]:
    """The `limit` users with the most posts: a bounded report, not a paged list."""
    rows = await repository.users_with_post_counts(connection, limit=limit)
    return [UserPostCount.model_validate(row) for row in rows]
{%- endif %}


@router.post(
    "/import",
{%- if auth %}
    responses=NOT_ADMIN,
    dependencies=[ADMIN_ONLY],
{%- endif %}
    openapi_extra=body_limit("bulk_max_request_bytes"),
)
async def import_users(data: UserImport, connection: WriteConnection) -> list[UserImportResult]:
    """Create many users; duplicates are reported per row, the rest are created."""
    return await repository.import_users(connection, data.users)


{% if auth -%}
@router.get("/me", responses=UNAUTHORIZED)
async def get_me(caller: SignedIn, connection: {% if db != "sqlite" %}PrimaryReadConnection{% else %}ReadConnection{% endif %}) -> UserRead:
    """The user the access token belongs to."""
    return await repository.get_user(connection, caller.id)


{% endif -%}
@router.get("/{user_id}", responses=NOT_FOUND)
{%- if auth %}
async def get_user(
    user_id: uuid.UUID,
    caller: Anyone,
    connection: {% if db != "sqlite" %}PrimaryReadConnection{% else %}ReadConnection{% endif %},
) -> UserRead:
    return await repository.get_user(connection, user_id, _private_to(caller))
{%- else %}
async def get_user(user_id: uuid.UUID, connection: {% if db != "sqlite" %}PrimaryReadConnection{% else %}ReadConnection{% endif %}) -> UserRead:
    return await repository.get_user(connection, user_id)
{%- endif %}


@router.patch("/{user_id}", responses=NOT_FOUND | CONFLICT{% if auth %} | NOT_YOURS{% endif %})
{%- if auth %}
async def update_user(
    user_id: uuid.UUID, data: UserUpdate, session: WriteSession, _: SelfOrAdmin
) -> UserRead:
{%- else %}
async def update_user(user_id: uuid.UUID, data: UserUpdate, session: WriteSession) -> UserRead:
{%- endif %}
    return await repository.update_user(session, user_id, data)


@router.delete(
    "/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=NOT_FOUND{% if auth %} | NOT_YOURS{% endif %},
)
{%- if auth %}
async def delete_user(user_id: uuid.UUID, session: WriteSession, _: SelfOrAdmin) -> None:
{%- else %}
async def delete_user(user_id: uuid.UUID, session: WriteSession) -> None:
{%- endif %}
    await repository.soft_delete_user(session, user_id)


@router.post(
    "/{user_id}/roles",
    responses=NOT_FOUND | CONFLICT{% if auth %} | NOT_ADMIN{% endif %},
{%- if auth %}
    dependencies=[ADMIN_ONLY],
{%- endif %}
)
async def assign_role(user_id: uuid.UUID, data: RoleAssign, session: WriteSession) -> UserRead:
    return await repository.assign_role(session, user_id, data.name)
