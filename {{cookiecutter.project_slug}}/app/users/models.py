{%- set examples = cookiecutter.include_example_models == "yes" -%}
"""User, Role and the many-to-many `user_roles` table.

Relationships use `lazy="raise"`: async code cannot lazy-load, so an ORM query
states the relationships it needs (`selectinload(User.roles)` in the repository)
and a forgotten one fails loudly in tests instead of as `MissingGreenlet` in
production. Reads are Core statements and load no entities at all.
Docs: https://docs.sqlalchemy.org/en/20/orm/queryguide/relationships.html
"""

{% if cookiecutter.auth == "jwt" -%}
from datetime import datetime
{% endif -%}
{% if examples -%}
from typing import TYPE_CHECKING
{% endif %}
from sqlalchemy import {% if cookiecutter.database == "mysql" %}Column, Computed, ForeignKey, Index, String, Table{% else %}Column, ForeignKey, Index, String, Table, text{% endif %}
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db.base import Base
from app.db.mixins import SoftDeleteMixin, TimestampMixin, UUIDPrimaryKeyMixin
{%- if cookiecutter.auth == "jwt" %}
from app.db.types import UTCDateTime
{%- endif %}
{%- if examples %}

if TYPE_CHECKING:
    from app.posts.models import Post
{%- endif %}

user_roles = Table(
    "user_roles",
    Base.metadata,
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("role_id", ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class Role(UUIDPrimaryKeyMixin, Base):
    __tablename__ = "roles"

    name: Mapped[str] = mapped_column(String(50), unique=True)


class User(UUIDPrimaryKeyMixin, TimestampMixin, SoftDeleteMixin, Base):
    __tablename__ = "users"
    __table_args__ = (
        Index("ix_users_created_at_id", "created_at", "id"),
{%- if cookiecutter.database == "mysql" %}
        # Unique among live users: a unique index allows many NULLs, and
        # `live_email` is NULL for deleted rows.
        Index("uq_users_live_email", "live_email", unique=True),
{%- elif cookiecutter.database == "postgresql" %}
        # Unique among live users: a deleted user's email can be registered again.
        # In byte order (text_pattern_ops): it serves a prefix search too (app.db.search).
        Index(
            "uq_users_live_email",
            "email",
            unique=True,
            postgresql_where=text("NOT is_deleted"),
            postgresql_ops={"email": "text_pattern_ops"},
        ),
{%- else %}
        # Unique among live users: a deleted user's email can be registered again. The
        # condition is written as the queries write it, so they can use the index.
        Index("uq_users_live_email", "email", unique=True, sqlite_where=text("is_deleted = 0")),
{%- endif %}
{%- if examples %}
        # The users with the most posts (app.users.repository.users_with_post_counts).
        Index("ix_users_post_count_id", "post_count", "id"),
{%- endif %}
        # The purge job's queue (app.users.purge): deleted users, oldest first.
{%- if cookiecutter.database == "mysql" %}
        Index("ix_users_deleted_at_id", "deleted_at", "id"),
{%- else %}
        Index(
            "ix_users_deleted_at_id",
            "deleted_at",
            "id",
            {{ cookiecutter.database }}_where=text("{{ 'is_deleted' if cookiecutter.database == 'postgresql' else 'is_deleted = 1' }}"),
        ),
{%- endif %}
    )

    # Stored lower-case (app.schemas.Email), so uniqueness ignores letter case.
    email: Mapped[str] = mapped_column(String(320))
{%- if cookiecutter.database == "mysql" %}
    # MySQL and MariaDB have no partial indexes: a virtual column that holds the
    # email of a live user and NULL for a deleted one carries the unique index.
    live_email: Mapped[str | None] = mapped_column(
        String(320), Computed("CASE WHEN is_deleted THEN NULL ELSE email END", persisted=False)
    )
{%- endif %}
    full_name: Mapped[str] = mapped_column(String(200))
{%- if cookiecutter.auth == "jwt" %}
    # Authentication (app.auth): an argon2id hash, NULL for a user created without a
    # password (POST /api/v1/users), who cannot log in; the password checks counted
    # since the last success, and the end of the lock-out they led to
    # (app.auth.login); the token generation that access tokens must carry (logging
    # out everywhere or changing the password starts the next one).
    password_hash: Mapped[str | None] = mapped_column(String(255))
    failed_logins: Mapped[int] = mapped_column(default=0, server_default="0")
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    token_generation: Mapped[int] = mapped_column(default=0, server_default="0")
{%- endif %}
{%- if examples %}
    # How many live posts the user has: kept by the writes of posts, in their own
    # transaction (app.posts.repository), so that no read counts them.
    post_count: Mapped[int] = mapped_column(default=0, server_default="0")
{%- endif %}
    # Optimistic locking: every UPDATE checks and bumps it, so a concurrent write
    # raises StaleDataError (HTTP 409) instead of silently overwriting.
    version: Mapped[int] = mapped_column(default=1)
{%- if examples %}

    posts: Mapped[list["Post"]] = relationship(
        back_populates="author",
        cascade="all, delete-orphan",
        passive_deletes=True,
        lazy="raise",
        order_by="Post.created_at.desc()",
    )
{%- endif %}
    roles: Mapped[list[Role]] = relationship(secondary=user_roles, lazy="raise", order_by=Role.name)

    __mapper_args__ = {"version_id_col": version}
