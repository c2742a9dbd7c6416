{%- set db = cookiecutter.database -%}
"""Column types that keep their promises on {{ {'sqlite': 'SQLite', 'postgresql': 'PostgreSQL', 'mysql': 'MySQL and MariaDB'}[db] }}."""

{% if db == "mysql" -%}
import uuid
{% endif -%}
from datetime import UTC, datetime
from typing import Any

{% if db == "mysql" -%}
from sqlalchemy import text
from sqlalchemy.dialects.mysql import BINARY, DATETIME
{%- elif db == "postgresql" -%}
from sqlalchemy import DateTime, func
{%- else -%}
from sqlalchemy import DateTime, text
{%- endif %}
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

# The database's own clock in UTC, as a server default: rows that raw SQL or a data
# migration inserts get timestamps too{% if db == "sqlite" %}, in the same text as the Python
# values (microseconds, no zone){% endif %}.
{% if db == "mysql" -%}
SERVER_NOW = text("(UTC_TIMESTAMP(6))")
{%- elif db == "postgresql" -%}
SERVER_NOW = func.now()
{%- else -%}
SERVER_NOW = text("(strftime('%Y-%m-%d %H:%M:%f000', 'now'))")
{%- endif %}


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime, stored in UTC.
{%- if db == "postgresql" %}

    PostgreSQL stores it as `timestamptz`, an absolute instant; the decorator
    refuses naive values so a local time can never be stored by mistake, and
    returns UTC whatever the connection's time zone.
{%- elif db == "mysql" %}

    DATETIME keeps no zone (and claims none): values are converted to UTC on the
    way in (the connection's time_zone is UTC too) and marked UTC on the way out.
    Microsecond precision keeps `updated_at` moving within the same second.
{%- else %}

    SQLite has no date type and keeps no zone: the column is a plain DATETIME (text
    that claims no zone), values are converted to UTC on the way in and marked UTC
    on the way out.
{%- endif %}
    """

    impl = {% if db == "mysql" %}DATETIME(fsp=6){% elif db == "postgresql" %}DateTime(timezone=True){% else %}DateTime(){% endif %}
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware one, e.g. datetime.now(UTC)")
{%- if db == "postgresql" %}
        return value.astimezone(UTC)
{%- else %}
        return value.astimezone(UTC).replace(tzinfo=None)
{%- endif %}

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
{%- if db == "postgresql" %}
        return value.astimezone(UTC)  # type: ignore[no-any-return]
{%- else %}
        return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
{%- endif %}
{%- if db == "mysql" %}


class BinaryUUID(TypeDecorator[uuid.UUID]):
    """A UUID in 16 bytes, BINARY(16), the same column on MySQL and on MariaDB.

    SQLAlchemy's Uuid would be CHAR(32) on MySQL but MariaDB's native UUID type on
    MariaDB 10.7+: one migration, two schemas. 16 bytes also keep the primary key,
    and every index that carries it, at half the size of the text form. The API
    still speaks the usual string form; in SQL, `HEX(id)` shows a key.
    """

    impl = BINARY(16)
    cache_ok = True

    def process_bind_param(self, value: uuid.UUID | None, dialect: Dialect) -> bytes | None:
        return None if value is None else value.bytes

    def process_result_value(self, value: Any, dialect: Dialect) -> uuid.UUID | None:
        return None if value is None else uuid.UUID(bytes=value)
{%- endif %}


def utcnow() -> datetime:
    return datetime.now(UTC)
