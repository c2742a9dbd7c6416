{%- set db = cookiecutter.database -%}
"""Column types that behave the same on every database."""

from datetime import UTC, datetime
from typing import Any

{% if db == "mysql" -%}
from sqlalchemy.dialects.mysql import DATETIME
{% else -%}
from sqlalchemy import DateTime
{% endif -%}
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime, stored in UTC.

{%- if db == "postgresql" %}
    PostgreSQL stores it as `timestamptz`; the decorator refuses naive values so
    a local time can never be stored by mistake.
{%- elif db == "mysql" %}
    MySQL's DATETIME keeps no zone: values are converted to UTC on the way in
    (the connection's time_zone is UTC too) and marked UTC on the way out.
    Microsecond precision keeps `updated_at` moving within the same second.
{%- else %}
    SQLite keeps no zone: values are converted to UTC on the way in and marked
    UTC on the way out.
{%- endif %}
    """
{% if db == "mysql" %}
    impl = DATETIME(fsp=6)
{%- else %}
    impl = DateTime(timezone=True)
{%- endif %}
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware one, e.g. datetime.now(UTC)")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
{%- if db == "postgresql" %}
        return value.astimezone(UTC)  # type: ignore[no-any-return]
{%- else %}
        return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
{%- endif %}


def utcnow() -> datetime:
    return datetime.now(UTC)
