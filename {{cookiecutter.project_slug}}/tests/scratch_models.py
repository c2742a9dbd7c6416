"""A model that exists only in the tests, to prove the database layer without the
example domain: the mixins, the soft-delete filter, UTC timestamps, the sessions.

Its table is TEMPORARY: created on the test's own connection, invisible to every
other connection and to the migrations' model comparison, and dropped afterwards.
"""

from sqlalchemy import MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from app.db.base import NAMING_CONVENTION, Base
from app.db.mixins import SoftDeleteMixin, TimestampMixin, UUIDPrimaryKeyMixin


class ScratchBase(DeclarativeBase):
    """The app's conventions and column types, with metadata of its own."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = Base.registry.type_annotation_map


class Widget(UUIDPrimaryKeyMixin, TimestampMixin, SoftDeleteMixin, ScratchBase):
    __tablename__ = "scratch_widgets"
    __table_args__ = {"prefixes": ["TEMPORARY"]}

    name: Mapped[str] = mapped_column(String(100))
