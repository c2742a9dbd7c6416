{%- set db = cookiecutter.database -%}
"""Database chores: create the database, check the connection and the migration state.

    python -m scripts.db create   # create the database named in DATABASE_URL if missing
    python -m scripts.db check    # connect, show the {{ 'SQLite' if db == 'sqlite' else 'server' }} version and the schema revision
    python -m scripts.db wait --timeout 300   # until the schema is at the latest migration

All read DATABASE_URL the way the app does (environment, then `.env`). The
post-generation hook runs `create` before `alembic upgrade head`.
`check` exits 1 when the database cannot be reached and 2 when it is reachable but
behind this code's latest migration, so a deploy script can stop early. `wait` asks
the same question again every --interval seconds until the answer is yes (exit 0) or
--timeout seconds have passed (then 1 or 2, as `check`): a server started beside
a separate migration step runs it first, and so never serves a schema older than
its code. A schema at a revision this code does not know is taken as newer (a later
release migrated it: an expand/contract rollout, or a rollback of the code): both
say so in a WARNING and pass, so older pods that restart then never wait forever.
"""

import argparse
import asyncio
import sys
from pathlib import Path

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import text
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import SQLAlchemyError

from app.db.create_database import create_database_if_missing
from app.db.engine import Engines, create_engines
from app.settings import get_settings

ALEMBIC_INI = Path(__file__).resolve().parent.parent / "alembic.ini"
# `wait`: the last attempt may run this long past --timeout, no longer.
MIN_ATTEMPT_SECONDS = 1.0
{%- if db == "sqlite" %}
VERSION_QUERY = text("SELECT 'SQLite ' || sqlite_version()")
CREATED = "ready: {} (SQLite creates the file on first connection)"
{%- elif db == "postgresql" %}
VERSION_QUERY = text("SELECT 'PostgreSQL ' || current_setting('server_version')")
CREATED = "created database: {}"
{%- else %}
VERSION_QUERY = text("SELECT VERSION()")
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


def _unknown(revisions: tuple[str, ...]) -> tuple[str, ...]:
    """Those of `revisions` that migrations/versions does not have: a later release's."""
    script = ScriptDirectory.from_config(Config(ALEMBIC_INI))
    unknown = []
    for revision in revisions:
        try:
            script.get_revision(revision)
        except CommandError:
            unknown.append(revision)
    return tuple(unknown)


def _newer_warning(current: tuple[str, ...], heads: tuple[str, ...]) -> str | None:
    """The WARNING to print if the schema is past this code's head, else None."""
    unknown = _unknown(current)
    if not unknown:
        return None
    return (
        f"WARNING: the schema is at {_revision_list(current)}, which this code does not "
        f"know: taken as newer than its head ({_revision_list(heads)}), from a later "
        "release (an expand/contract rollout, or a rollback of the code)"
    )


async def _schema(engines: Engines) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """({{ 'SQLite' if db == 'sqlite' else 'server' }} version, revisions the database is at, head revisions)."""
    async with engines.writer.connect() as conn:
        await conn.execute(text("SELECT 1"))
        version = await conn.scalar(VERSION_QUERY)
        current, heads = await conn.run_sync(_revisions)
    return str(version), current, heads


async def check() -> int:
    settings = get_settings()
    engines = create_engines(settings)
    try:
        version, current, heads = await _schema(engines)
    except (SQLAlchemyError, OSError) as exc:
        return _unreachable(settings.url, exc)
    finally:
        await engines.dispose()
    print(f"connected: {_safe(settings.url)}")
    print(f"{{ 'version:' if db == 'sqlite' else 'server: ' }}   {version}")
    print(f"revision:  {', '.join(current) or 'none (no migration applied)'}")
    print(f"head:      {', '.join(heads) or 'none'}")
    if current == heads:
        print("ok: the schema is up to date")
        return 0
    warning = _newer_warning(current, heads)
    if warning:
        print(warning, file=sys.stderr)
        return 0
    print("the schema is not at head: run `alembic upgrade head`", file=sys.stderr)
    return 2


def _revision_list(revisions: tuple[str, ...]) -> str:
    return ", ".join(revisions) or "none"


async def wait(give_up_after: float, interval: float) -> int:
    """`check` until the schema is at head (or newer), for at most `give_up_after` seconds."""
    settings = get_settings()
    engines = create_engines(settings)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + give_up_after
    said = ""
    try:
        while True:
            try:
                # An attempt never outlasts the deadline (a hung server included).
                async with asyncio.timeout_at(max(deadline, loop.time() + MIN_ATTEMPT_SECONDS)):
                    _, current, heads = await _schema(engines)
            except (SQLAlchemyError, OSError) as exc:  # TimeoutError is an OSError
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                status, why = 1, f"cannot connect to {_safe(settings.url)}: {reason}"
            else:
                if current == heads:
                    print(f"ok: the schema is at head ({_revision_list(heads)})", flush=True)
                    return 0
                warning = _newer_warning(current, heads)
                if warning:
                    print(warning, file=sys.stderr, flush=True)
                    return 0
                at, head = _revision_list(current), _revision_list(heads)
                status, why = 2, f"the schema is at {at}, not at head ({head})"
            if loop.time() >= deadline:
                print(f"gave up after {give_up_after:g} s: {why}", file=sys.stderr)
                return status
            if why != said:  # one line per change, not one per attempt
                print(f"waiting: {why}", file=sys.stderr, flush=True)
                said = why
            await asyncio.sleep(min(interval, max(deadline - loop.time(), 0)))
    finally:
        await engines.dispose()


def _seconds(value: str) -> float:
    seconds = float(value)
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {value}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.db", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("create", help="create the database in DATABASE_URL if it is missing")
    commands.add_parser("check", help="connect; show the {{ 'SQLite' if db == 'sqlite' else 'server' }} version and schema revision")
    waiting = commands.add_parser("wait", help="wait until the schema is at the latest migration")
    waiting.add_argument(
        "--timeout", type=_seconds, default=300.0, help="give up after this many seconds (300)"
    )
    waiting.add_argument(
        "--interval", type=_seconds, default=2.0, help="seconds between two checks (2)"
    )
    args = parser.parse_args(argv)
    get_settings()  # bad settings stop here: one line on stderr, exit 1
    if args.command == "create":
        return asyncio.run(create())
    if args.command == "check":
        return asyncio.run(check())
    return asyncio.run(wait(args.timeout, args.interval))


if __name__ == "__main__":
    sys.exit(main())
