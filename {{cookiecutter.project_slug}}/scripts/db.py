{%- set db = cookiecutter.database -%}
"""Database chores: create the database, check the connection and the migration state.

    python -m scripts.db create   # create the database named in DATABASE_URL if missing
    python -m scripts.db check    # connect, show the server version and the schema revision

Both read DATABASE_URL the way the app does (environment, then `.env`). The
post-generation hook runs `create` before `alembic upgrade head`.
`check` exits 1 when the database cannot be reached and 2 when it is reachable but
not at the latest migration, so a deploy script can stop early.
"""

import argparse
import asyncio
import sys
from pathlib import Path

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import SQLAlchemyError

from app.db.create_database import create_database_if_missing
from app.db.engine import create_engines
from app.settings import get_settings

ALEMBIC_INI = Path(__file__).resolve().parent.parent / "alembic.ini"
{%- if db == "sqlite" %}
SERVER_VERSION = text("SELECT 'SQLite ' || sqlite_version()")
CREATED = "ready: {} (SQLite creates the file on first connection)"
{%- elif db == "postgresql" %}
SERVER_VERSION = text("SELECT 'PostgreSQL ' || current_setting('server_version')")
CREATED = "created database: {}"
{%- else %}
SERVER_VERSION = text("SELECT VERSION()")
CREATED = "created database: {}"
{%- endif %}


def _safe(url: URL) -> str:
    return url.render_as_string(hide_password=True)


def _unreachable(url: URL, exc: Exception) -> int:
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    print(f"cannot connect to {_safe(url)}: {reason}", file=sys.stderr)
    return 1


async def create() -> int:
    url = get_settings().url
    try:
        created = await create_database_if_missing(url)
    except (SQLAlchemyError, OSError) as exc:
        return _unreachable(url, exc)
    print(CREATED.format(_safe(url)) if created else f"database exists: {_safe(url)}")
    return 0


def _revisions(conn: Connection) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(revisions the database is at, head revisions of migrations/versions)."""
    current = MigrationContext.configure(conn).get_current_heads()
    heads = ScriptDirectory.from_config(Config(ALEMBIC_INI)).get_heads()
    return tuple(sorted(current)), tuple(sorted(heads))


async def check() -> int:
    settings = get_settings()
    engines = create_engines(settings)
    try:
        async with engines.writer.connect() as conn:
            await conn.execute(text("SELECT 1"))
            version = await conn.scalar(SERVER_VERSION)
            current, heads = await conn.run_sync(_revisions)
    except (SQLAlchemyError, OSError) as exc:
        return _unreachable(settings.url, exc)
    finally:
        await engines.dispose()
    print(f"connected: {_safe(settings.url)}")
    print(f"server:    {version}")
    print(f"revision:  {', '.join(current) or 'none (no migration applied)'}")
    print(f"head:      {', '.join(heads) or 'none'}")
    if current != heads:
        print("the schema is not at head: run `alembic upgrade head`", file=sys.stderr)
        return 2
    print("ok: the schema is up to date")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.db", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("create", help="create the database in DATABASE_URL if it is missing")
    commands.add_parser("check", help="connect; show the server version and schema revision")
    args = parser.parse_args(argv)
    try:
        get_settings()
    except ValidationError as exc:
        print(f"invalid settings: {exc}", file=sys.stderr)
        return 1
    return asyncio.run(create() if args.command == "create" else check())


if __name__ == "__main__":
    sys.exit(main())
