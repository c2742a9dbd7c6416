"""Request and response bodies for posts."""

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from app.schemas import ShortText, Text


class PostCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: ShortText
    body: Text = Field(max_length=50_000)


class PostBulkCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    posts: list[PostCreate] = Field(min_length=1, max_length=10_000)


class PostBulkCreated(BaseModel):
    created: int


class AuthorRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
{%- if cookiecutter.auth == "jwt" %}
    email: str | None = Field(description="Only for the author themselves and admins; else null.")
{%- else %}
    email: str
{%- endif %}
    full_name: str


class PostRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    author_id: uuid.UUID
    title: str
    body: str
    view_count: int
    created_at: datetime
    updated_at: datetime
    author: AuthorRead


class PostExportRow(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    author_id: uuid.UUID
    title: str
    view_count: int
    created_at: datetime
