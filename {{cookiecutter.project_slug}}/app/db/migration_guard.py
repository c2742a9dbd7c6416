{%- set db = cookiecutter.database -%}
"""What every migration run is wrapped in (migrations/env.py): one migrator at a
time, limits of its own, and retries when a lock is not granted in time.

A schema change waits for its table's lock behind any open transaction, and while it
waits every later query on that table queues behind it: the service stalls. So the
migration connection waits at most MIGRATION_LOCK_TIMEOUT for a lock, gives up (the
queue moves again), and tries again after a pause, MIGRATION_LOCK_RETRIES times; then
it fails with one line that names the table and what to do. It never inherits the
web's statement timeout: a long backfill may run{% if db != "sqlite" %} (MIGRATION_STATEMENT_TIMEOUT
bounds it if set){% endif %}.
{%- if db == "postgresql" %}

PostgreSQL: `lock_timeout` and `statement_timeout` on the migration's session; each
revision is a transaction of its own (env.py), and a lock timeout rolls the revision
back whole, so the revision is retried. One migrator at a time: a session-level
advisory lock, taken before Alembic starts its transactions and held to the end; a
second run waits for it, then finds nothing to do. It needs a real session on the
server: never through PgBouncer in transaction mode.
Docs: https://www.postgresql.org/docs/current/runtime-config-client.html#GUC-LOCK-TIMEOUT
      https://www.postgresql.org/docs/current/explicit-locking.html#ADVISORY-LOCKS
{%- elif db == "mysql" %}

MySQL/MariaDB: `lock_wait_timeout` (metadata locks: every ALTER waits for one) and
`innodb_lock_wait_timeout` (row locks) on the migration's session, and the statement
limit. DDL commits as it goes, so the statement that timed out is retried, not the
revision; if the retries run out, the revision's earlier statements stay applied,
and the message says so. One migrator at a time: `GET_LOCK`, held to the end; a
second run waits for it, then finds nothing to do.
Docs: https://mariadb.com/kb/en/server-system-variables/#lock_wait_timeout
      https://mariadb.com/kb/en/get_lock/
{%- else %}

SQLite: the busy timeout is the lock timeout. A migration is one `BEGIN IMMEDIATE`
transaction, which holds the database's write lock from its start to its end: that
lock also keeps a second migrator out, which waits for it, then finds nothing to do.
If the lock is not granted in time the whole run is retried.
Docs: https://www.sqlite.org/c3ref/busy_timeout.html
{%- endif %}
"""

import logging
{%- if db != "sqlite" %}
import re
{%- else %}
import sqlite3
{%- endif %}
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
{%- if db == "mysql" %}
from typing import Any, Self
{%- else %}
from typing import Self
{%- endif %}

from alembic.util import CommandError
{%- if db != "sqlite" %}
from sqlalchemy import {% if db == "mysql" %}event, {% endif %}text
{%- endif %}
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

{% if db == "sqlite" -%}
from app.db.engine import BEGIN_MODE
{% endif -%}
from app.settings import Settings

log = logging.getLogger("alembic.runtime.migration")
# Pause before the n-th retry: 1, 2, 4, 8, 16, 30, 30... seconds.
FIRST_PAUSE, LONGEST_PAUSE = 1.0, 30.0
{%- if db == "sqlite" %}
# Between tries to open a database file that another migrator is creating.
CREATION_PAUSE = 0.05
{%- endif %}
{%- if db == "postgresql" %}
LOCK_NOT_AVAILABLE = "55P03"  # lock_timeout ran out
# The advisory lock's key: advisory locks are per database, so one key serves.
MIGRATION_LOCK_KEY = 0x616C656D626963  # "alembic"
{%- elif db == "mysql" %}
LOCK_WAIT_TIMEOUT = 1205  # lock_wait_timeout or innodb_lock_wait_timeout ran out
# GET_LOCK waits at most this long for another migrator (MariaDB takes no "forever").
MIGRATOR_WAIT_SECONDS = 365 * 24 * 3600
RETRY_OPTION = "migration_lock_retries"
{%- else %}
BUSY, LOCKED = 5, 6  # SQLITE_BUSY and SQLITE_LOCKED (low byte of an extended code)
{%- endif %}
{%- if db != "sqlite" %}
# The tables a statement names, for the message when its lock never came.
TABLE_NAME = re.compile(
    r"\b(?:TABLE|ON|INTO|UPDATE|FROM|JOIN|REFERENCES)\s+(?:ONLY\s+|IF\s+(?:NOT\s+)?EXISTS\s+)?"
    r"([\"`]?[A-Za-z_][\w$]*[\"`]?(?:\.[\"`]?[A-Za-z_][\w$]*[\"`]?)?)",
    re.IGNORECASE,
)
NOT_TABLES = frozenset({"delete", "update", "commit", "drop", "only", "conflict", "select"})
{%- endif %}


@dataclass(frozen=True)
class MigrationLimits:
    """MIGRATION_* settings: how long a statement waits for a lock, how often it is
    retried{% if db != "sqlite" %}, how long a statement may run (None: no limit){% endif %}."""

    lock_timeout: float
    lock_retries: int
{%- if db != "sqlite" %}
    statement_timeout: float | None
{%- endif %}

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(
            lock_timeout=settings.migration_lock_timeout,
            lock_retries=settings.migration_lock_retries,
{%- if db != "sqlite" %}
            statement_timeout=settings.migration_statement_timeout,
{%- endif %}
        )


def pause_before(retry: int) -> float:
    """Seconds to wait before retry number `retry` (1, 2, ...)."""
    return min(FIRST_PAUSE * 2.0 ** (retry - 1), LONGEST_PAUSE)


def is_lock_timeout(error: BaseException) -> bool:
    """Whether `error` (SQLAlchemy's, or the driver's it wraps) is a lock not granted in time."""
    driver_error = error.orig if isinstance(error, DBAPIError) else error
{%- if db == "postgresql" %}
    return getattr(driver_error, "sqlstate", None) == LOCK_NOT_AVAILABLE
{%- elif db == "mysql" %}
    args: tuple[Any, ...] = getattr(driver_error, "args", ())
    return bool(args) and args[0] == LOCK_WAIT_TIMEOUT
{%- else %}
    code = getattr(driver_error, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF in (BUSY, LOCKED)
{%- endif %}
{%- if db == "postgresql" %}


@contextmanager
def one_migrator(connection: Connection, limits: MigrationLimits) -> Iterator[None]:
    """Hold the migration lock and the migration's limits on `connection` for a block.

    On a connection of its own (not in a transaction yet) the lock is taken for the
    session and everything is committed before the block, so that Alembic can run
    each revision in a transaction of its own. A connection already in a caller's
    transaction keeps it: the lock and the limits then last until that transaction ends.
    """
    in_callers_transaction = connection.in_transaction()
    scope = "LOCAL" if in_callers_transaction else "SESSION"
    # No limit while waiting for another migrator, whose run may take long.
    connection.exec_driver_sql(f"SET {scope} statement_timeout = 0")
    connection.exec_driver_sql(f"SET {scope} lock_timeout = 0")
    level = "_xact" if in_callers_transaction else ""
    key = {"key": MIGRATION_LOCK_KEY}
    if not connection.scalar(text(f"SELECT pg_try_advisory{level}_lock(:key)"), key):
        log.info("waiting for another migration to finish (advisory lock %d)", MIGRATION_LOCK_KEY)
        connection.execute(text(f"SELECT pg_advisory{level}_lock(:key)"), key)
    connection.exec_driver_sql(f"SET {scope} lock_timeout = {round(limits.lock_timeout * 1000)}")
    statement_ms = round((limits.statement_timeout or 0) * 1000)
    connection.exec_driver_sql(f"SET {scope} statement_timeout = {statement_ms}")
    if in_callers_transaction:
        yield
        return
    connection.commit()
    try:
        yield
    finally:
        if connection.in_transaction():
            connection.rollback()
        connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
        connection.exec_driver_sql("RESET lock_timeout")
        connection.exec_driver_sql("RESET statement_timeout")
        connection.commit()
{%- elif db == "mysql" %}


@contextmanager
def one_migrator(connection: Connection, limits: MigrationLimits) -> Iterator[None]:
    """Hold the migration lock and the migration's limits on `connection` for a
    block, and retry a statement whose lock did not come in time (see `retry_statements`).

    What was open before is committed, so that Alembic can run each revision in a
    transaction of its own; the session's previous limits come back afterwards.
    """
    mariadb: bool = connection.dialect.is_mariadb  # type: ignore[attr-defined]
    limit = "max_statement_time" if mariadb else "max_execution_time"
    names = ("lock_wait_timeout", "innodb_lock_wait_timeout", limit)
    previous = connection.execute(
        text("SELECT " + ", ".join(f"@@SESSION.{name}" for name in names))
    ).one()
    lock_name = f"{connection.engine.url.database}.alembic"[:64]
    # No limit while waiting for another migrator, whose run may take long.
    connection.exec_driver_sql(f"SET SESSION {limit} = 0")
    if not connection.scalar(text("SELECT GET_LOCK(:name, 0)"), {"name": lock_name}):
        log.info("waiting for another migration to finish (GET_LOCK %r)", lock_name)
        got = connection.scalar(
            text("SELECT GET_LOCK(:name, :wait)"),
            {"name": lock_name, "wait": MIGRATOR_WAIT_SECONDS},
        )
        if not got:
            raise CommandError(f"could not take the migration lock {lock_name!r}")
    # Whole seconds, at least 1: what the server takes.
    lock_seconds = max(1, round(limits.lock_timeout))
    connection.exec_driver_sql(
        f"SET SESSION lock_wait_timeout = {lock_seconds}, innodb_lock_wait_timeout = {lock_seconds}"
    )
    statement = limits.statement_timeout or 0
    value = statement if mariadb else round(statement * 1000)
    connection.exec_driver_sql(f"SET SESSION {limit} = {value}")
    connection.commit()
    connection.execution_options(**{RETRY_OPTION: limits.lock_retries})
    try:
        yield
    finally:
        connection.execution_options(**{RETRY_OPTION: None})
        if connection.in_transaction():
            connection.rollback()
        connection.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": lock_name})
        connection.exec_driver_sql(
            "SET SESSION " + ", ".join(f"{n} = {v}" for n, v in zip(names, previous, strict=True))
        )
        connection.commit()


def retry_statements(connection: Connection) -> None:
    """Run again a statement that waited too long for a lock, on connections that
    `one_migrator` marks: DDL commits as it goes, so the statement, not the revision,
    is what can be tried again (InnoDB rolls back only the statement that timed out)."""
    dialect = connection.dialect
    if event.contains(dialect, "do_execute", _execute_with_retries):
        return
    event.listen(dialect, "do_execute", _execute_with_retries)
    event.listen(dialect, "do_execute_no_params", _execute_no_params_with_retries)


def _with_retries(context: Any, execute: Callable[[], None]) -> bool | None:
    retries = context.execution_options.get(RETRY_OPTION)
    if retries is None:
        return None  # not a migration's connection: run as usual
    for retry in range(retries + 1):
        try:
            execute()
        except Exception as error:
            if retry == retries or not is_lock_timeout(error):
                raise
            pause = pause_before(retry + 1)
            log.warning(
                "a lock on %s was not granted within the lock timeout: retry %d of %d in %g s",
                table_names(context.statement) or "the table",
                retry + 1,
                retries,
                pause,
            )
            time.sleep(pause)
        else:
            return True
    return True


def _execute_with_retries(
    cursor: Any, statement: str, parameters: Any, context: Any
) -> bool | None:
    return _with_retries(context, lambda: cursor.execute(statement, parameters))


def _execute_no_params_with_retries(cursor: Any, statement: str, context: Any) -> bool | None:
    return _with_retries(context, lambda: cursor.execute(statement))
{%- else %}


@contextmanager
def one_migrator(connection: Connection, limits: MigrationLimits) -> Iterator[None]:
    """The migration's busy timeout on `connection` for a block (the previous one
    comes back afterwards), and `BEGIN IMMEDIATE` for its transaction: the write
    lock, taken at the start, keeps every other migrator (and writer) waiting."""
    # On the driver's connection: through SQLAlchemy a PRAGMA would begin the transaction.
    cursor = connection.connection.cursor()
    try:
        cursor.execute("PRAGMA busy_timeout")
        (previous,) = cursor.fetchone() or (0,)
        cursor.execute(f"PRAGMA busy_timeout = {round(limits.lock_timeout * 1000)}")
        if not connection.in_transaction():
            connection.execution_options(**{BEGIN_MODE: "IMMEDIATE"})
        yield
    finally:
        cursor.execute(f"PRAGMA busy_timeout = {previous}")
        cursor.close()


def create_in_wal_mode(database: str, limits: MigrationLimits) -> None:
    """Create the database file in WAL mode, or wait while another migrator does.

    Every connection switches the file into WAL mode as it opens (app.db.engine). On a
    file that another migrator is creating, SQLite can refuse that switch at once
    ("database is locked") without waiting its busy timeout: two migrators started
    together on a new file failed 6 times in 25. So a migration first makes sure of
    the file on a plain connection, trying again for as long as it would wait for a
    lock, retries included."""
    deadline = time.monotonic() + limits.lock_timeout * (limits.lock_retries + 1)
    while True:
        connection = sqlite3.connect(database, timeout=limits.lock_timeout)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if not is_lock_timeout(error) or time.monotonic() > deadline:
                raise
        finally:
            connection.close()
        time.sleep(CREATION_PAUSE)
{%- endif %}
{%- if db != "sqlite" %}


def table_names(statement: str | None) -> str:
    """The tables a statement names, as `users, posts` ('' if it names none)."""
    found = []
    for match in TABLE_NAME.finditer(statement or ""):
        name = match.group(1).replace('"', "").replace("`", "")
        if name.lower() not in NOT_TABLES and name not in found:
            found.append(name)
    return ", ".join(found)
{%- endif %}


def run_with_retries(
    run: Callable[[], None], connection: Connection, limits: MigrationLimits, *, retry: bool
) -> None:
    """`run` the revisions{% if db != "mysql" %}; after a lock timeout, which rolled back what it was
    doing, again (the revisions already committed are not run twice), at most
    `limits.lock_retries` times if `retry`{% else %} (their statements retry on their own, see `retry_statements`){% endif %}. When it
    gives up, a CommandError of one line says which lock and what to do."""
{%- if db == "mysql" %}
    del retry  # retried statement by statement
    try:
        run()
    except DBAPIError as error:
        if not is_lock_timeout(error):
            raise
        if connection.in_transaction():
            connection.rollback()
        raise CommandError(gave_up(error, connection, limits)) from error
{%- else %}
    retries = limits.lock_retries if retry else 0
    for attempt in range(retries + 1):
        try:
            run()
        except DBAPIError as error:
            if not is_lock_timeout(error):
                raise
            if not retry:
                raise CommandError(gave_up(error, None, limits, attempts=1)) from error
            if connection.in_transaction():
                connection.rollback()
            if attempt == retries:
                raise CommandError(
                    gave_up(error, connection, limits, attempts=attempt + 1)
                ) from error
            pause = pause_before(attempt + 1)
            log.warning(
                "%s was not granted within the lock timeout: retry %d of %d in %g s",
                _what(error),
                attempt + 1,
                retries,
                pause,
            )
            time.sleep(pause)
        else:
            return
{%- endif %}
{%- if db == "postgresql" %}


def _what(error: DBAPIError) -> str:
    tables = table_names(error.statement)
    return f"the lock on {tables}" if tables else f"a lock for {_excerpt(error.statement)}"


def _excerpt(statement: str | None) -> str:
    flat = " ".join((statement or "").split())
    return repr(flat if len(flat) <= 80 else flat[:77] + "...")


def _holders(connection: Connection, tables: str) -> str:
    """Who holds a lock on those tables now: ` (held by pid 42: idle in transaction for 63 s)`."""
    rows = connection.execute(
        text(
            "SELECT DISTINCT a.pid, a.state,"
            " CAST(EXTRACT(EPOCH FROM now() - COALESCE(a.xact_start, a.query_start)) AS integer)"
            " FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.granted AND l.pid <> pg_backend_pid()"
            " AND l.relation IN (SELECT to_regclass(name) FROM unnest(CAST(:names AS text[])) name)"
            " ORDER BY 3 DESC LIMIT 3"
        ),
        {"names": tables.split(", ")},
    ).all()
    connection.rollback()
    held = ", ".join(f"pid {pid}: {state} for {seconds} s" for pid, state, seconds in rows)
    return f" (held by {held})" if held else ""


def gave_up(
    error: DBAPIError, connection: Connection | None, limits: MigrationLimits, *, attempts: int
) -> str:
    """One line: which lock, for how long, what was applied, and what to do."""
    tables = table_names(error.statement)
    holders = _holders(connection, tables) if connection is not None and tables else ""
    return (
        f"migration gave up after {attempts} attempt{'s' if attempts > 1 else ''}: "
        f"{_what(error)} was not granted within MIGRATION_LOCK_TIMEOUT ({limits.lock_timeout:g} s)"
        f"{holders}; the revisions before this one are applied and this one left nothing "
        "behind. End that transaction or wait for it, then run the migration again "
        "(MIGRATION_LOCK_TIMEOUT and MIGRATION_LOCK_RETRIES set how long it tries)."
    )
{%- elif db == "mysql" %}


def _excerpt(statement: str | None) -> str:
    flat = " ".join((statement or "").split())
    return repr(flat if len(flat) <= 80 else flat[:77] + "...")


def _open_transactions(connection: Connection) -> str:
    """The oldest other open transactions: ` (open: thread 12 for 63 s)`."""
    rows = connection.execute(
        text(
            "SELECT trx_mysql_thread_id, TIMESTAMPDIFF(SECOND, trx_started, NOW())"
            " FROM information_schema.INNODB_TRX WHERE trx_mysql_thread_id <> CONNECTION_ID()"
            " ORDER BY trx_started LIMIT 3"
        )
    ).all()
    connection.rollback()
    held = ", ".join(f"thread {thread} for {seconds} s" for thread, seconds in rows)
    return f" (open transactions: {held})" if held else ""


def gave_up(error: DBAPIError, connection: Connection, limits: MigrationLimits) -> str:
    """One line: which lock, for how long, what may be applied, and what to do."""
    tables = table_names(error.statement)
    what = f"the lock on {tables}" if tables else f"a lock for {_excerpt(error.statement)}"
    attempts = limits.lock_retries + 1
    return (
        f"migration gave up after {attempts} attempt{'s' if attempts > 1 else ''}: {what} was "
        f"not granted within MIGRATION_LOCK_TIMEOUT ({max(1, round(limits.lock_timeout))} s)"
        f"{_open_transactions(connection)}. DDL commits as it goes: this revision's statements "
        "before this one may be applied while alembic_version still names the revision "
        'before it (docs/migrations.md, "When a migration fails half-way"). End that '
        "transaction or wait for it, undo or finish what was applied, then run the migration "
        "again (MIGRATION_LOCK_TIMEOUT and MIGRATION_LOCK_RETRIES set how long it tries)."
    )
{%- else %}


def _what(error: DBAPIError) -> str:
    del error
    return "the database's write lock"


def gave_up(
    error: DBAPIError, connection: Connection | None, limits: MigrationLimits, *, attempts: int
) -> str:
    """One line: which lock, for how long, what was applied, and what to do."""
    del error, connection
    return (
        f"migration gave up after {attempts} attempt{'s' if attempts > 1 else ''}: the "
        f"database's write lock was not granted within MIGRATION_LOCK_TIMEOUT "
        f"({limits.lock_timeout:g} s); nothing was applied. Another connection holds it (a "
        "long write, a job, another migration): wait for it to end, then run the migration "
        "again (MIGRATION_LOCK_TIMEOUT and MIGRATION_LOCK_RETRIES set how long it tries)."
    )
{%- endif %}
