"""HTTP endpoints for users under `/api/v1/users`."""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, status

from app.db.session import SessionDep
from app.schemas import Text
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


@router.post("", status_code=status.HTTP_201_CREATED, responses=CONFLICT)
async def create_user(data: UserCreate, session: SessionDep) -> UserRead:
    return UserRead.model_validate(await repository.create_user(session, data))


@router.get("")
async def list_users(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    email: Annotated[Text | None, Query(max_length=320, description="Part of the email.")] = None,
) -> list[UserRead]:
    users = await repository.list_users(session, limit=limit, offset=offset, email_contains=email)
    return [UserRead.model_validate(user) for user in users]


@router.get("/post-counts")
async def post_counts(
    session: SessionDep, limit: Annotated[int, Query(ge=1, le=100)] = 20
) -> list[UserPostCount]:
    rows = await repository.users_with_post_counts(session, limit=limit)
    return [UserPostCount.model_validate(row) for row in rows]


@router.post("/import")
async def import_users(data: UserImport, session: SessionDep) -> list[UserImportResult]:
    """Create many users; duplicates are reported per row, the rest are created."""
    return await repository.import_users(session, data.users)


@router.get("/{user_id}", responses=NOT_FOUND)
async def get_user(user_id: uuid.UUID, session: SessionDep) -> UserRead:
    return UserRead.model_validate(await repository.get_user(session, user_id))


@router.patch("/{user_id}", responses=NOT_FOUND | CONFLICT)
async def update_user(user_id: uuid.UUID, data: UserUpdate, session: SessionDep) -> UserRead:
    return UserRead.model_validate(await repository.update_user(session, user_id, data))


@router.delete("/{user_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def delete_user(user_id: uuid.UUID, session: SessionDep) -> None:
    await repository.soft_delete_user(session, user_id)


@router.post("/{user_id}/roles", responses=NOT_FOUND)
async def assign_role(user_id: uuid.UUID, data: RoleAssign, session: SessionDep) -> UserRead:
    return UserRead.model_validate(await repository.assign_role(session, user_id, data.name))
