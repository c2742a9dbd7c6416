"""What authentication keeps in the database: every refresh token issued, so that each
can be spent only once, and the throttle's request counts."""

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base
from app.db.types import SERVER_NOW, UTCDateTime, utcnow


class RefreshToken(Base):
    """One refresh token (its `jti`) of a family: the tokens that descend, one
    refresh at a time, from one log-in. Spending it sets `used_at`; spending it
    again revokes the whole family (app.auth.refresh). Expired and revoked rows are
    removed by the purge job (app.auth.purge)."""

    __tablename__ = "refresh_tokens"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)  # the token's jti
    family_id: Mapped[uuid.UUID] = mapped_column(index=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=SERVER_NOW
    )


class ThrottleWindow(Base):
    """The requests one client address made to one endpoint within one window of
    AUTH_THROTTLE_WINDOW_SECONDS (app.auth.throttle). Windows that can no longer
    count are removed by the purge job."""

    __tablename__ = "auth_throttle"

    # The endpoint and the client: "token:203.0.113.7", "register:2001:db8:1:2::/64".
    bucket: Mapped[str] = mapped_column(String(80), primary_key=True)
    # The window's start, in whole seconds since the epoch.
    window_start: Mapped[int] = mapped_column(BigInteger, primary_key=True, index=True)
    hits: Mapped[int]
