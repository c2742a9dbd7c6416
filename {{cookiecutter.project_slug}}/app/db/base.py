"""Declarative base shared by every model.

The naming convention gives every constraint a stable name, so migrations are
{%- if cookiecutter.database == "sqlite" %}
reproducible and SQLite's batch migrations can address them.
{%- else %}
reproducible and can drop or alter a constraint by its name.
{%- endif %}
{%- if cookiecutter.database == "mysql" %}
Every `Mapped[uuid.UUID]` column is BINARY(16) (app.db.types.BinaryUUID).
{%- endif %}
Docs: https://docs.sqlalchemy.org/en/20/core/constraints.html#configuring-constraint-naming-conventions
"""
{% if cookiecutter.database == "mysql" %}
import uuid
from typing import Any, ClassVar
{% endif %}
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase
{%- if cookiecutter.database == "mysql" %}

from app.db.types import BinaryUUID
{%- endif %}

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
{%- if cookiecutter.database == "mysql" %}
    type_annotation_map: ClassVar[dict[Any, Any]] = {uuid.UUID: BinaryUUID}
{%- endif %}
