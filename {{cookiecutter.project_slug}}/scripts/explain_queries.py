{%- set db = cookiecutter.database -%}
"""Measure how much of each table every request-path query reads, at a real size.

    python -m scripts.explain_queries [--rows 100000]

Run it against a scratch database: it adds `--rows` sample rows to each table
(users, posts, their roles), commits them, refreshes the planner's statistics, runs
every query an endpoint sends (every filter, the deepest `offset`, the reports),
and deletes its rows at the end. Nothing is copied from the repositories: the
script calls them and records the SQL they send (a `before_cursor_execute`
listener), so what it measures is exactly what the app runs.

Each SELECT is then run again, measured:
{%- if db == "sqlite" %}
SQLite: `EXPLAIN QUERY PLAN` for the plan, and the virtual machine's steps while it
runs (a progress handler), turned into rows with the steps a full scan of `posts`
takes per row.
Docs: https://www.sqlite.org/eqp.html
{%- elif db == "postgresql" %}
PostgreSQL: `EXPLAIN (ANALYZE, FORMAT JSON)`, with `enable_seqscan` off: the rows
each node of the plan read from each table, those its filter removed included.
Docs: https://www.postgresql.org/docs/current/using-explain.html
{%- else %}
MySQL/MariaDB: `EXPLAIN` for the plan, and the server's `Handler_read_*` counters
around the statement: the rows the storage engine read for it (with index lookups
made to look cheap, `max_seeks_for_key = 1`).
Docs: https://mariadb.com/kb/en/handler_read_-status-variables/
{%- endif %}

A statement that reads WHOLE_TABLE (a tenth) of `--rows` or more (and more than
READS_AT_MOST) reads a whole table, and its cost grows with the table: the script
prints `!!` and exits 1, unless the query declares it (the export, which streams
every post, does; so does a filter with an author's, which reads within the
author's posts).
"""

import argparse
import asyncio
{%- if db == "postgresql" %}
import json
{%- endif %}
import re
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, event, insert, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.db.engine import create_engines
from app.db.keys import new_id
from app.db.pagination import Position
from app.errors import NotFoundError
from app.models import {% if db != "postgresql" %}Base, {% endif %}Post, Role, User, user_roles
from app.pages import MAX_LIMIT, MAX_OFFSET
from app.posts import repository as posts
from app.settings import get_settings
from app.users import purge
from app.users import repository as users

TABLES = ("users", "posts", "user_roles")
# A statement that reads this share of `--rows` rows, or more, reads a whole table;
# but a bounded read (the report's window of the newest posts, say) may read up to
# READS_AT_MOST rows whatever the size, which a small sample would take for one.
WHOLE_TABLE = 0.1
READS_AT_MOST = 10_000
MINIMUM_ROWS = 2 * READS_AT_MOST
# Of the sample posts, this share is one author's: the long history of a busy user,
# which a query that reads all of one user's posts would read.
PROLIFIC_SHARE = 0.2
# One sample user in this many is soft-deleted.
DELETED_EVERY = 100
START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class Sample:
    """What the sample rows are, for the queries to ask about."""

    tag: str
    role_id: uuid.UUID
    user_ids: list[uuid.UUID]
    prolific: uuid.UUID
    middle_user: Position
    middle_post: Position

    def email(self, i: int) -> str:
        return f"explain-{self.tag}-{i:07d}@example.com"


@dataclass(frozen=True)
class Query:
    name: str
    run: Callable[[AsyncConnection, Sample], Awaitable[object]]
    # Tables the query may read much of, by design, and why.
    declared: dict[str, str] = field(default_factory=dict)


EVERY_POST = {"posts": "the export streams every post"}
ONE_AUTHORS = {"posts": "a filter with the author's reads within that author's posts"}


QUERIES = (
    Query("list users: the first page", lambda c, _: users.list_users(c, limit=MAX_LIMIT)),
    Query(
        "list users: a later page (keyset)",
        lambda c, s: users.list_users(c, limit=MAX_LIMIT, after=s.middle_user),
    ),
    Query(
        f"list users: offset {MAX_OFFSET}, the deepest allowed",
        lambda c, _: users.list_users(c, limit=MAX_LIMIT, offset=MAX_OFFSET),
    ),
    Query(
        "list users: an email prefix every sample user has",
        lambda c, s: users.list_users(c, limit=MAX_LIMIT, email_prefix=f"explain-{s.tag}"),
    ),
    Query(
        "list users: an email prefix of a few users",
        lambda c, s: users.list_users(c, limit=MAX_LIMIT, email_prefix=s.email(1234)[:-13]),
    ),
    Query(
        "list users: an email prefix of nobody",
        lambda c, _: users.list_users(c, limit=MAX_LIMIT, email_prefix="nobody-at-all"),
    ),
    Query("get a user", lambda c, s: users.get_user(c, s.user_ids[1])),
    Query("get the busiest author", lambda c, s: users.get_user(c, s.prolific)),
    Query(
        "users with the most posts",
        lambda c, _: users.users_with_post_counts(c, limit=MAX_LIMIT),
    ),
    Query("list posts: the first page", lambda c, _: posts.list_posts(c, limit=MAX_LIMIT)),
    Query(
        "list posts: a later page (keyset)",
        lambda c, s: posts.list_posts(c, limit=MAX_LIMIT, after=s.middle_post),
    ),
    Query(
        f"list posts: offset {MAX_OFFSET}, the deepest allowed",
        lambda c, _: posts.list_posts(c, limit=MAX_LIMIT, offset=MAX_OFFSET),
    ),
    Query(
        "list posts: one author's",
        lambda c, s: posts.list_posts(c, limit=MAX_LIMIT, author_id=s.user_ids[2]),
    ),
    Query(
        f"list posts: the busiest author's, offset {MAX_OFFSET}",
        lambda c, s: posts.list_posts(c, limit=MAX_LIMIT, offset=MAX_OFFSET, author_id=s.prolific),
    ),
    Query(
        "list posts: a title prefix every post has",
        lambda c, _: posts.list_posts(c, limit=MAX_LIMIT, title_prefix="POST"),
    ),
    Query(
        "list posts: a title prefix of a few posts",
        lambda c, _: posts.list_posts(c, limit=MAX_LIMIT, title_prefix="post 4242"),
    ),
    Query(
        "list posts: a title prefix of none",
        lambda c, _: posts.list_posts(c, limit=MAX_LIMIT, title_prefix="nothing like it"),
    ),
    Query(
        "list posts: at least 0 views (every post)",
        lambda c, _: posts.list_posts(c, limit=MAX_LIMIT, min_views=0),
    ),
    Query(
        "list posts: at least 998 views (a few)",
        lambda c, _: posts.list_posts(c, limit=MAX_LIMIT, min_views=998),
    ),
    Query(
        "list posts: the busiest author's, by title prefix and views",
        lambda c, s: posts.list_posts(
            c, limit=MAX_LIMIT, author_id=s.prolific, title_prefix="post 1", min_views=500
        ),
        declared=ONE_AUTHORS,
    ),
    Query(
        "a user's posts: the busiest author's first page",
        lambda c, s: posts.list_user_posts(c, s.prolific, limit=MAX_LIMIT),
    ),
    Query(
        "a user's posts: no such user",
        lambda c, _: posts.list_user_posts(c, uuid.uuid4(), limit=MAX_LIMIT),
    ),
    Query(
        "the latest posts report, at its largest (50 authors x 20 posts)",
        lambda c, _: posts.latest_posts_per_author(c, authors=50, per_user=20),
    ),
    Query("get a post", lambda c, s: posts.get_post(c, uuid.uuid4())),
    Query(
        "the purge job's next batch: users deleted longest ago",
        lambda c, _: purge.purge_batch(c, datetime.now(UTC), batch_size=500),
    ),
    Query(
        "the export: every post, streamed",
        lambda c, _: _drain(posts.stream_posts(c)),
        declared=EVERY_POST,
    ),
)


async def _drain(batches: Any) -> None:
    async for _ in batches:
        pass


# ---------------------------------------------------------------------------
# The sample rows


def _spread(i: int) -> timedelta:
    return timedelta(milliseconds=i)


async def seed(engine: AsyncEngine, rows: int) -> Sample:
    """`rows` users, posts and role links, committed; the statistics refreshed."""
    tag = uuid.uuid4().hex[:8]
    role_id, user_ids = new_id(), [new_id() for _ in range(rows)]
    prolific_posts = int(rows * PROLIFIC_SHARE)
    # The busiest author (user 0) has PROLIFIC_SHARE of the posts; the rest are
    # spread over everyone, newest last.
    authors = [0 if i < prolific_posts else (i * 7919) % rows for i in range(rows)]
    post_ids = [new_id() for _ in range(rows)]
    counts = [0] * rows
    for author in authors:
        counts[author] += 1
    sample = Sample(
        tag=tag,
        role_id=role_id,
        user_ids=user_ids,
        prolific=user_ids[0],
        middle_user=Position(START + _spread(rows // 2), user_ids[rows // 2]),
        middle_post=Position(START + _spread(rows // 2), post_ids[rows // 2]),
    )
    user_rows = [
        {
            "id": user_ids[i],
            "email": sample.email(i),
            "full_name": f"User {i}",
            "version": 1,
            "post_count": counts[i],
            "created_at": START + _spread(i),
            "updated_at": START + _spread(i),
            "is_deleted": i % DELETED_EVERY == DELETED_EVERY - 1,
            "deleted_at": START + _spread(i) if i % DELETED_EVERY == DELETED_EVERY - 1 else None,
        }
        for i in range(rows)
    ]
    post_rows = [
        {
            "id": post_ids[i],
            "author_id": user_ids[authors[i]],
            "title": f"Post {i}",
            "body": "Sample body.",
            "view_count": i % 1000,
            "created_at": START + _spread(i),
            "updated_at": START + _spread(i),
            "is_deleted": False,
        }
        for i in range(rows)
    ]
    role_rows = [{"user_id": user_id, "role_id": role_id} for user_id in user_ids]
    tables: dict[str, list[dict[str, Any]]] = {
        "users": user_rows,
        "posts": post_rows,
        "user_roles": role_rows,
    }
    async with engine.begin() as conn:
        await conn.execute(insert(Role), [{"id": role_id, "name": f"explain-{tag}"}])
        for table, values in tables.items():
            await _bulk_insert(conn, table, values)
    await _refresh_statistics(engine)
    return sample


async def _bulk_insert(conn: AsyncConnection, table: str, values: list[dict[str, Any]]) -> None:
{%- if db == "postgresql" %}
    """COPY: the fastest way in, by far."""
    columns = list(values[0])
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    await driver.copy_records_to_table(
        table, records=[tuple(row[c] for c in columns) for row in values], columns=columns
    )
{%- else %}
    """One executemany: the driver sends the rows in multi-row statements."""
    await conn.execute(insert(Base.metadata.tables[table]), values)
{%- endif %}


async def _refresh_statistics(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
{%- if db == "postgresql" %}
        await conn.execute(text(f"ANALYZE {', '.join(TABLES)}"))
{%- elif db == "sqlite" %}
        await conn.execute(text("ANALYZE"))
{%- else %}
        for table in TABLES:
            await conn.execute(text(f"ANALYZE TABLE {table}"))
{%- endif %}
        await conn.commit()


async def remove(engine: AsyncEngine, sample: Sample) -> None:
    """Delete the sample rows, in batches."""
    batch = 10_000
    async with engine.begin() as conn:
        await conn.execute(delete(user_roles).where(user_roles.c.role_id == sample.role_id))
        for start in range(0, len(sample.user_ids), batch):
            ids = sample.user_ids[start : start + batch]
            await conn.execute(delete(Post).where(Post.author_id.in_(ids)))
            await conn.execute(delete(User).where(User.id.in_(ids)))
        await conn.execute(delete(Role).where(Role.id == sample.role_id))


# ---------------------------------------------------------------------------
# Measuring


@dataclass
class Measured:
    plan: list[str] = field(default_factory=list)
{%- if db == "postgresql" %}
    rows_read: dict[str, int] = field(default_factory=dict)  # table -> rows
{%- else %}
    rows_read: int = 0
{%- endif %}


@contextmanager
def recording(engine: AsyncEngine) -> Iterator[list[tuple[str, Any]]]:
    """Collect every SELECT sent to the database while the block runs."""
    statements: list[tuple[str, Any]] = []

    def record(_conn: Connection, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            statements.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
{%- if db == "postgresql" %}


def _nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", ()):
        yield from _nodes(child)


async def measure(conn: AsyncConnection, statement: str, parameters: Any) -> Measured:
    # A sequential scan can be the cheaper plan for a small table: off, so that one
    # that remains means that no index can serve the query.
    await conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
    result = await conn.exec_driver_sql("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, parameters)
    document = result.scalar_one()
    root = (json.loads(document) if isinstance(document, str) else document)[0]["Plan"]
    measured = Measured()
    for node in _nodes(root):
        table = node.get("Relation Name")
        loops = node.get("Actual Loops", 1)
        read = loops * (
            node.get("Actual Rows", 0)
            + node.get("Rows Removed by Filter", 0)
            + node.get("Rows Removed by Index Recheck", 0)
        )
        where = f" on {table}" if table else ""
        index = f" using {node['Index Name']}" if "Index Name" in node else ""
        measured.plan.append(f"{node['Node Type']}{where}{index}: {read} rows")
        if table in TABLES:
            measured.rows_read[table] = measured.rows_read.get(table, 0) + int(read)
    return measured
{%- elif db == "sqlite" %}


class Steps:
    """The virtual machine's steps, counted by a progress handler (every STEP)."""

    STEP = 100

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> int:
        self.count += self.STEP
        return 0  # carry on


async def _steps_of(conn: AsyncConnection, statement: str, parameters: Any) -> int:
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    steps = Steps()
    await driver.set_progress_handler(steps, Steps.STEP)
    try:
        (await conn.exec_driver_sql(statement, parameters)).all()
    finally:
        await driver.set_progress_handler(None, Steps.STEP)
    return steps.count


async def steps_per_row(conn: AsyncConnection, rows: int) -> float:
    """What reading one row costs, as the pages read them: every post, in the order
    of an index, each looked up in the table."""
    total = await conn.scalar(text("SELECT count(*) FROM posts"))
    ordered = "SELECT title, view_count FROM posts WHERE is_deleted = 0 ORDER BY created_at, id"
    steps = await _steps_of(conn, ordered, ())
    return steps / max(int(total or rows), 1)


async def measure(
    conn: AsyncConnection, statement: str, parameters: Any, per_row: float
) -> Measured:
    plan = await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
    measured = Measured(plan=[row.detail for row in plan])
    measured.rows_read = round(await _steps_of(conn, statement, parameters) / per_row)
    return measured
{%- else %}


HANDLER_READS = text("SHOW SESSION STATUS LIKE 'Handler_read%'")


async def _handler_reads(conn: AsyncConnection) -> int:
    return sum(int(value) for _, value in await conn.execute(HANDLER_READS))


async def measure(conn: AsyncConnection, statement: str, parameters: Any) -> Measured:
    # A table scan can be the cheaper plan for a small table: index lookups made to
    # look cheap, so that one that remains means that no index can serve the query.
    await conn.exec_driver_sql("SET SESSION max_seeks_for_key = 1")
    plan = await conn.exec_driver_sql("EXPLAIN " + statement, parameters)
    measured = Measured(
        plan=[
            f"{row.table}: type={row.type} key={row.key} rows={row.rows} {row.Extra or ''}"
            for row in plan
        ]
    )
    baseline = await _handler_reads(conn)
    overhead = await _handler_reads(conn) - baseline  # what asking costs, if anything
    before = await _handler_reads(conn)
    (await conn.exec_driver_sql(statement, parameters)).all()
    measured.rows_read = await _handler_reads(conn) - before - overhead
    return measured
{%- endif %}


COLUMN_LIST = re.compile(r"SELECT (?:(?!SELECT |FROM ).)+? FROM ")
IN_LIST = re.compile(r" IN \([^()]*\)")


def _collapsed(lines: list[str]) -> list[tuple[str, int]]:
    """Each line once, with how often it came (a UNION's many alike branches)."""
    counts: dict[str, int] = {}
    for line in lines:
        counts[line] = counts.get(line, 0) + 1
    return list(counts.items())


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def report(query: Query, statement: str, measured: Measured, limit: int) -> int:
    """Print one statement, its plan and what it read; return 1 if it reads a whole
    table it did not declare."""
    sql = IN_LIST.sub(" IN (...)", COLUMN_LIST.sub("SELECT ... FROM ", " ".join(statement.split())))
    print(f"  {_clip(sql, 200)}")
    for line, times in _collapsed(measured.plan):
        repeated = f" (x{times})" if times > 1 else ""
        print(f"    | {_clip(line.rstrip(), 120)}{repeated}")
{%- if db == "postgresql" %}
    problems = 0
    for table, read in measured.rows_read.items():
        if read < limit:
            print(f"  ok: reads {read} rows of {table}")
        elif table in query.declared:
            print(f"  ok: reads {read} rows of {table}, as declared: {query.declared[table]}")
        else:
            print(f"  !! reads {read} rows of {table}: a whole table (limit {limit})")
            problems += 1
    return problems
{%- else %}
    read = measured.rows_read
    if read < limit:
        print(f"  ok: reads about {read} rows")
        return 0
    if query.declared:
        print(f"  ok: reads about {read} rows, as declared: {'; '.join(query.declared.values())}")
        return 0
    print(f"  !! reads about {read} rows: a whole table (limit {limit})")
    return 1
{%- endif %}


async def run(rows: int) -> int:
    engines = create_engines(get_settings(), for_job=True)
    engine = engines.writer
    limit = max(int(rows * WHOLE_TABLE), READS_AT_MOST)
    problems = 0
    try:
        started = time.monotonic()
        sample = await seed(engine, rows)
        seeded = time.monotonic() - started
        print(f"{rows} sample rows per table, with statistics, in {seeded:.1f} s")
        try:
            async with engine.connect() as conn:
{%- if db == "sqlite" %}
                per_row = await steps_per_row(conn, rows)
                await conn.rollback()
{%- endif %}
                for query in QUERIES:
                    await conn.begin()  # rolled back: the purge's DELETEs change nothing
                    # NotFoundError: the SELECT was sent all the same.
                    with recording(engine) as statements, suppress(NotFoundError):
                        await query.run(conn, sample)
                    print(f"\n== {query.name}")
                    for statement, parameters in statements:
                        measured = await measure(conn, statement, parameters{% if db == "sqlite" %}, per_row{% endif %})
                        problems += report(query, statement, measured, limit)
                    await conn.rollback()
        finally:
            started = time.monotonic()
            await remove(engine, sample)
            print(f"\nsample rows removed in {time.monotonic() - started:.1f} s")
    finally:
        await engines.dispose()
    if problems:
        print(f"\n{problems} statement(s) read a whole table at {rows} rows per table")
        return 1
    print(f"\nno request-path query reads a whole table at {rows} rows per table")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.explain_queries", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "--rows", type=int, default=100_000, help="sample rows per table (default 100000)"
    )
    args = parser.parse_args(argv)
    if args.rows < MINIMUM_ROWS:
        parser.error(f"--rows must be at least {MINIMUM_ROWS}: small tables tell nothing")
    return asyncio.run(run(args.rows))


if __name__ == "__main__":
    sys.exit(main())
