{%- set db = cookiecutter.database -%}
"""EXPLAIN the example domain's key queries and flag full table scans.

    python -m scripts.explain_queries [--users 1000] [--posts-per-user 5]

Nothing is copied from the repositories: the script calls them and records the SQL
they send (a `before_cursor_execute` listener), so the plans are for exactly what
the app runs, soft-delete filter and eager loads included. It bulk-inserts sample
rows first, because planners treat tiny tables differently; everything happens in
one transaction that is rolled back, so the database is left as it was.
{% if db == "sqlite" %}
SQLite: `EXPLAIN QUERY PLAN`. `SCAN <table>` without an index reads every row;
`USE TEMP B-TREE` is a sort that no index serves.
Docs: https://www.sqlite.org/eqp.html
{%- elif db == "postgresql" %}
PostgreSQL: `EXPLAIN`, with `enable_seqscan` off for the transaction. The planner
prefers a sequential scan of a small table whatever its indexes, so a `Seq Scan`
that remains means that no index can serve the query.
Docs: https://www.postgresql.org/docs/current/using-explain.html
{%- else %}
MySQL/MariaDB: `EXPLAIN`. `type=ALL` is a full scan: with `possible_keys` empty no
index could serve it; otherwise the optimizer preferred scanning the table.
Docs: https://mariadb.com/kb/en/explain/
{%- endif %}

Exits 1 when a statement reads a whole table it should not (a missing index).
"""

import argparse
import asyncio
{%- if db == "postgresql" %}
import json
{%- endif %}
import re
import sys
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
{%- if db == "mysql" %}
from sqlalchemy.schema import PrimaryKeyConstraint, UniqueConstraint
{%- endif %}

from app.db.engine import create_engines
from app.db.pagination import Position
from app.db.session import create_session_factory
from app.errors import NotFoundError
from app.models import Base, Post, Role, User, user_roles
from app.posts import repository as posts
from app.settings import get_settings
from app.users import purge
from app.users import repository as users

TABLES = frozenset(Base.metadata.tables)
ALIAS_SUFFIX = re.compile(r"_\d+$")


def _table(name: str | None) -> str | None:
    """The table behind a name in a plan; SQLAlchemy names aliases `<table>_<n>`."""
    base = name if name in TABLES or name is None else ALIAS_SUFFIX.sub("", name)
    return base if base in TABLES else None


@dataclass
class Plan:
    lines: list[str] = field(default_factory=list)
    full_scans: dict[str, str] = field(default_factory=dict)  # table -> how the plan says it
    index_scans: dict[str, str] = field(default_factory=dict)  # table -> index read end to end
    notes: list[str] = field(default_factory=list)
{% if db == "sqlite" %}

SCAN = re.compile(r"^SCAN (\w+)(?: USING (?:COVERING )?INDEX (\w+))?")


async def explain(conn: AsyncConnection, statement: str, parameters: Any) -> Plan:
    result = await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
    plan = Plan()
    depth = {0: 0}
    for row in result.mappings():
        detail: str = row["detail"]
        depth[row["id"]] = depth.get(row["parent"], 0) + 1
        plan.lines.append("  " * (depth[row["id"]] - 1) + detail)
        scan = SCAN.match(detail)
        table = _table(scan[1]) if scan else None
        if scan and table and scan[2]:
            plan.index_scans[table] = scan[2]
        elif table:
            plan.full_scans[table] = detail
        if detail.startswith("USE TEMP B-TREE"):
            plan.notes.append(f"{detail}: the rows are sorted, not read in index order")
    return plan
{%- elif db == "postgresql" %}

def _nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", ()):
        yield from _nodes(child)


async def explain(conn: AsyncConnection, statement: str, parameters: Any) -> Plan:
    await conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
    text_plan = await conn.exec_driver_sql("EXPLAIN " + statement, parameters)
    plan = Plan(lines=list(text_plan.scalars()))
    json_plan = (
        await conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, parameters)
    ).scalar_one()
    document = json.loads(json_plan) if isinstance(json_plan, str) else json_plan
    for node in _nodes(document[0]["Plan"]):
        table = _table(node.get("Relation Name"))
        if node["Node Type"] == "Sort":
            plan.notes.append(f"Sort on {', '.join(node['Sort Key'])}: not read in index order")
        elif table and node["Node Type"] == "Seq Scan":
            plan.full_scans[table] = "Seq Scan even with enable_seqscan off"
        elif table and "Index Name" in node and "Index Cond" not in node:
            plan.index_scans[table] = node["Index Name"]
    return plan
{%- else %}

ORDER_BY_LIMIT = re.compile(r"ORDER BY (.+?) LIMIT")
UNIQUE_KEYS = (PrimaryKeyConstraint, UniqueConstraint)


def _ordering_key(table: str, statement: str) -> str | None:
    """A key of `table` that gives the statement's ORDER BY ... LIMIT order.

    EXPLAIN lists only the keys usable for the WHERE clause as `possible_keys`.
    """
    order_by = ORDER_BY_LIMIT.search(" ".join(statement.split()))
    if order_by is None:
        return None
    wanted = [term.split()[0].split(".")[-1] for term in order_by[1].split(", ")]
    schema = Base.metadata.tables[table]
    keys = [*schema.indexes, *(c for c in schema.constraints if isinstance(c, UNIQUE_KEYS))]
    for key in keys:
        if [column.name for column in key.columns][: len(wanted)] == wanted:
            return str(key.name)
    return None


async def explain(conn: AsyncConnection, statement: str, parameters: Any) -> Plan:
    result = await conn.exec_driver_sql("EXPLAIN " + statement, parameters)
    plan = Plan()
    for row in result.mappings():
        name, kind, extra = row["table"], row["type"], row["Extra"] or ""
        plan.lines.append(f"{name}: type={kind} key={row['key']} rows={row['rows']} {extra}")
        table = _table(name)
        usable = table and (row["possible_keys"] or _ordering_key(table, statement))
        if table and kind == "ALL" and usable:
            plan.notes.append(f"{table}: the optimizer preferred a full scan to {usable}")
        elif table and kind == "ALL":
            plan.full_scans[table] = "type=ALL, no usable key"
        elif table and kind == "index":
            plan.index_scans[table] = row["key"]
        if "filesort" in extra:
            plan.notes.append(f"{name}: Using filesort: rows sorted, not read in index order")
    return plan
{%- endif %}


@dataclass(frozen=True)
class Query:
    name: str
    run: Callable[[AsyncConnection, uuid.UUID], Awaitable[object]]
    # Tables the query reads whole by design (aggregates over every row).
    reads_all: frozenset[str] = frozenset()


# A position in the middle of the sample data, for the keyset pages.
MIDDLE = Position(datetime.now(UTC), uuid.UUID(int=2**127))

QUERIES = (
    Query(
        "list users with their latest posts, post counts and roles (first page of 20)",
        lambda conn, _: users.list_users(conn, limit=20),
    ),
    Query(
        "list users: a later page (keyset: WHERE (created_at, id) > cursor)",
        lambda conn, _: users.list_users(conn, limit=20, after=MIDDLE),
    ),
    Query("get one user by id", users.get_user),
    Query(
        "a user's posts, newest first (first page of 20)",
        lambda conn, user_id: posts.list_user_posts(conn, user_id, limit=20),
    ),
    Query(
        "list posts: a later page (keyset: WHERE (created_at, id) < cursor)",
        lambda conn, _: posts.list_posts(conn, limit=20, after=MIDDLE),
    ),
    Query(
        "latest 3 posts of the 10 most recently active authors (window function)",
        lambda conn, _: posts.latest_posts_per_author(conn, authors=10, per_user=3),
        reads_all=frozenset({"posts"}),
    ),
    Query(
        "the purge job's next batch: users deleted longest ago ({% if db == 'mysql' %}an index on deleted_at{% else %}a partial index{% endif %})",
        lambda conn, _: purge.purge_batch(conn, datetime.now(UTC), batch_size=100),
    ),
    Query(
        "post counts per user (GROUP BY)",
        lambda conn, _: users.users_with_post_counts(conn, limit=20),
        reads_all=frozenset({"users", "posts"}),
    ),
)


@contextmanager
def recording(engine: AsyncEngine) -> Iterator[list[tuple[str, Any]]]:
    """Collect every SELECT sent to the database while the block runs."""
    statements: list[tuple[str, Any]] = []

    def record(_conn: Connection, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def seed(session: AsyncSession, users_count: int, posts_per_user: int) -> uuid.UUID:
    """Bulk-insert sample users, each with a role and posts; return a user id to look up."""
    tag = uuid.uuid4().hex[:8]
    role_id, user_ids = uuid.uuid4(), [uuid.uuid4() for _ in range(users_count)]
    if not user_ids:
        return await session.scalar(select(User.id).limit(1)) or uuid.uuid4()
    await session.execute(insert(Role), [{"id": role_id, "name": f"explain-{tag}"}])
    await session.execute(
        insert(User),
        [
            {"id": user_id, "email": f"explain-{tag}-{i}@example.com", "full_name": f"User {i}"}
            for i, user_id in enumerate(user_ids)
        ],
    )
    await session.execute(
        insert(user_roles), [{"user_id": user_id, "role_id": role_id} for user_id in user_ids]
    )
    await session.execute(
        insert(Post),
        [
            {"author_id": user_id, "title": f"Post {j}", "body": "Sample body."}
            for user_id in user_ids
            for j in range(posts_per_user)
        ],
    )
    return user_ids[0]


COLUMN_LIST = re.compile(r"SELECT (?:(?!SELECT |FROM ).)+? FROM ")
IN_LIST = re.compile(r" IN \([^()]*\)")


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def report(query: Query, statement: str, parameters: Any, plan: Plan) -> int:
    """Print one statement and its plan; return how many problems it has."""
    sql = IN_LIST.sub(" IN (...)", COLUMN_LIST.sub("SELECT ... FROM ", " ".join(statement.split())))
    print(f"  {sql}\n  params: {_clip(repr(parameters), 100)}")
    for line in plan.lines:
        print(f"    | {_clip(line.rstrip(), 120)}")
    problems = 0
    for table, how in plan.full_scans.items():
        if table in query.reads_all:
            print(f"  ok: reads all of {table} ({how}), as the query needs every row")
        else:
            print(f"  !! FULL SCAN of {table} ({how}): no index serves this query")
            problems += 1
    for table, index in plan.index_scans.items():
        if table in query.reads_all:
            print(f"  ok: reads all of {table} in {index} order, as the query needs every row")
        else:
            print(f"  note: reads {table} in {index} order, no condition: all rows bar a LIMIT")
    for note in plan.notes:
        print(f"  note: {note}")
    if not plan.full_scans and not plan.index_scans:
        print("  ok: every table is reached through an index")
    return problems


async def run(users_count: int, posts_per_user: int) -> int:
    engines = create_engines(get_settings())
    engine = engines.writer
    problems = 0
    try:
        async with engine.connect() as conn, create_session_factory(conn)() as session:
            await conn.begin()
            user_id = await seed(session, users_count, posts_per_user)
            for query in QUERIES:
                await session.flush()
                # NotFoundError: the SELECT was sent all the same.
                with recording(engine) as statements, suppress(NotFoundError):
                    await query.run(conn, user_id)
                print(f"\n== {query.name}")
                for statement, parameters in statements:
                    plan = await explain(conn, statement, parameters)
                    problems += report(query, statement, parameters, plan)
            await conn.rollback()
    finally:
        await engines.dispose()
    print(f"\n{problems} full scan(s) no index serves" if problems else "\nno missing index")
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.explain_queries", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--users", type=int, default=1000, help="sample users (default 1000)")
    parser.add_argument(
        "--posts-per-user", type=int, default=5, help="sample posts per user (default 5)"
    )
    args = parser.parse_args(argv)
    return asyncio.run(run(args.users, args.posts_per_user))


if __name__ == "__main__":
    sys.exit(main())
