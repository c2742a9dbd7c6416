"""RefreshToken: every refresh token issued, so that each can be spent only once."""

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base
from app.db.types import SERVER_NOW, UTCDateTime, utcnow


class RefreshToken(Base):
    """One refresh token (its `jti`) of a family: the tokens that descend, one
    refresh at a time, from one login. Spending it sets `used_at`; spending it
    again revokes the whole family (app.auth.refresh)."""

    __tablename__ = "refresh_tokens"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)  # the token's jti
    family_id: Mapped[uuid.UUID] = mapped_column(index=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=SERVER_NOW
    )
