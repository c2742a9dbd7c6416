{%- set db = cookiecutter.database -%}
"""Post: many per user, deleted with its author (ON DELETE CASCADE)."""

import uuid
from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text{% if db == "postgresql" %}, func{% endif %}
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db.base import Base
from app.db.mixins import SoftDeleteMixin, TimestampMixin, UUIDPrimaryKeyMixin

if TYPE_CHECKING:
    from app.users.models import User


class Post(UUIDPrimaryKeyMixin, TimestampMixin, SoftDeleteMixin, Base):
    __tablename__ = "posts"
    __table_args__ = (
        # "Posts of this author, newest first" (and the per-author window), plus the
        # foreign key lookup; the second serves the newest-first list of all posts.
        Index("ix_posts_author_id_created_at_id", "author_id", "created_at", "id"),
        Index("ix_posts_created_at_id", "created_at", "id"),
        # The list's filters (app.posts.repository): the least number of views, and a
        # title's start (below).
        Index("ix_posts_view_count", "view_count"),
{%- if db != "postgresql" %}
        # In the column's collation: a prefix of any letter case (app.db.search).
        Index("ix_posts_title", "title"),
{%- endif %}
        CheckConstraint("view_count >= 0", name="view_count_non_negative"),
    )

    author_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
{%- if db == "sqlite" %}
    # NOCASE: its index serves a title's start in any (ASCII) letter case.
    title: Mapped[str] = mapped_column(String(200, collation="NOCASE"))
{%- else %}
    title: Mapped[str] = mapped_column(String(200))
{%- endif %}
    body: Mapped[str] = mapped_column(Text)
    view_count: Mapped[int] = mapped_column(default=0, server_default="0")

    author: Mapped["User"] = relationship(back_populates="posts", lazy="raise")
{%- if db == "postgresql" %}


# A title's start, any letter case, in byte order whatever the collation (app.db.search).
Index(
    "ix_posts_title_prefix",
    func.lower(Post.title).label("lower_title"),
    postgresql_ops={"lower_title": "text_pattern_ops"},
)
{%- endif %}
