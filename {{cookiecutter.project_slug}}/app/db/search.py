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
the column's BINARY collation (SQLite uses an index for `LIKE` only on a column
whose collation is NOCASE).
Docs: https://www.sqlite.org/optoverview.html#the_like_optimization
{%- else %}

MySQL/MariaDB: `column LIKE 'prefix%'` (the prefix escaped), which the optimizer
reads as a range of the index on the column, in the column's collation: with the
usual `_ci` collations, a prefix of any letter case.
Docs: https://mariadb.com/kb/en/like/
{%- endif %}
"""

from sqlalchemy import ColumnElement, SQLColumnExpression{% if db != "mysql" %}, and_, func, literal{% endif %}
{%- if db != "mysql" %}

# Sorts after every character that can follow a prefix: the largest code point.
AFTER_EVERY_CHARACTER = "\U0010ffff"
{%- else %}

ESCAPE = "\\"
{%- endif %}


def starts_with(
    column: SQLColumnExpression[str], prefix: str, *, any_case: bool = False
) -> ColumnElement[bool]:
{%- if db == "mysql" %}
    """`column` starts with `prefix`. The column's collation decides letter case
    (`any_case` is what the usual `_ci` collations give)."""
    escaped = "".join(ESCAPE + c if c in ("%", "_", ESCAPE) else c for c in prefix)
    return column.like(escaped + "%", escape=ESCAPE)
{%- else %}
    """`column` starts with `prefix`; with `any_case`, compared lower-case (the index
    must then be on `lower(column)`{% if db == "sqlite" %}; SQLite's `lower()` folds ASCII letters only{% endif %})."""
    start: ColumnElement[str] = literal(prefix)
    end: ColumnElement[str] = literal(prefix + AFTER_EVERY_CHARACTER)
    if any_case:
        column, start, end = func.lower(column), func.lower(start), func.lower(end)
{%- if db == "postgresql" %}
    return and_(
        column.op("~>=~", is_comparison=True)(start),
        column.op("~<~", is_comparison=True)(end),
    )
{%- else %}
    return and_(column >= start, column < end)
{%- endif %}
{%- endif %}
