{%- set db = cookiecutter.database -%}
"""Which database errors mean what, by {{ {'sqlite': 'SQLite', 'postgresql': 'PostgreSQL', 'mysql': 'MySQL/MariaDB'}[db] }}'s own error codes.

`app.errors` turns a conflict into 409 and a transient failure into 503 with
{%- if db == "sqlite" %}
Retry-After; a configuration error (a database file that cannot be opened) and
anything else are a 500, never disguised as a retryable 503.
{%- else %}
Retry-After; a configuration error (a login the server refuses, a database that
does not exist) and anything else are a 500, never disguised as a retryable 503.
{%- endif %}
{%- if db == "postgresql" %}
Docs: https://www.postgresql.org/docs/current/errcodes-appendix.html
{%- elif db == "mysql" %}
Docs: https://mariadb.com/kb/en/mariadb-error-code-reference/
      https://dev.mysql.com/doc/mysql-errors/8.0/en/server-error-reference.html
{%- else %}
Docs: https://www.sqlite.org/rescode.html
{%- endif %}
"""

from sqlalchemy.exc import DBAPIError
{% if db == "postgresql" %}
UNIQUE_VIOLATION, FOREIGN_KEY_VIOLATION = "23505", "23503"
# SQLSTATE classes worth a retry: connection exception (08, also raised for a
# server that cannot be reached), transaction rollback (40: deadlock, serialization
# failure, a replica's recovery conflict), insufficient resources (53: too many
# connections) and operator intervention (57: statement_timeout, shutdown).
TRANSIENT_CLASSES = frozenset({"08", "40", "53", "57"})
# Invalid authorization (28) and an unknown database (3D000): fix the settings.
CONFIGURATION_CLASSES = frozenset({"28", "3D"})


def _sqlstate(error: DBAPIError) -> str:
    return str(getattr(error.orig, "sqlstate", "") or "")


def is_conflict(error: DBAPIError) -> bool:
    return _sqlstate(error) in (UNIQUE_VIOLATION, FOREIGN_KEY_VIOLATION)


def is_configuration_error(error: DBAPIError) -> bool:
    return _sqlstate(error)[:2] in CONFIGURATION_CLASSES


def is_transient(error: DBAPIError) -> bool:
    return error.connection_invalidated or _sqlstate(error)[:2] in TRANSIENT_CLASSES
{%- elif db == "mysql" %}
DUPLICATE_KEY, ROW_IS_REFERENCED, NO_REFERENCED_ROW = 1062, 1451, 1452
TRANSIENT = frozenset(
    {
        1040,  # too many connections
        1053,  # server shutdown
        1205,  # lock wait timeout
        1213,  # deadlock
        1317,  # query interrupted
        1927,  # connection killed (MariaDB)
        1969,  # max_statement_time exceeded (MariaDB)
        3024,  # max_execution_time exceeded (MySQL)
        4031,  # disconnected for inactivity (MySQL)
        2002,  # cannot connect (socket)
        2003,  # cannot connect (TCP)
        2006,  # server has gone away
        2013,  # lost connection during query
    }
)
CONFIGURATION = frozenset(
    {
        1044,  # access denied to the database
        1045,  # access denied for the user
        1049,  # unknown database
        1698,  # access denied (authentication plugin)
    }
)


def _errno(error: DBAPIError) -> int:
    args = getattr(error.orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else 0


def is_conflict(error: DBAPIError) -> bool:
    return _errno(error) in (DUPLICATE_KEY, ROW_IS_REFERENCED, NO_REFERENCED_ROW)


def is_configuration_error(error: DBAPIError) -> bool:
    return _errno(error) in CONFIGURATION


def is_transient(error: DBAPIError) -> bool:
    return error.connection_invalidated or _errno(error) in TRANSIENT
{%- else %}
CONFLICTS = frozenset(
    {"SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY", "SQLITE_CONSTRAINT_FOREIGNKEY"}
)
# Locked by another writer past the busy timeout: the lock will be free again.
TRANSIENT_PREFIXES = ("SQLITE_BUSY", "SQLITE_LOCKED")
# The file cannot be opened or written, or is not a database: fix DATABASE_URL or
# the file's permissions.
CONFIGURATION_PREFIXES = ("SQLITE_CANTOPEN", "SQLITE_READONLY", "SQLITE_NOTADB", "SQLITE_PERM")


def _error_name(error: DBAPIError) -> str:
    return str(getattr(error.orig, "sqlite_errorname", "") or "")


def is_conflict(error: DBAPIError) -> bool:
    return _error_name(error) in CONFLICTS


def is_configuration_error(error: DBAPIError) -> bool:
    return _error_name(error).startswith(CONFIGURATION_PREFIXES)


def is_transient(error: DBAPIError) -> bool:
    return error.connection_invalidated or _error_name(error).startswith(TRANSIENT_PREFIXES)
{%- endif %}
