"""The database layer on a test-only model (tests/scratch_models.py), so every variant
proves it, with or without the example domain: keys, timestamps, soft delete, the
UTC type and the text guards of request bodies."""

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import bindparam, select, text
from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.keys import new_id
from app.schemas import Email, ShortText, Text
from tests.scratch_models import Widget

pytestmark = pytest.mark.usefixtures("widgets")


async def test_keys_are_uuid7_and_ordered_by_creation(session: AsyncSession) -> None:
    widgets = [Widget(name=f"w{i}") for i in range(50)]
    for widget in widgets:
        session.add(widget)
        await session.flush()
    ids = [w.id for w in widgets]
    assert {i.version for i in ids} == {7}
    assert ids == sorted(ids)  # new rows append to the end of the key's index
    stored = (await session.scalars(select(Widget.id).order_by(Widget.id))).all()
    assert list(stored) == ids


async def test_timestamps_are_aware_utc_and_updated_at_moves(session: AsyncSession) -> None:
    widget = Widget(name="first")
    session.add(widget)
    await session.commit()
    session.expunge_all()
    loaded = await session.get(Widget, widget.id)
    assert loaded is not None
    assert loaded.created_at.utcoffset() == timedelta(0)
    before = loaded.updated_at
    loaded.name = "second"
    await session.commit()
    session.expunge_all()
    reloaded = await session.get(Widget, widget.id)
    assert reloaded is not None
    assert reloaded.updated_at > before
    assert reloaded.created_at == loaded.created_at


async def test_a_time_in_another_zone_is_stored_as_the_same_instant(
    session: AsyncSession,
) -> None:
    noon_at_plus_two = datetime(2026, 7, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    widget = Widget(name="zoned", created_at=noon_at_plus_two)
    session.add(widget)
    await session.commit()
    session.expunge_all()
    loaded = await session.get(Widget, widget.id)
    assert loaded is not None
    assert loaded.created_at == noon_at_plus_two
    assert (loaded.created_at.hour, loaded.created_at.utcoffset()) == (10, timedelta(0))


async def test_raw_sql_inserts_get_timestamps_from_the_database(session: AsyncSession) -> None:
    """The server defaults: a data migration or a hand-written INSERT names no timestamp."""
    widget_id = new_id()
    insert = text("INSERT INTO scratch_widgets (id, name) VALUES (:id, :name)").bindparams(
        bindparam("id", type_=Widget.__table__.c.id.type)
    )
    await session.execute(insert, {"id": widget_id, "name": "raw"})
    widget = await session.get(Widget, widget_id)
    assert widget is not None
    now = datetime.now(UTC)
    assert abs(widget.created_at - now) < timedelta(minutes=1)
    assert widget.updated_at == widget.created_at
    assert widget.is_deleted is False


async def test_soft_deleted_rows_are_hidden_from_orm_queries(session: AsyncSession) -> None:
    kept, gone = Widget(name="kept"), Widget(name="gone")
    session.add_all([kept, gone])
    await session.flush()
    gone.mark_deleted()
    await session.commit()
    session.expunge_all()
    names = (await session.scalars(select(Widget.name))).all()
    assert names == ["kept"]
    everything = select(Widget.name).execution_options(include_deleted=True)
    assert sorted((await session.scalars(everything)).all()) == ["gone", "kept"]


async def test_a_naive_datetime_is_refused(session: AsyncSession) -> None:
    widget = Widget(name="naive", created_at=datetime(2026, 1, 1))
    session.add(widget)
    with pytest.raises(StatementError, match="naive datetime"):
        await session.flush()


@pytest.mark.parametrize("value", ["nul\x00byte", "bell\x07", "lone \ud800 surrogate"])
@pytest.mark.parametrize("field", [Text, ShortText])
def test_text_fields_refuse_what_no_column_should_hold(field: Any, value: str) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(field).validate_python(value)


def test_text_fields_keep_tabs_and_line_breaks() -> None:
    assert TypeAdapter(Text).validate_python("a\tb\nc\r\n") == "a\tb\nc\r\n"
    assert TypeAdapter(ShortText).validate_python("  trimmed  ") == "trimmed"


def test_emails_are_stored_lower_case() -> None:
    assert TypeAdapter(Email).validate_python("Ada.Lovelace@Example.COM") == (
        "ada.lovelace@example.com"
    )


def test_new_ids_are_distinct() -> None:
    assert len({new_id() for _ in range(10_000)}) == 10_000
    assert isinstance(new_id(), uuid.UUID)
