"""Each variant whose code differs runs its own test-suite against its real database,
and its migrations match its models.

Each baked suite runs in an environment of its own, installed from the bake's
uv.lock with `uv sync --frozen` (outside the bake, so the linters never see it): a
dependency the bake uses but does not declare fails here, whatever this session's
interpreter has. Every database created here is named for this run and dropped
afterwards.

The suites mostly wait (on servers, timeouts, subprocesses: about half their time is
CPU), so BAKED_SUITES_AT_ONCE of them (2 by default; 1 for a quiet machine) run at
once, each on databases of its own, and nothing else of this session runs meanwhile.
"""

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path

import pytest

from tests.conftest import RUN_ID, Bakery, DatabaseServer, SQLiteFiles, python, run, tail
from tests.locks import interpreter, uv_environment
from tests.variants import CODE_VARIANTS, Variant, suite_arguments

PYTEST_NO_TESTS_COLLECTED = 5
PARAMETERS = pytest.mark.parametrize(
    ("variant", "database_server"),
    [pytest.param(v, v.database, id=v.code_id) for v in CODE_VARIANTS],
    indirect=["database_server"],
)


def _failure_summary(output: str) -> str:
    """pytest's short summary (which test failed, and why) and the closing lines."""
    summary = output.partition("short test summary info")[2].lstrip("= \n")
    return f"{summary.strip()}\n...\n{tail(output, 40)}" if summary else tail(output, 120)


def _database_name(variant: Variant, purpose: str) -> str:
    examples = "ex" if variant.include_example_models == "yes" else "noex"
    auth = "" if variant.auth == "none" else f"_{variant.auth}"
    tasks = "" if variant.task_queue == "none" else f"_{variant.task_queue}"
    return f"ckt_{RUN_ID}_{variant.database}_{examples}{auth}{tasks}_{purpose}"


def _locked_environment(project: Path, variant: Variant, folder: Path) -> Path:
    """A new virtualenv with exactly what the bake's uv.lock pins, dev tools included."""
    environment = folder / "venv"
    python_here = interpreter(variant.python_version)
    assert python_here is not None, f"no Python {variant.python_version} here"
    synced = subprocess.run(
        [sys.executable, "-m", "uv", "sync", "--frozen", "--extra", "dev", "--python", python_here],
        cwd=project,
        env={**uv_environment(), "UV_PROJECT_ENVIRONMENT": str(environment)},
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    assert synced.returncode == 0, synced.stderr
    return environment


def _run_suite(
    project: Path, variant: Variant, server: DatabaseServer, broker: str | None, folder: Path
) -> subprocess.CompletedProcess[str]:
    """The bake's own suite in its locked environment, on databases of its own."""
    name = _database_name(variant, "test")  # the baked fixtures insist on '_test'
    unused = _database_name(variant, "unused")
    env = {
        "TEST_DATABASE_URL": server.url(name),
        # Nothing may fall back to the development database of .env.
        "DATABASE_URL": server.url(unused),
    }
    if broker is not None:  # the machine's RabbitMQ, not .env's compose one
        env["BROKER_URL"] = broker
    try:
        environment = _locked_environment(project, variant, folder)
        argv = [str(environment / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        argv += [
            argument
            for argument in suite_arguments(variant)
            if (project / argument.removeprefix("--ignore=")).exists()
        ]
        return run(argv, cwd=project, env=env)
    finally:
        for database in (name, unused):
            server.drop(database)


# Every suite started in this session: the other tests here wait for them all.
_STARTED: list[Future[subprocess.CompletedProcess[str]]] = []


@pytest.fixture(scope="session")
def suites(
    request: pytest.FixtureRequest, bakery: Bakery, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Future[subprocess.CompletedProcess[str]]]]:
    """The suites of the variants this session selected, BAKED_SUITES_AT_ONCE at a
    time, in the order their tests run; each test waits for its own."""
    selected = [
        variant
        for item in request.session.items
        if isinstance(item, pytest.Function)
        and item.originalname == "test_baked_suite_passes"
        and isinstance(variant := item.callspec.params["variant"], Variant)
    ]
    servers: dict[str, DatabaseServer] = {}
    for database in dict.fromkeys(v.database for v in selected):
        if database == "postgresql":
            servers[database] = request.getfixturevalue("postgres_server")
        elif database == "mysql":
            servers[database] = request.getfixturevalue("mariadb_server")
        else:
            servers[database] = SQLiteFiles(tmp_path_factory.mktemp("suites-sqlite"))
    queued = any(v.task_queue == "taskiq" for v in selected)
    broker = request.getfixturevalue("rabbitmq_url") if queued else None
    at_once = int(os.environ.get("BAKED_SUITES_AT_ONCE", "2"))
    with ThreadPoolExecutor(max_workers=at_once, thread_name_prefix="suite") as pool:
        futures = {}
        for variant in selected:  # baking and folders here, in this thread
            project = bakery.project(variant)
            folder = tmp_path_factory.mktemp(f"suite-{variant.code_id}")
            futures[variant.code_id] = pool.submit(
                _run_suite, project, variant, servers[variant.database], broker, folder
            )
        _STARTED.extend(futures.values())
        yield futures


@pytest.mark.parametrize("variant", CODE_VARIANTS, ids=lambda v: v.code_id)
def test_baked_suite_passes(
    variant: Variant, suites: dict[str, Future[subprocess.CompletedProcess[str]]]
) -> None:
    result = suites[variant.code_id].result()
    if result.returncode == PYTEST_NO_TESTS_COLLECTED:
        pytest.fail(f"the baked suite of {variant.code_id} ran no test:\n{tail(result.stdout)}")
    assert result.returncode == 0, _failure_summary(result.stdout)
    assert " passed" in result.stdout.splitlines()[-1]


@pytest.fixture(autouse=True)
def _no_suite_running(request: pytest.FixtureRequest) -> None:
    """The other tests here start once every suite has ended: nothing overlaps them."""
    if request.function is not test_baked_suite_passes:
        wait(_STARTED)


@PARAMETERS
def test_migrations_match_models(
    bakery: Bakery,
    variant: Variant,
    database_server: DatabaseServer,
    throwaway_databases: list[str],
) -> None:
    """`alembic upgrade head` on a fresh database, then `alembic check`: no drift."""
    project = bakery.project(variant)
    name = _database_name(variant, "dev")
    throwaway_databases.append(name)
    database_server.create(name)
    env = {"DATABASE_URL": database_server.url(name)}

    def alembic(*args: str) -> str:
        result = run(python("-m", "alembic", *args), cwd=project, env=env)
        assert result.returncode == 0, f"alembic {' '.join(args)}:\n{tail(result.stdout)}"
        return result.stdout

    alembic("upgrade", "head")
    assert "No new upgrade operations detected" in alembic("check")
    assert "0001 (head)" in alembic("current")


# A dependency that deprecates something: about itself (stacklevel=1, as a library's
# internal deprecations are), or about its caller (stacklevel=2, a deprecated API).
LIBRARY = """
import types

library = types.ModuleType("somelibrary")
exec(
    "import warnings\\n"
    "def internal():\\n"
    "    warnings.warn('somelibrary changes inside', DeprecationWarning, stacklevel=1)\\n"
    "def deprecated_api():\\n"
    "    warnings.warn('deprecated_api is deprecated', DeprecationWarning, stacklevel=2)\\n",
    library.__dict__,
)
"""
WARNING_PROBES = {
    "app/warning_probe.py": LIBRARY + "\n\ndef call_it():\n    library.deprecated_api()\n",
    "tests/test_warning_from_a_dependency.py": (
        "from app.warning_probe import library\n\n\ndef test_it():\n    library.internal()\n"
    ),
    "tests/test_warning_from_own_code.py": (
        "from app.warning_probe import call_it\n\n\ndef test_it():\n    call_it()\n"
    ),
}


def test_only_warnings_from_the_projects_own_code_fail_its_tests(
    bakery: Bakery, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    shutil.copytree(bakery.project(CODE_VARIANTS[0]), project)
    for relative, source in WARNING_PROBES.items():
        (project / relative).write_text(source, encoding="utf-8")

    def pytest_on(test_file: str) -> subprocess.CompletedProcess[str]:
        argv = python("-m", "pytest", "-q", "-p", "no:cacheprovider", "--noconftest", test_file)
        return run(argv, cwd=project)

    dependency = pytest_on("tests/test_warning_from_a_dependency.py")
    assert dependency.returncode == 0, tail(dependency.stdout)
    assert "somelibrary changes inside" in dependency.stdout  # reported, not hidden
    own = pytest_on("tests/test_warning_from_own_code.py")
    assert own.returncode == 1, tail(own.stdout)
    assert "DeprecationWarning: deprecated_api is deprecated" in own.stdout
