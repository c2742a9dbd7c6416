"""Mutation check: does a baked project's own suite notice a bug in its `app/db/`?

    python -m tests.mutation                        # all three databases
    python -m tests.mutation --database sqlite      # one
    python -m tests.mutation --mutant no-wal        # one mutant (per database)

For each database it bakes the example variant (`include_example_models=yes`,
`auth=none`), runs the baked suite once unmutated (it must pass), then once per
mutant of tests/mutants.py: the mutant's edit applied to the rendered file, the
suite run with `-x` (the first failure kills the mutant), the file restored. A
suite that outlives its time limit also kills the mutant (a user would notice a
hang). It prints one line per mutant and the score, and exits 1 below
`--target` (90%). The suites run with this interpreter (it has every variant's
dependencies) against the servers of the template's tests: PostgreSQL on
127.0.0.1:5432 as `postgres`, MariaDB or MySQL on 127.0.0.1:3306 as `root`.
"""

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cookiecutter.main import cookiecutter
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tests.mutants import EVERY_DATABASE, Mutant, mutants_for

REPO_ROOT = Path(__file__).resolve().parent.parent
SLUG = "mutation-check"
TEST_DATABASE = "mutation_check_test"
SERVER_URLS = {
    "postgresql": "postgresql+asyncpg://postgres@127.0.0.1:5432",
    "mysql": "mysql+aiomysql://root@127.0.0.1:3306",
}


@dataclass(frozen=True)
class Outcome:
    database: str
    mutant: Mutant
    killed: bool
    by: str  # the first failing test, "timeout", or "" for a survivor
    seconds: float


class CatalogueError(Exception):
    """A mutant's text is not in the rendered file exactly once: the catalogue is stale."""


def bake(database: str, output: Path) -> Path:
    os.environ["SKIP_FIRST_MIGRATION"] = "1"  # the suite builds its own database
    project = cookiecutter(
        str(REPO_ROOT),
        no_input=True,
        output_dir=str(output),
        extra_context={
            "project_slug": SLUG,
            "database": database,
            "include_example_models": "yes",
            "auth": "none",
            "run_first_migration": "no",
        },
    )
    return Path(project)


def test_database_url(database: str, project: Path) -> str:
    if database == "sqlite":
        return f"sqlite+aiosqlite:///{project.parent / TEST_DATABASE}.db"
    suffix = "?charset=utf8mb4" if database == "mysql" else ""
    return f"{SERVER_URLS[database]}/{TEST_DATABASE}{suffix}"


def drop_test_database(database: str, project: Path) -> None:
    """Each run starts from no database: what one run left (a journal mode, a table
    a mutant failed to roll back) cannot decide the next."""
    if database == "sqlite":
        for path in project.parent.glob(f"{TEST_DATABASE}.db*"):
            path.unlink()
    else:
        asyncio.run(_drop_server_database(database))


async def _drop_server_database(database: str) -> None:
    engine = create_async_engine(
        f"{SERVER_URLS[database]}/{'postgres' if database == 'postgresql' else ''}",
        poolclass=NullPool,
        isolation_level="AUTOCOMMIT",
    )
    force = " WITH (FORCE)" if database == "postgresql" else ""
    try:
        async with engine.connect() as conn:
            await conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {TEST_DATABASE}{force}")
    finally:
        await engine.dispose()


def mutated_text(project: Path, mutant: Mutant) -> tuple[str, str]:
    """The file's text and its mutated text; CatalogueError unless `old` occurs once."""
    original = (project / mutant.path).read_text(encoding="utf-8")
    found = original.count(mutant.old)
    if found != 1:
        raise CatalogueError(f"{mutant.id}: {mutant.path} holds its text {found} times, not once")
    return original, original.replace(mutant.old, mutant.new)


@contextmanager
def applied(project: Path, mutant: Mutant) -> Iterator[None]:
    original, mutated = mutated_text(project, mutant)
    path = project / mutant.path
    path.write_text(mutated, encoding="utf-8")
    try:
        yield
    finally:
        path.write_text(original, encoding="utf-8")


def _first_failure(output: str) -> str:
    summary = output.partition("short test summary info")[2]
    for line in summary.splitlines():
        if line.startswith(("FAILED ", "ERROR ")):
            return line.split(" ", 1)[1].split(" - ", 1)[0]
    return "the run failed before any test (see its output)"


def run_suite(
    database: str, project: Path, pytest_args: Sequence[str], timeout: float
) -> tuple[int | None, str, float]:
    """(exit status or None on timeout, output, seconds), on a database of its own;
    no bytecode is kept, so a mutated module is always compiled from its text."""
    drop_test_database(database, project)
    for cache in project.rglob("__pycache__"):
        shutil.rmtree(cache)
    env = {
        **os.environ,
        "TEST_DATABASE_URL": test_database_url(database, project),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
    }
    argv = [sys.executable, "-m", "pytest", "-q", "-x", "-rfE", "-p", "no:cacheprovider"]
    started = time.monotonic()
    try:
        done = subprocess.run(
            [*argv, *pytest_args],
            cwd=project,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as expired:
        output = expired.stdout if isinstance(expired.stdout, str) else ""
        return None, output, time.monotonic() - started
    return done.returncode, done.stdout + done.stderr, time.monotonic() - started


def check(
    database: str,
    project: Path,
    mutants: Sequence[Mutant],
    pytest_args: Sequence[str] = (),
    report: bool = True,
) -> list[Outcome]:
    """The baseline run, then one run per mutant. RuntimeError if the baseline fails."""
    status, output, baseline = run_suite(database, project, pytest_args, timeout=1800)
    if status != 0:
        raise RuntimeError(f"the unmutated suite fails (exit status {status}):\n{output[-4000:]}")
    if report:
        print(f"  unmutated suite passes in {baseline:.0f} s", flush=True)
    limit = 3 * baseline + 60
    outcomes = []
    for mutant in mutants:
        with applied(project, mutant):
            status, output, seconds = run_suite(database, project, pytest_args, timeout=limit)
        if status is None:
            outcome = Outcome(database, mutant, killed=True, by="timeout", seconds=seconds)
        elif status == 0:
            outcome = Outcome(database, mutant, killed=False, by="", seconds=seconds)
        else:
            outcome = Outcome(
                database, mutant, killed=True, by=_first_failure(output), seconds=seconds
            )
        outcomes.append(outcome)
        if report:
            verdict = f"killed by {outcome.by}" if outcome.killed else "SURVIVED"
            print(f"  {mutant.id:36} {seconds:5.0f} s  {verdict}", flush=True)
    return outcomes


def check_database(
    database: str, selected: Sequence[str], pytest_args: Sequence[str]
) -> list[Outcome]:
    mutants = [m for m in mutants_for(database) if not selected or m.id in selected]
    with tempfile.TemporaryDirectory(prefix="mutation-") as folder:
        project = bake(database, Path(folder))
        for mutant in mutants:  # a stale catalogue fails before any suite runs
            mutated_text(project, mutant)
        print(f"{database}: {len(mutants)} mutants of {project.name}/app/db/", flush=True)
        try:
            return check(database, project, mutants, pytest_args)
        finally:
            drop_test_database(database, project)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", action="append", choices=sorted(EVERY_DATABASE))
    parser.add_argument("--mutant", action="append", default=[], help="a mutant id")
    parser.add_argument("--target", type=float, default=90.0, help="percent to kill")
    parser.add_argument("pytest_args", nargs="*", help="passed to the baked suite's pytest")
    options = parser.parse_args(argv)
    outcomes: list[Outcome] = []
    for database in options.database or ["sqlite", "postgresql", "mysql"]:
        outcomes += check_database(database, options.mutant, options.pytest_args)
    if not outcomes:
        print("no mutant matched", file=sys.stderr)
        return 2
    killed = sum(outcome.killed for outcome in outcomes)
    score = 100 * killed / len(outcomes)
    print(f"mutation score: {killed}/{len(outcomes)} killed ({score:.0f}%)")
    for outcome in outcomes:
        if not outcome.killed:
            mutant = outcome.mutant
            print(f"  survived: {outcome.database} {mutant.id} ({mutant.path}): {mutant.harm}")
    return 0 if score >= options.target else 1


if __name__ == "__main__":
    sys.exit(main())
