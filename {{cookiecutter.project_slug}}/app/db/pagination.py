"""Keyset (cursor) pagination: every page costs the same, however deep, and paging
through a table that others write to repeats no row and skips none.

A list is ordered by a unique key, `(created_at, id)`, and a page is the `limit`
rows after the last row of the previous page (`WHERE (created_at, id) > (...)`,
served by an index on those columns), never `OFFSET n`, which reads and discards
n rows. The cursor handed to the client holds that last row's key, and is signed
together with the query it belongs to (HMAC-SHA256 with SECRET_KEY): a cursor
that was altered, or is replayed with other filters, is refused with a 422.
Docs: https://use-the-index-luke.com/no-offset
"""

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
{% if cookiecutter.python_version == "3.11" %}from typing import Any, Generic, TypeVar{% else %}from typing import Any{% endif %}

from sqlalchemy import ColumnElement, {% if cookiecutter.database == "mysql" %}and_, or_{% else %}tuple_{% endif %}
from sqlalchemy.orm import InstrumentedAttribute

{% if cookiecutter.python_version == "3.11" -%}
Row = TypeVar("Row", covariant=True)
{% endif -%}
# Signature length: 128 bits are plenty to make forging hopeless.
_SIGNATURE_BYTES = 16


class CursorError(ValueError):
    """The cursor is malformed, was altered, or belongs to another query."""


@dataclass(frozen=True)
class Position:
    """Where a page ends: the sort key of its last row."""

    created_at: datetime
    id: uuid.UUID


@dataclass(frozen=True)
class Keyset:
    """The order of a list: `(created_at, id)`, ascending or descending."""

    created_at: InstrumentedAttribute[datetime]
    id: InstrumentedAttribute[uuid.UUID]
    descending: bool = False

    def order_by(self) -> tuple[ColumnElement[Any], ...]:
        if self.descending:
            return (self.created_at.desc(), self.id.desc())
        return (self.created_at.asc(), self.id.asc())

    def after(self, position: Position) -> ColumnElement[bool]:
        """The rows that come after `position` in this order.{% if cookiecutter.database == "mysql" %} Spelled out, with a
        bound on `created_at` alone: MariaDB reads a row comparison such as
        `(created_at, id) > (...)` by scanning the index from its start."""
        at, newer = position.created_at, position.id
        if self.descending:
            return and_(
                self.created_at <= at,
                or_(self.created_at < at, and_(self.created_at == at, self.id < newer)),
            )
        return and_(
            self.created_at >= at,
            or_(self.created_at > at, and_(self.created_at == at, self.id > newer)),
        )
{%- else %}"""
        key = tuple_(self.created_at, self.id)
        values = (position.created_at, position.id)
        return key < values if self.descending else key > values
{%- endif %}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _scope(name: str, filters: Mapping[str, object]) -> bytes:
    """The query a cursor belongs to: the list's name and its filters."""
    return json.dumps(
        [name, sorted((k, str(v)) for k, v in filters.items() if v is not None)]
    ).encode()


def _signature(secret: str, scope: bytes, payload: bytes) -> bytes:
    digest = hmac.new(secret.encode(), scope + b"\0" + payload, hashlib.sha256).digest()
    return digest[:_SIGNATURE_BYTES]


def encode_cursor(
    position: Position, *, name: str, filters: Mapping[str, object], secret: str
) -> str:
    payload = json.dumps([position.created_at.isoformat(), position.id.hex]).encode()
    return f"{_b64(payload)}.{_b64(_signature(secret, _scope(name, filters), payload))}"


def decode_cursor(
    cursor: str, *, name: str, filters: Mapping[str, object], secret: str
) -> Position:
    try:
        encoded_payload, encoded_signature = cursor.split(".")
        payload, signature = _unb64(encoded_payload), _unb64(encoded_signature)
    except ValueError as exc:  # binascii.Error is a ValueError
        raise CursorError("malformed cursor") from exc
    expected = _signature(secret, _scope(name, filters), payload)
    if not hmac.compare_digest(signature, expected):
        raise CursorError("the cursor was altered or belongs to another query")
    try:
        created_at, id_hex = json.loads(payload)
        position = Position(datetime.fromisoformat(created_at), uuid.UUID(hex=id_hex))
    except (ValueError, TypeError) as exc:  # signed by us, so only a changed format gets here
        raise CursorError("malformed cursor") from exc
    if position.created_at.tzinfo is None:
        raise CursorError("malformed cursor")
    return position


@dataclass(frozen=True)
class Page{% if cookiecutter.python_version == "3.11" %}(Generic[Row]){% else %}[Row]{% endif %}:
    """One page of rows, and where the next one starts (None on the last page)."""

    rows: Sequence[Row]
    next: Position | None
