{%- set db = cookiecutter.database -%}
"""Prefix search: "the column starts with this text", as a condition an index serves.

A substring filter (`LIKE '%text%'`) cannot use an index: it reads every row of the
table, and a list filtered with it costs more the larger the table grows. A prefix
is a range of an index on the column, so the filters of the lists are prefixes.
{%- if db == "postgresql" %}

PostgreSQL: `column ~>=~ prefix AND column ~<~ prefix || U+10FFFF`, the byte-order
comparisons of an index built with `text_pattern_ops`, which serve a prefix
whatever the database's collation (a plain index in a collation other than "C"
cannot), and whatever the parameter (a `LIKE` pattern with a parameter serves one
only while the planner makes a plan per value).
Docs: https://www.postgresql.org/docs/current/indexes-opclass.html
{%- elif db == "sqlite" %}

SQLite: `column >= prefix AND column < prefix || U+10FFFF`, a range of an index in
the column's BINARY collation; or, for any letter case, `column LIKE 'prefix%'` on
a column (and so an index) in the NOCASE collation, which SQLite reads as a range.
SQLite keeps no statistics of the values in a column (unless built with STAT4), so
it cannot tell a filter that leaves a few rows from one that leaves most: `weighed`
asks the index instead, and tells the planner what it found (`likelihood()`).
Docs: https://www.sqlite.org/optoverview.html#the_like_optimization
{%- else %}

MySQL/MariaDB: `column LIKE 'prefix%'` (the prefix escaped), which the optimizer
reads as a range of the index on the column, in the column's collation: with the
usual `_ci` collations, a prefix of any letter case.
Docs: https://mariadb.com/kb/en/like/
{%- endif %}
"""

from typing import Any

{% if db == "sqlite" -%}
from sqlalchemy import (
    ColumnElement,
    SQLColumnExpression,
    and_,
    func,
    literal,
    literal_column,
    select,
)
{%- else -%}
from sqlalchemy import ColumnElement, SQLColumnExpression{% if db == "postgresql" %}, and_, func, literal{% endif %}
{%- endif %}
{%- if db == "sqlite" %}
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import BooleanClauseList
{%- endif %}
{%- if db != "mysql" %}

# Sorts after every character that can follow a prefix: the largest code point.
AFTER_EVERY_CHARACTER = "\U0010ffff"
{%- endif %}
{%- if db == "mysql" %}

ESCAPE = "/"
{%- elif db == "sqlite" %}
ESCAPE = "/"
# A filter that leaves fewer rows than this is read through its own index.
FEW = 1000
UNLIKELY, LIKELY = "0.0001", "0.9"
{%- endif %}


def starts_with(
    column: SQLColumnExpression[Any], prefix: str, *, any_case: bool = False
) -> ColumnElement[bool]:
{%- if db == "mysql" %}
    """`column` starts with `prefix`. The column's collation decides letter case
    (`any_case` is what the usual `_ci` collations give)."""
    return column.like(_escaped(prefix) + "%", escape=ESCAPE)
{%- elif db == "sqlite" %}
    """`column` starts with `prefix`; with `any_case`, in ASCII letters of any case
    (the column must then be in the NOCASE collation)."""
    if any_case:
        return column.like(_escaped(prefix) + "%", escape=ESCAPE)
    start, end = literal(prefix), literal(prefix + AFTER_EVERY_CHARACTER)
    return and_(column >= start, column < end)
{%- else %}
    """`column` starts with `prefix`; with `any_case`, compared lower-case (the index
    must then be on `lower(column)`)."""
    start: ColumnElement[str] = literal(prefix)
    end: ColumnElement[str] = literal(prefix + AFTER_EVERY_CHARACTER)
    if any_case:
        column, start, end = func.lower(column), func.lower(start), func.lower(end)
    return and_(
        column.op("~>=~", is_comparison=True)(start),
        column.op("~<~", is_comparison=True)(end),
    )
{%- endif %}
{%- if db != "postgresql" %}


def _escaped(text: str) -> str:
    """`text` with LIKE's wildcards (and the escape character) taken literally."""
    return "".join(ESCAPE + c if c in ("%", "_", ESCAPE) else c for c in text)
{%- endif %}
{%- if db == "sqlite" %}


async def weighed(
    connection: AsyncConnection,
    condition: ColumnElement[bool],
    *,
    within: ColumnElement[bool] | None = None,
) -> ColumnElement[bool]:
    """`condition` with how likely each of its terms holds for a row (SQLite's
    `likelihood()`): unlikely if it leaves fewer than FEW rows (of those `within`
    selects, for a partial index), so that its index is read and then sorted;
    else likely, so that the page's order is read until the page is full. The
    question reads at most FEW entries of an index."""
    probe = select(literal(1)).where(condition if within is None else and_(condition, within))
    few = len((await connection.execute(probe.limit(FEW))).all()) < FEW
    chance: ColumnElement[float] = literal_column(UNLIKELY if few else LIKELY)
    terms = condition.clauses if isinstance(condition, BooleanClauseList) else [condition]
    return and_(*(func.likelihood(term, chance) for term in terms))
{%- endif %}
