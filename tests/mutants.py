"""The curated mutants of a baked project's database layer (`app/db/`).

Each one is a bug someone could plausibly write (or a refactoring could), stated as
an exact edit of the rendered file and the harm a user would suffer from it. The
baked suite must notice each: `python -m tests.mutation` applies them one at a time
and runs it (docs/testing.md#mutation-check).

A catalogue rather than a generator such as mutmut: mutmut's operators (a string
changed, `<` for `<=`) flood a layer that is mostly configuration with equivalent
mutants, and every mutant here costs a run of a suite against a real database.
"""

from dataclasses import dataclass

SQLITE, POSTGRESQL, MYSQL = "sqlite", "postgresql", "mysql"
EVERY_DATABASE = frozenset({SQLITE, POSTGRESQL, MYSQL})


@dataclass(frozen=True)
class Mutant:
    id: str
    path: str  # in the baked project
    old: str  # occurs exactly once in the rendered file
    new: str
    harm: str
    databases: frozenset[str] = EVERY_DATABASE


def _on(*databases: str) -> frozenset[str]:
    return frozenset(databases)


MUTANTS: tuple[Mutant, ...] = (
    # The session dependency ------------------------------------------------------
    Mutant(
        "session-no-transaction",
        "app/db/session.py",
        "        await session.commit()\n",
        "",
        "writes are never committed, yet answered 2xx",
    ),
    Mutant(
        "session-commit-after-response",
        "app/db/session.py",
        'WriteSession = Annotated[AsyncSession, Depends(_write_session, scope="function")]',
        "WriteSession = Annotated[AsyncSession, Depends(_write_session)]",
        "the commit runs after the response is sent: a failed commit answers 2xx",
    ),
    Mutant(
        "session-expire-on-commit",
        "app/db/session.py",
        "expire_on_commit=False, autoflush",
        "expire_on_commit=True, autoflush",
        "attributes read after the commit need lazy I/O: MissingGreenlet, a 500",
    ),
    Mutant(
        "session-no-soft-delete-hook",
        "app/db/session.py",
        'event.listen(AppSession, "do_orm_execute", hide_soft_deleted)',
        "",
        "soft-deleted rows come back from every ORM query",
    ),
    Mutant(
        "write-connection-not-committed",
        "app/db/session.py",
        "            await connection.commit()\n",
        "",
        "a write on a WriteConnection (a new user, an import) is never committed",
    ),
    Mutant(
        "cancelled-connection-returned",
        "app/db/session.py",
        "discard_unless_done or isinstance(exc, asyncio.CancelledError)",
        "discard_unless_done",
        "a request cut by its deadline returns a connection whose statement may still run",
    ),
    Mutant(
        "deadline-cuts-a-sent-commit",
        "app/db/session.py",
        '        event.listen(engines.writer.sync_engine, "commit", before_commit)\n',
        "",
        "a request whose COMMIT was sent can still be answered 503",
    ),
    Mutant(
        "streams-on-the-request-pool",
        "app/db/session.py",
        "return self._reading(self.engines.streams, discard_unless_done=True)",
        "return self._reading(self.engines.reader, discard_unless_done=True)",
        "clients that stop reading an export hold the connections requests need",
        _on(SQLITE),
    ),
    Mutant(
        "streams-on-the-request-pool",
        "app/db/session.py",
        "            self.engines.primary.streams,\n",
        "            self.engines.primary.reader,\n",
        "clients that stop reading an export hold the connections requests need",
        _on(POSTGRESQL, MYSQL),
    ),
    Mutant(
        "replica-ignored",
        "app/db/session.py",
        "self._reading(self.engines.primary.reader, replica.reader if replica else None)",
        "self._reading(self.engines.primary.reader, None)",
        "DATABASE_REPLICA_URL is accepted and never used",
        _on(POSTGRESQL, MYSQL),
    ),
    Mutant(
        "replica-never-rechecked",
        "app/db/replica.py",
        "            self._recheck = None\n            return\n",
        "            return\n",
        "after one outage of the replica, reads stay on the primary for good",
        _on(POSTGRESQL, MYSQL),
    ),
    # The soft-delete filter ------------------------------------------------------
    Mutant(
        "soft-delete-inverted",
        "app/db/soft_delete.py",
        "lambda cls: cls.is_deleted.is_(False)",
        "lambda cls: cls.is_deleted.is_(True)",
        "queries return only the deleted rows",
    ),
    Mutant(
        "soft-delete-no-opt-out",
        "app/db/soft_delete.py",
        '        and not state.execution_options.get("include_deleted", False)\n',
        "",
        "include_deleted=True (audits, the purge job) can no longer see deleted rows",
    ),
    Mutant(
        "soft-delete-not-on-aliases",
        "app/db/soft_delete.py",
        "include_aliases=True",
        "include_aliases=False",
        "a query through an alias (a self-join, a subquery) sees deleted rows",
    ),
    # Error mapping ---------------------------------------------------------------
    Mutant(
        "conflict-is-not-409",
        "app/db/error_codes.py",
        "def is_conflict(error: DBAPIError) -> bool:\n    return ",
        "def is_conflict(error: DBAPIError) -> bool:\n    return False and ",
        "a duplicate email or a dangling reference answers 500 instead of 409",
    ),
    Mutant(
        "foreign-key-is-not-409",
        "app/db/error_codes.py",
        "(UNIQUE_VIOLATION, FOREIGN_KEY_VIOLATION)",
        "(UNIQUE_VIOLATION,)",
        "a write that references a missing row answers 500 instead of 409",
        _on(POSTGRESQL),
    ),
    Mutant(
        "foreign-key-is-not-409",
        "app/db/error_codes.py",
        '"SQLITE_CONSTRAINT_PRIMARYKEY", "SQLITE_CONSTRAINT_FOREIGNKEY"',
        '"SQLITE_CONSTRAINT_PRIMARYKEY"',
        "a write that references a missing row answers 500 instead of 409",
        _on(SQLITE),
    ),
    Mutant(
        "foreign-key-is-not-409",
        "app/db/error_codes.py",
        "(DUPLICATE_KEY, ROW_IS_REFERENCED, NO_REFERENCED_ROW)",
        "(DUPLICATE_KEY, ROW_IS_REFERENCED)",
        "a write that references a missing row answers 500 instead of 409",
        _on(MYSQL),
    ),
    Mutant(
        "outage-is-not-503",
        "app/db/error_codes.py",
        "return error.connection_invalidated or ",
        "return ",
        "a lost or refused connection answers 500, not 503 with Retry-After",
    ),
    Mutant(
        "timeout-is-not-503",
        "app/db/error_codes.py",
        'TRANSIENT_CLASSES = frozenset({"08", "40", "53", "57"})',
        'TRANSIENT_CLASSES = frozenset({"08", "40", "53"})',
        "a statement timeout answers 500, not a retryable 503",
        _on(POSTGRESQL),
    ),
    Mutant(
        "timeout-is-not-503",
        "app/db/error_codes.py",
        "        1969,  # max_statement_time exceeded (MariaDB)\n",
        "",
        "a statement timeout answers 500, not a retryable 503",
        _on(MYSQL),
    ),
    Mutant(
        "busy-is-not-503",
        "app/db/error_codes.py",
        'TRANSIENT_PREFIXES = ("SQLITE_BUSY", "SQLITE_LOCKED")',
        'TRANSIENT_PREFIXES = ("SQLITE_LOCKED",)',
        "a write that waited out the busy timeout answers 500, not a retryable 503",
        _on(SQLITE),
    ),
    Mutant(
        "bad-login-is-503",
        "app/db/error_codes.py",
        'CONFIGURATION_CLASSES = frozenset({"28", "3D"})',
        'CONFIGURATION_CLASSES = frozenset({"3D"})',
        "a refused login is not reported as the configuration error it is",
        _on(POSTGRESQL),
    ),
    Mutant(
        "bad-login-is-503",
        "app/db/error_codes.py",
        "        1045,  # access denied for the user\n",
        "",
        "a refused login is not reported as the configuration error it is",
        _on(MYSQL),
    ),
    Mutant(
        "unopenable-file-is-500-unexplained",
        "app/db/error_codes.py",
        'CONFIGURATION_PREFIXES = ("SQLITE_CANTOPEN", ',
        "CONFIGURATION_PREFIXES = (",
        "a database file that cannot be opened is not reported as a configuration error",
        _on(SQLITE),
    ),
    # Engine setup ----------------------------------------------------------------
    Mutant(
        "reader-may-write",
        "app/db/engine.py",
        "reader = refuse_writes(",
        "reader = (",
        "a read connection accepts writes",
        _on(SQLITE),
    ),
    Mutant(
        "reader-may-write",
        "app/db/engine.py",
        "reader=refuse_writes(reader.execution_options()),",
        "reader=reader.execution_options(),",
        "a read connection (autocommit, or a replica) accepts writes",
        _on(POSTGRESQL),
    ),
    Mutant(
        "reader-may-write",
        "app/db/engine.py",
        "reader=refuse_writes(base.execution_options()),",
        "reader=base.execution_options(),",
        "a read connection (on a replica, maybe) accepts writes",
        _on(MYSQL),
    ),
    Mutant(
        "probe-on-the-request-pool",
        "app/probes.py",
        "engines.probe",
        "engines.reader",
        "a busy request pool makes the instance unready, and its load moves on",
        _on(SQLITE),
    ),
    Mutant(
        "probe-on-the-request-pool",
        "app/probes.py",
        'probes = {"primary": engines.primary.probe}',
        'probes = {"primary": engines.primary.reader}',
        "a busy request pool makes the instance unready, and its load moves on",
        _on(POSTGRESQL, MYSQL),
    ),
    Mutant(
        "no-statement-timeout",
        "app/db/engine.py",
        '                "statement_timeout": str(pool.statement_timeout_ms),\n',
        "",
        "a runaway query holds its connection forever",
        _on(POSTGRESQL),
    ),
    Mutant(
        "no-autocommit-reads",
        "app/db/engine.py",
        'url, isolation_level="AUTOCOMMIT", connect_args=connect_args, **pooling',
        "url, connect_args=connect_args, **pooling",
        "every read pays a BEGIN and a ROLLBACK",
        _on(POSTGRESQL),
    ),
    Mutant(
        "writer-not-read-committed",
        "app/db/engine.py",
        'else base.execution_options(isolation_level="READ COMMITTED")',
        "else base",
        "write sessions run in autocommit: a unit of work is no longer atomic",
        _on(POSTGRESQL),
    ),
    Mutant(
        "connect-failure-is-a-bug",
        "app/db/engine.py",
        "    _report_connect_failures_as_driver_errors(engine)\n",
        "",
        "a refused connection is a builtin OSError: a 500 with a traceback, not a 503",
        _on(POSTGRESQL),
    ),
    Mutant(
        "pgbouncer-statement-cache",
        "app/db/engine.py",
        '        "prepared_statement_cache_size": 0,\n',
        "",
        "behind PgBouncer, cached prepared statements meet the wrong server connection",
        _on(POSTGRESQL),
    ),
    Mutant(
        "connect-hangs-on-a-silent-server",
        "app/db/engine.py",
        "return await asyncio.wait_for(aiomysql.connect(*args, **kwargs), timeout)",
        "return await aiomysql.connect(*args, **kwargs)",
        "a server that accepts TCP and says nothing hangs every request",
        _on(MYSQL),
    ),
    Mutant(
        "no-statement-time-limit",
        "app/db/engine.py",
        "    _limit_statement_time(engine, pool.statement_timeout_ms)\n",
        "",
        "a runaway query holds its connection forever",
        _on(MYSQL),
    ),
    Mutant(
        "session-not-utc",
        "app/db/engine.py",
        "SET time_zone = '+00:00', ",
        "SET ",
        "DATETIME columns hold the server's local time, read back as UTC",
        _on(MYSQL),
    ),
    Mutant(
        "lenient-sql-mode",
        "app/db/engine.py",
        "sql_mode = 'STRICT_ALL_TABLES,",
        "sql_mode = '",
        "too-long values are silently truncated instead of refused",
        _on(MYSQL),
    ),
    Mutant(
        "writes-begin-deferred",
        "app/db/engine.py",
        'writer = engine.execution_options(**{BEGIN_MODE: "IMMEDIATE"})',
        'writer = engine.execution_options(**{BEGIN_MODE: "DEFERRED"})',
        'a transaction that reads then writes fails half-way with "database is locked"',
        _on(SQLITE),
    ),
    Mutant(
        "no-foreign-keys",
        "app/db/engine.py",
        'cursor.execute(f"PRAGMA foreign_keys={foreign_keys}")',
        "pass",
        "SQLite stops enforcing foreign keys: orphan rows",
        _on(SQLITE),
    ),
    Mutant(
        "no-wal",
        "app/db/engine.py",
        'cursor.execute("PRAGMA journal_mode=WAL")',
        "pass",
        "readers wait for the writer (rollback journal): one slow write stalls reads",
        _on(SQLITE),
    ),
    Mutant(
        "driver-owns-begin",
        "app/db/engine.py",
        "dbapi_connection.isolation_level = None",
        "pass",
        "the driver's implicit BEGIN could take transactions back from SQLAlchemy",
        _on(SQLITE),
    ),
    Mutant(
        "no-busy-timeout",
        "app/db/engine.py",
        'connect_args = {"timeout": pool.busy_timeout}',
        'connect_args = {"timeout": 0}',
        "a second writer fails at once instead of waiting for the lock",
        _on(SQLITE),
    ),
    # Types -----------------------------------------------------------------------
    Mutant(
        "naive-datetimes-accepted",
        "app/db/types.py",
        'raise ValueError("naive datetime given; use an aware one, e.g. datetime.now(UTC)")',
        "value = value.replace(tzinfo=UTC)",
        "a local time without a zone is stored as if it were UTC",
    ),
    Mutant(
        "stored-not-in-utc",
        "app/db/types.py",
        "return value.astimezone(UTC).replace(tzinfo=None)",
        "return value.replace(tzinfo=None)",
        "an aware non-UTC time is stored with its local clock reading",
        _on(SQLITE, MYSQL),
    ),
    Mutant(
        "read-back-naive",
        "app/db/types.py",
        "return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]",
        "return value  # type: ignore[no-any-return]",
        "timestamps come back without a zone",
        _on(SQLITE, MYSQL),
    ),
    Mutant(
        "read-back-in-session-zone",
        "app/db/types.py",
        "return value.astimezone(UTC)  # type: ignore[no-any-return]",
        "return value  # type: ignore[no-any-return]",
        "timestamps come back in the connection's time zone, not UTC",
        _on(POSTGRESQL),
    ),
    Mutant(
        "uuid-bytes-swapped",
        "app/db/types.py",
        "return None if value is None else value.bytes",
        "return None if value is None else value.bytes_le",
        "keys are stored in another byte order: raw SQL and other tools see other ids",
        _on(MYSQL),
    ),
)


def mutants_for(database: str) -> list[Mutant]:
    return [mutant for mutant in MUTANTS if database in mutant.databases]
