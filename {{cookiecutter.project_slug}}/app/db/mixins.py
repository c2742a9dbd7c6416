"""Columns that most tables want: a UUID key, timestamps and soft delete.

Timestamps are set by the application in UTC (`default`/`onupdate`), so they are
maintained the same way on every database and by every ORM or Core statement.
"""

import uuid
from datetime import datetime

from sqlalchemy import Uuid, false
from sqlalchemy.orm import Mapped, mapped_column

from app.db.keys import new_id
from app.db.types import UTCDateTime, utcnow


class UUIDPrimaryKeyMixin:
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class SoftDeleteMixin:
    """Rows are marked deleted instead of removed; `app.db.soft_delete` hides them."""

    is_deleted: Mapped[bool] = mapped_column(default=False, server_default=false())
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def mark_deleted(self) -> None:
        self.is_deleted = True
        self.deleted_at = utcnow()
