"""User, Role and the many-to-many `user_roles` table.

Relationships use `lazy="raise"`: async code cannot lazy-load, so every query
states what it loads (`selectinload`, `joinedload`) and a forgotten one fails
loudly in tests instead of as `MissingGreenlet` in production.
Docs: https://docs.sqlalchemy.org/en/20/orm/queryguide/relationships.html
"""

from typing import TYPE_CHECKING

from sqlalchemy import Column, ForeignKey, Index, String, Table
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db.base import Base
from app.db.mixins import SoftDeleteMixin, TimestampMixin, UUIDPrimaryKeyMixin

if TYPE_CHECKING:
    from app.posts.models import Post

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
    __table_args__ = (Index("ix_users_created_at_id", "created_at", "id"),)

    # Unique across all rows, soft-deleted ones included, so the rule is the same on
    # every database (MySQL has no partial indexes). Stored lower-case.
    email: Mapped[str] = mapped_column(String(320), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    # Optimistic locking: every UPDATE checks and bumps it, so a concurrent write
    # raises StaleDataError (HTTP 409) instead of silently overwriting.
    version: Mapped[int] = mapped_column(default=1)

    posts: Mapped[list["Post"]] = relationship(
        back_populates="author",
        cascade="all, delete-orphan",
        passive_deletes=True,
        lazy="raise",
        order_by="Post.created_at.desc()",
    )
    roles: Mapped[list[Role]] = relationship(secondary=user_roles, lazy="raise", order_by=Role.name)

    __mapper_args__ = {"version_id_col": version}
