{%- set db = cookiecutter.database -%}
"""Which database errors mean what, by {{ {'sqlite': 'SQLite', 'postgresql': 'PostgreSQL', 'mysql': 'MySQL/MariaDB'}[db] }}'s own error codes.

`app.errors` turns a conflict into 409 and a transient failure into 503 with
Retry-After; anything else is a bug and a 500, never disguised as either.
{%- if db == "postgresql" %}
Docs: https://www.postgresql.org/docs/current/errcodes-appendix.html
{%- elif db == "mysql" %}
Docs: https://mariadb.com/kb/en/mariadb-error-code-reference/
{%- else %}
Docs: https://www.sqlite.org/rescode.html
{%- endif %}
"""

from sqlalchemy.exc import DBAPIError
{% if db == "postgresql" %}
UNIQUE_VIOLATION, FOREIGN_KEY_VIOLATION = "23505", "23503"
# SQLSTATE classes: connection exception, transaction rollback (deadlock,
# serialization failure), insufficient resources (too many connections), operator
# intervention (statement_timeout, shutdown), and a server that refuses this login
# or has no such database: all worth a retry once someone or something fixes them.
TRANSIENT_CLASSES = frozenset({"08", "40", "53", "57", "28", "3D"})


def _sqlstate(error: DBAPIError) -> str:
    return str(getattr(error.orig, "sqlstate", "") or "")


def is_conflict(error: DBAPIError) -> bool:
    return _sqlstate(error) in (UNIQUE_VIOLATION, FOREIGN_KEY_VIOLATION)


def is_transient(error: DBAPIError) -> bool:
    return error.connection_invalidated or _sqlstate(error)[:2] in TRANSIENT_CLASSES
{%- elif db == "mysql" %}
DUPLICATE_KEY, ROW_IS_REFERENCED, NO_REFERENCED_ROW = 1062, 1451, 1452
TRANSIENT = frozenset(
    {
        1040,  # too many connections
        1045,  # access denied
        1049,  # unknown database
        1053,  # server shutdown
        1205,  # lock wait timeout
        1213,  # deadlock
        1317,  # query interrupted
        1927,  # connection killed (MariaDB)
        1969,  # max_statement_time exceeded (MariaDB)
        3024,  # max_execution_time exceeded (MySQL)
        2002,  # cannot connect (socket)
        2003,  # cannot connect (TCP)
        2006,  # server has gone away
        2013,  # lost connection during query
    }
)


def _errno(error: DBAPIError) -> int:
    args = getattr(error.orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else 0


def is_conflict(error: DBAPIError) -> bool:
    return _errno(error) in (DUPLICATE_KEY, ROW_IS_REFERENCED, NO_REFERENCED_ROW)


def is_transient(error: DBAPIError) -> bool:
    return error.connection_invalidated or _errno(error) in TRANSIENT
{%- else %}
CONFLICTS = frozenset(
    {"SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY", "SQLITE_CONSTRAINT_FOREIGNKEY"}
)
# Locked by another writer past the busy timeout, or the file cannot be opened.
TRANSIENT_PREFIXES = ("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_CANTOPEN", "SQLITE_IOERR")


def _error_name(error: DBAPIError) -> str:
    return str(getattr(error.orig, "sqlite_errorname", "") or "")


def is_conflict(error: DBAPIError) -> bool:
    return _error_name(error) in CONFLICTS


def is_transient(error: DBAPIError) -> bool:
    return error.connection_invalidated or _error_name(error).startswith(TRANSIENT_PREFIXES)
{%- endif %}
