"""Columns that most tables want: a time-ordered UUID key, timestamps and soft delete.

Timestamps are set by the application in UTC (`default`/`onupdate`), the same way
by every ORM or Core statement; the database's UTC clock is their server default,
for rows that raw SQL or a data migration inserts.
"""

import uuid
from datetime import datetime

from sqlalchemy import false
from sqlalchemy.orm import Mapped, mapped_column

from app.db.keys import new_id
from app.db.types import SERVER_NOW, UTCDateTime, utcnow


class UUIDPrimaryKeyMixin:
    """A UUIDv7 key (app.db.keys): new rows append to the end of the index."""

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=SERVER_NOW
    )
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow, server_default=SERVER_NOW
    )


class SoftDeleteMixin:
    """Rows are marked deleted instead of removed; `app.db.soft_delete` hides them."""

    is_deleted: Mapped[bool] = mapped_column(default=False, server_default=false())
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def mark_deleted(self) -> None:
        self.is_deleted = True
        self.deleted_at = utcnow()
