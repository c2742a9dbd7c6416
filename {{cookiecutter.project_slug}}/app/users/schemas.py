{%- set examples = cookiecutter.include_example_models == "yes" -%}
{%- set auth = cookiecutter.auth == "jwt" -%}
{% if auth -%}
"""Request and response bodies for users. Unknown fields are rejected (422).

A user's email and roles are private: responses carry them to the user themselves
and to admins only, and null to anyone else (app.users.repository reads them so).
"""
{%- else -%}
"""Request and response bodies for users. Unknown fields are rejected (422)."""
{%- endif %}

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.schemas import Email, ShortText


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email
    full_name: ShortText


class UserUpdate(BaseModel):
    """Only the fields sent are changed. Send the `version` you read to be sure
    nobody changed the user since; a stale version gets 409."""

    model_config = ConfigDict(extra="forbid")

    email: Email | None = None
    full_name: ShortText | None = None
    version: int | None = Field(default=None, ge=1)

    @field_validator("email", "full_name", "version", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("must not be null: leave the field out to keep its value")
        return value


class RoleAssign(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=50, pattern=r"^[a-z][a-z0-9_-]*$")


{% if examples -%}
class PostSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    title: str
    view_count: int
    created_at: datetime


{% endif -%}
class RoleRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str


class UserRead(BaseModel):
{%- if examples %}
    """A user with a bounded view of their posts: the newest few and how many there
    are. All of them: `GET /api/v1/users/{id}/posts`, page by page."""
{%- else %}
    """A user as the API shows it."""
{%- endif %}

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
{%- if auth %}
    email: str | None = Field(description="Only for the user themselves and admins; else null.")
{%- else %}
    email: str
{%- endif %}
    full_name: str
    version: int
    created_at: datetime
    updated_at: datetime
{%- if auth %}
    roles: list[RoleRead] | None = Field(
        description="Only for the user themselves and admins; else null."
    )
{%- else %}
    roles: list[RoleRead]
{%- endif %}
{%- if examples %}
    post_count: int
    latest_posts: list[PostSummary]
{%- endif %}
{%- if examples %}


class UserPostCount(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
{%- if auth %}
    full_name: str
{%- else %}
    email: str
{%- endif %}
    post_count: int
{%- endif %}


class UserImport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    users: list[UserCreate] = Field(min_length=1, max_length=1000)


class UserImportResult(BaseModel):
    email: str
    status: Literal["created", "duplicate"]
    id: uuid.UUID | None = None
