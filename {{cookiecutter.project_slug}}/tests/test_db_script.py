{%- set db = cookiecutter.database -%}
"""`python -m scripts.db check` and `wait`, for real, on a database of their own
(`<test database>_dbscript`): the exit status says whether the schema is at the
latest migration, and `wait` returns as soon as it is, or gives up in time. A schema
at a revision this code does not know (a later release's) passes both, with a WARNING."""

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator
{%- if db == "sqlite" %}
from pathlib import Path
{%- endif %}

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.settings import Settings, get_settings
from scripts.db import check
from tests.conftest import PROJECT_ROOT
from tests.databases import alembic_config_for, drop_database, fresh_database, sibling_url

LINE_TIMEOUT = 30
{%- if db == "sqlite" %}
# `wait --timeout 1` must give up within this, with room for the start-up of a fresh
# interpreter (seconds, on a busy machine), which the clock here includes.
{%- else %}
# `wait --timeout 1` must give up within this, whatever the server does: far below
# the 30 s connect timeout the hung-server cases set, with room for the start-up of a
# fresh interpreter (seconds, on a busy machine), which the clock here includes.
{%- endif %}
GIVE_UP_WITHIN = 12.0


@pytest.fixture
async def empty_url(test_settings: Settings) -> AsyncIterator[URL]:
    """A database of this test's own, with no migration applied."""
    url = sibling_url(test_settings.url, "dbscript")
    await fresh_database(url, migrate=False)
    yield url
    await drop_database(url)


async def _start(
    url: str, *arguments: str, extra: dict[str, str] | None = None
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "scripts.db",
        *arguments,
        cwd=PROJECT_ROOT,
        env={
            **os.environ,
            "DATABASE_URL": url,
            "ENVIRONMENT": "test",
            "SECRET_KEY": "test-only-secret-key-of-32-bytes",
            **(extra or {}),
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def _run(
    url: str, *arguments: str, extra: dict[str, str] | None = None
) -> tuple[int, str, str]:
    process = await _start(url, *arguments, extra=extra)
    async with asyncio.timeout(LINE_TIMEOUT):
        out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def _plain(url: URL) -> str:
    return url.render_as_string(hide_password=False)


async def _migrate(url: URL) -> None:
    # Alembic's env.py runs its own event loop: in a thread, not in this one.
    await asyncio.to_thread(command.upgrade, alembic_config_for(url), "head")


async def test_check_says_whether_the_schema_is_at_head(empty_url: URL) -> None:
    status, _, err = await _run(_plain(empty_url), "check")
    assert status == 2, err
    assert "not at head" in err
    await _migrate(empty_url)
    status, out, err = await _run(_plain(empty_url), "check")
    assert status == 0, err
    assert "ok: the schema is up to date" in out


async def test_wait_gives_up_in_time_on_a_schema_not_at_head(empty_url: URL) -> None:
    started = time.monotonic()
    status, _, err = await _run(_plain(empty_url), "wait", "--timeout", "1", "--interval", "0.2")
    assert status == 2, err
    assert time.monotonic() - started < GIVE_UP_WITHIN
    assert "gave up after 1 s: the schema is at none, not at head" in err
    # One line per change of reason, not one per attempt.
    assert err.count("waiting:") == 1, err


async def test_wait_returns_once_the_migration_has_run(empty_url: URL) -> None:
    process = await _start(_plain(empty_url), "wait", "--timeout", "60", "--interval", "0.2")
    assert process.stderr is not None
    async with asyncio.timeout(LINE_TIMEOUT):
        line = (await process.stderr.readline()).decode()
    assert line.startswith("waiting: the schema is at none"), line
    assert process.returncode is None  # still waiting
    await _migrate(empty_url)
    async with asyncio.timeout(LINE_TIMEOUT):
        out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    assert "ok: the schema is at head" in out.decode()
    # Already at head: at once.
    started = time.monotonic()
    status, out_again, err_again = await _run(_plain(empty_url), "wait", "--timeout", "1")
    assert status == 0, err_again
    assert "ok: the schema is at head" in out_again
    assert time.monotonic() - started < GIVE_UP_WITHIN


async def test_a_schema_newer_than_this_code_passes_with_a_warning(
    empty_url: URL, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A later release migrated the database (expand/contract, or this code rolled
    back): this code's pods must start, not wait for a head they will never see."""
    await _migrate(empty_url)
    engine = create_async_engine(empty_url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = 'f00d_later'"))
    finally:
        await engine.dispose()
    started = time.monotonic()
    status, _, err = await _run(_plain(empty_url), "wait", "--timeout", "30")
    assert status == 0, err
    assert time.monotonic() - started < GIVE_UP_WITHIN
    assert err.startswith("WARNING: the schema is at f00d_later, which this code does not know")
    # `check` the same way (in this process: its answer, not its start-up, is tested).
    monkeypatch.setenv("DATABASE_URL", _plain(empty_url))
    get_settings.cache_clear()
    try:
        status = await check()
    finally:
        get_settings.cache_clear()
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert "revision:  f00d_later" in captured.out
    assert "taken as newer than its head" in captured.err

{%- if db == "sqlite" %}


async def test_wait_gives_up_in_time_when_the_database_cannot_be_opened(
    test_settings: Settings, tmp_path: Path
) -> None:
    missing = test_settings.url.set(database=f"{tmp_path}/no/such/folder/app.db")
    status, _, err = await _run(_plain(missing), "wait", "--timeout", "1", "--interval", "0.2")
    assert status == 1, err
    assert "gave up after 1 s: cannot connect to" in err
{%- else %}


@pytest.mark.parametrize("server", ["closed port", "silent server"])
async def test_wait_gives_up_in_time_when_the_server_does_not_answer(
    test_settings: Settings, silent_server: int, unused_tcp_port: int, server: str
) -> None:
    port = silent_server if server == "silent server" else unused_tcp_port
    url = test_settings.url.set(host="127.0.0.1", port=port)
    started = time.monotonic()
    # A connect timeout far beyond --timeout: `wait` must cut the attempt short.
    slow = {"DB_CONNECT_TIMEOUT": "30"}
    status, _, err = await _run(
        _plain(url), "wait", "--timeout", "1", "--interval", "0.2", extra=slow
    )
    assert status == 1, err
    assert time.monotonic() - started < GIVE_UP_WITHIN
    assert "gave up after 1 s: cannot connect to" in err
{%- endif %}
