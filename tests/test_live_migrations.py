"""Migrations against a live service, for real: the baked app under uvicorn serving
reads and writes, `alembic upgrade head` run as the migration Job runs it.

- A schema change that needs an exclusive lock while an ordinary transaction holds a
  conflicting one: the service's requests never wait much longer than
  MIGRATION_LOCK_TIMEOUT (without it they would queue behind the waiting ALTER until
  the transaction ends), and the migration, retried, reaches head by itself once the
  transaction has ended (and so when run again after it failed, with no retries, in
  one line that names the table).
- Two `alembic upgrade head` started together both exit 0, with one version row.
- A failing revision in the middle of three leaves the first applied.

PostgreSQL and MariaDB: each waiting ALTER blocks the readers behind it. SQLite
(readers never queue behind its one writer in WAL mode; a run is one transaction):
the two concurrent upgrades.
"""

import asyncio
import contextlib
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tests.baked_app import serve_baked
from tests.conftest import RUN_ID, Bakery, DatabaseServer, python, run, tail
from tests.variants import DATABASES, TEST_PYTHON_VERSION, Variant

SERVER_DATABASES = ("postgresql", "mysql")
LOCK_TIMEOUT = 1.0  # MIGRATION_LOCK_TIMEOUT for these runs, seconds
# A request may take this much longer than the lock timeout: a loaded 2-core machine.
MARGIN = 1.5
# How long the blocker's transaction goes on once the migration waits for its lock:
# requests queued behind a waiting ALTER (no lock timeout) would take that long, far
# longer than LOCK_TIMEOUT + MARGIN.
HOLD_AFTER_WAIT = 3.5
# A waiting schema change on `users`, as each server shows it.
WAITING_ALTER = {
    "postgresql": (
        "SELECT COUNT(*) FROM pg_locks WHERE NOT granted"
        " AND relation = to_regclass('users') AND mode = 'AccessExclusiveLock'"
    ),
    "mysql": (
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST"
        " WHERE STATE = 'Waiting for table metadata lock' AND INFO LIKE 'ALTER TABLE users%'"
    ),
}
CLIENTS = 4  # concurrent request loops: reads and writes
COMMAND_TIMEOUT = 120
REVISION = '''"""A revision of the tests."""

import time

import sqlalchemy as sa
from alembic import op

revision = "{revision}"
down_revision = "{down_revision}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    {upgrade}


def downgrade() -> None:
    pass
'''


@dataclass(frozen=True)
class Project:
    path: Path
    database: str
    database_url: str

    def env(self, **settings: str) -> dict[str, str]:
        return {"DATABASE_URL": self.database_url, **settings}

    def add_revisions(self, *upgrades: str) -> list[str]:
        """Revisions on top of the head, one per `upgrades` body."""
        versions = self.path / "migrations" / "versions"
        down = ScriptDirectory.from_config(
            Config(str(self.path / "alembic.ini"))
        ).get_current_head()
        revisions = []
        for number, upgrade in enumerate(upgrades, start=1):
            revision = f"ffff_{uuid.uuid4().hex[:8]}"
            source = REVISION.format(revision=revision, down_revision=down, upgrade=upgrade)
            (versions / f"2099_01_{number:02d}_{revision}.py").write_text(source, encoding="utf-8")
            revisions.append(revision)
            down = revision
        return revisions

    async def alembic(self, *arguments: str, **settings: str) -> tuple[int, str]:
        process = await asyncio.create_subprocess_exec(
            *python("-m", "alembic", *arguments),
            cwd=self.path,
            env={**os.environ, **self.env(**settings)},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        async with asyncio.timeout(COMMAND_TIMEOUT):
            output, _ = await process.communicate()
        assert process.returncode is not None
        return process.returncode, output.decode()

    async def scalar(self, statement: str) -> object:
        engine = create_async_engine(self.database_url, poolclass=NullPool)
        try:
            async with engine.connect() as conn:
                return await conn.scalar(text(statement))
        finally:
            await engine.dispose()


@pytest.fixture
def project(
    request: pytest.FixtureRequest,
    bakery: Bakery,
    database_server: DatabaseServer,
    throwaway_databases: list[str],
    tmp_path: Path,
) -> Project:
    """A copy of the bake with the example models, on a database of its own at head."""
    variant = Variant(database_server.database, "yes", "no", TEST_PYTHON_VERSION)
    path = tmp_path / "project"
    shutil.copytree(bakery.project(variant), path)
    test = uuid.uuid5(uuid.NAMESPACE_URL, request.node.name).hex[:8]
    name = f"ckt_{RUN_ID}_{database_server.database[:2]}_live_{test}"
    throwaway_databases.append(name)
    database_server.create(name)
    return Project(path, database_server.database, database_server.url(name))


async def _hold_a_lock_on_users(url: str, holding: asyncio.Event, release: asyncio.Event) -> None:
    """An ordinary transaction (an export, a report) that has read `users`, open
    until `release` (or COMMAND_TIMEOUT: a broken migration fails, never hangs)."""
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn, conn.begin():
            await conn.execute(text("SELECT id FROM users LIMIT 1"))
            holding.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(release.wait(), COMMAND_TIMEOUT)
    finally:
        await engine.dispose()


async def _until_the_alter_waits(project: Project) -> None:
    """Return once the migration's ALTER waits for its lock on `users`."""
    async with asyncio.timeout(COMMAND_TIMEOUT):
        while not await project.scalar(WAITING_ALTER[project.database]):
            await asyncio.sleep(0.05)


async def _traffic(base_url: str, stop: asyncio.Event) -> list[tuple[float, float, int]]:
    """Reads and writes until `stop`: (start, seconds, status) of each request."""
    done: list[tuple[float, float, int]] = []
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:

        async def loop(number: int) -> None:
            sent = 0
            while not stop.is_set():
                started = time.monotonic()
                if number % 2:
                    email = f"live{number}-{sent}-{uuid.uuid4().hex[:6]}@example.com"
                    body = {"email": email, "full_name": "Live"}
                    response = await client.post("/api/v1/users", json=body)
                else:
                    response = await client.get("/api/v1/users", params={"limit": 5})
                done.append((started, time.monotonic() - started, response.status_code))
                sent += 1
                await asyncio.sleep(0.02)

        await asyncio.gather(*(loop(n) for n in range(CLIENTS)))
    return done


Requests = list[tuple[float, float, int]]


@pytest.mark.parametrize("database_server", SERVER_DATABASES, indirect=True)
def test_a_migration_waiting_for_a_lock_does_not_stall_the_service(project: Project) -> None:
    migrated = run(python("-m", "alembic", "upgrade", "head"), project.path, project.env())
    assert migrated.returncode == 0, tail(migrated.stdout)
    (add_column,) = project.add_revisions(
        'op.add_column("users", sa.Column("nickname", sa.String(50), nullable=True))'
    )
    lock_timeout = {"MIGRATION_LOCK_TIMEOUT": str(LOCK_TIMEOUT)}

    async def scenario(base_url: str) -> tuple[Requests, tuple[int, str], tuple[int, str], float]:
        stop, holding, release = asyncio.Event(), asyncio.Event(), asyncio.Event()
        traffic = asyncio.create_task(_traffic(base_url, stop))
        await asyncio.sleep(1)  # the service is busy
        blocker = asyncio.create_task(_hold_a_lock_on_users(project.database_url, holding, release))
        await holding.wait()
        started = time.monotonic()
        # No retries: it gives up in one line.
        gave_up = await project.alembic(
            "upgrade", "head", **lock_timeout, MIGRATION_LOCK_RETRIES="0"
        )
        # Retries: it waits, gives up, waits again, until the blocker has gone.
        migration = asyncio.create_task(
            project.alembic("upgrade", "head", **lock_timeout, MIGRATION_LOCK_RETRIES="5")
        )
        await _until_the_alter_waits(project)
        await asyncio.sleep(HOLD_AFTER_WAIT)
        release.set()
        await blocker
        reached = await migration
        await asyncio.sleep(0.5)
        stop.set()
        return await traffic, gave_up, reached, started

    with serve_baked(project.path, project.env()) as base_url:
        # Readiness does not ask the schema's version: the database is behind this
        # code's head (the revision above is pending), and the instance is ready.
        assert httpx.get(f"{base_url}/readyz", timeout=5).status_code == 200
        requests, gave_up, reached, started = asyncio.run(scenario(base_url))

    # Meanwhile every request was answered, none later than the lock timeout allows.
    during = [r for r in requests if r[0] >= started - 1]
    assert len(during) > 20, len(during)
    assert {code for _, _, code in requests} <= {200, 201}, requests
    slowest = max(seconds for _, seconds, _ in during)
    assert slowest < LOCK_TIMEOUT + MARGIN, f"a request took {slowest:.2f} s"
    # Without retries: one line that names the table and what to do; nothing applied.
    status, output = gave_up
    assert status != 0
    (failure,) = [line for line in output.splitlines() if line.startswith("FAILED: ")]
    assert "migration gave up after 1 attempt: the lock on users was not granted" in failure
    assert "run the migration again" in failure
    assert "Traceback" not in output, tail(output)
    # With them: it gave up each time within the lock timeout, and reached head by
    # itself once the blocker had gone.
    status, output = reached
    assert status == 0, tail(output)
    assert "was not granted within the lock timeout: retry 1 of 5" in output, tail(output)
    assert asyncio.run(project.scalar("SELECT version_num FROM alembic_version")) == add_column


@pytest.mark.parametrize("database_server", DATABASES, indirect=True)
def test_two_upgrades_started_together_both_succeed(project: Project) -> None:
    (slow,) = project.add_revisions(
        'op.create_table("slow_done", sa.Column("id", sa.Integer(), primary_key=True))\n'
        "    time.sleep(1)"
    )

    async def both() -> list[tuple[int, str]]:
        return await asyncio.gather(*(project.alembic("upgrade", "head") for _ in "ab"))

    results = asyncio.run(both())
    assert [status for status, _ in results] == [0, 0], [tail(output) for _, output in results]
    assert asyncio.run(project.scalar("SELECT COUNT(*) FROM alembic_version")) == 1
    assert asyncio.run(project.scalar("SELECT version_num FROM alembic_version")) == slow


@pytest.mark.parametrize("database_server", SERVER_DATABASES, indirect=True)
def test_a_failing_revision_in_the_middle_leaves_the_first_applied(project: Project) -> None:
    first, _, _ = project.add_revisions(
        'op.create_table("first_kept", sa.Column("id", sa.Integer(), primary_key=True))',
        'op.execute("THIS IS NOT SQL")',
        'op.create_table("never_reached", sa.Column("id", sa.Integer(), primary_key=True))',
    )
    status, output = asyncio.run(project.alembic("upgrade", "head"))
    assert status != 0
    assert "THIS IS NOT SQL" in output
    assert asyncio.run(project.scalar("SELECT version_num FROM alembic_version")) == first
    assert asyncio.run(project.scalar("SELECT COUNT(*) FROM first_kept")) == 0
