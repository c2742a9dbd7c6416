"""Bake helpers, hook rendering, and the live database servers.

Every subprocess runs with the interpreter of this test session (`sys.executable`),
which has the template's tooling and every dependency of the baked projects.
"""

import asyncio
import importlib.util
import os
import secrets
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import pytest
from cookiecutter.environment import StrictEnvironment
from cookiecutter.generate import generate_context
from cookiecutter.prompt import prompt_for_config
from cookiecutter.utils import create_env_with_context
from jinja2.bccache import Bucket, BytecodeCache
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tests.variants import Variant

REPO_ROOT = Path(__file__).resolve().parent.parent
HOOKS_DIR = REPO_ROOT / "hooks"
TEMPLATE_DIR = REPO_ROOT / "{{cookiecutter.project_slug}}"
# Distinguishes this run's databases and slugs from any other run's.
RUN_ID = secrets.token_hex(3)
SKIP_SWITCH = "SKIP_FIRST_MIGRATION"
# Variables that steer a bake or a baked project; tests set them explicitly.
STEERING_VARIABLES = (SKIP_SWITCH, "DATABASE_URL", "TEST_DATABASE_URL")
IN_CI = os.environ.get("CI", "").lower() == "true"


class _SessionBytecodeCache(BytecodeCache):
    """Compiled templates kept for the session, keyed by name and source checksum."""

    def __init__(self) -> None:
        self.code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        if bucket.key in self.code:
            bucket.bytecode_from_string(self.code[bucket.key])

    def dump_bytecode(self, bucket: Bucket) -> None:
        self.code[bucket.key] = bucket.bytecode_to_string()


def _share_compiled_templates() -> None:
    """Each bake builds a new Jinja environment and compiles every file anew (most of
    a bake's time, over 400 bakes): let them share one bytecode cache. What is
    rendered does not change, only how often the same source is compiled."""
    cache = _SessionBytecodeCache()
    original = StrictEnvironment.__init__

    def with_cache(self: StrictEnvironment, **kwargs: Any) -> None:
        original(self, **kwargs)
        self.bytecode_cache = cache

    StrictEnvironment.__init__ = with_cache


def pytest_configure(config: pytest.Config) -> None:
    # pytest-cookies bakes `--template` (default: the current directory): pin it to
    # this repository so the tests work from any directory.
    config.option.template = str(REPO_ROOT)
    _share_compiled_templates()


# ---------------------------------------------------------------------------
# Subprocesses


def run(
    argv: Sequence[str],
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    """Run a command, stdout and stderr merged, never raising on failure."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        list(argv),
        cwd=cwd,
        env=full_env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )


def python(*args: str) -> list[str]:
    return [sys.executable, *args]


def tail(text: str, lines: int = 60) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


@contextmanager
def environment(**values: str | None) -> Iterator[None]:
    """Set (str) or remove (None) environment variables for a block."""
    saved = {name: os.environ.get(name) for name in values}
    try:
        for name, value in values.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No inherited variable steers the bake or the baked project."""
    for name in STEERING_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


# ---------------------------------------------------------------------------
# Rendering the template's context and hooks outside a bake


def render_context(**answers: str) -> dict[str, Any]:
    """The context cookiecutter renders for these answers (no prompts)."""
    context = prompt_for_config(
        generate_context(context_file=str(REPO_ROOT / "cookiecutter.json"), extra_context=answers),
        no_input=True,
    )
    return dict(context)


def render_hook(name: str, directory: Path, context: Mapping[str, Any]) -> Path:
    """Render hooks/<name>.py the way cookiecutter does, into `directory`."""
    full = {"cookiecutter": dict(context)}
    source = (HOOKS_DIR / f"{name}.py").read_text(encoding="utf-8")
    rendered = create_env_with_context(full).from_string(source).render(**full)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{name}.py"
    target.write_text(rendered, encoding="utf-8")
    return target


def render_template_file(relative: str, directory: Path, context: Mapping[str, Any]) -> Path:
    """Render one file of the project template, into `directory`."""
    full = {"cookiecutter": dict(context)}
    source = (TEMPLATE_DIR / relative).read_text(encoding="utf-8")
    rendered = create_env_with_context(full).from_string(source).render(**full)
    target = directory / Path(relative).name
    target.write_text(rendered, encoding="utf-8")
    return target


def import_hook(name: str, directory: Path, context: Mapping[str, Any]) -> ModuleType:
    """Render a hook and import it as a module (its main() does not run)."""
    path = render_hook(name, directory, context)
    module_name = f"rendered_{name}_{secrets.token_hex(4)}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------
# Baking the matrix once per session


class BakeResult(Protocol):
    exception: BaseException | None
    exit_code: object
    context: Mapping[str, Any] | None

    @property
    def project_path(self) -> Path | None: ...


class Cookies(Protocol):
    def bake(
        self, extra_context: Mapping[str, str] | None = None, template: str | None = None
    ) -> BakeResult: ...


def matrix_slug() -> str:
    """One slug for the whole matrix: unique per run, so no database is shared."""
    return f"ckt-{RUN_ID}"


@dataclass
class Bakery:
    """Bakes each variant at most once per session (with the skip switch on:
    the matrix checks files; test_hooks.py runs the real first migration)."""

    cookies: Cookies = field(repr=False)
    # (Not in repr: a Result's repr warns about pytest-cookies' deprecated `project`.)
    results: dict[Variant, BakeResult] = field(default_factory=dict, repr=False)

    def bake(self, variant: Variant) -> BakeResult:
        if variant not in self.results:
            answers = {"project_slug": matrix_slug(), **variant.answers}
            with environment(**{SKIP_SWITCH: "1", "DATABASE_URL": None, "TEST_DATABASE_URL": None}):
                self.results[variant] = self.cookies.bake(extra_context=answers)
        return self.results[variant]

    def project(self, variant: Variant) -> Path:
        result = self.bake(variant)
        assert result.exception is None, f"{variant} did not bake: {result.exception!r}"
        assert result.project_path is not None
        return result.project_path


@pytest.fixture(scope="session")
def bakery(cookies_session: Cookies) -> Bakery:
    return Bakery(cookies_session)


# ---------------------------------------------------------------------------
# Database servers


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def _require_server(name: str, host: str, port: int) -> None:
    if _port_open(host, port):
        return
    message = f"{name} is not accepting connections on {host}:{port} (.ci/run starts it)"
    if IN_CI:
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)


class DatabaseServer(Protocol):
    @property
    def database(self) -> str: ...

    def url(self, name: str) -> str: ...
    def create(self, name: str) -> None: ...
    def drop(self, name: str) -> None: ...


async def _execute(url: str, statement: str) -> None:
    engine = create_async_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.exec_driver_sql(statement)
    finally:
        await engine.dispose()


@dataclass(frozen=True)
class PostgresServer:
    database: str = "postgresql"
    admin_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"

    def url(self, name: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"

    def create(self, name: str) -> None:
        asyncio.run(_execute(self.admin_url, f'CREATE DATABASE "{name}"'))

    def drop(self, name: str) -> None:
        asyncio.run(_execute(self.admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@dataclass(frozen=True)
class MariaDBServer:
    database: str = "mysql"
    admin_url: str = "mysql+aiomysql://root@127.0.0.1:3306/"

    def url(self, name: str) -> str:
        return f"mysql+aiomysql://root@127.0.0.1:3306/{name}?charset=utf8mb4"

    def create(self, name: str) -> None:
        asyncio.run(_execute(self.admin_url, f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))

    def drop(self, name: str) -> None:
        asyncio.run(_execute(self.admin_url, f"DROP DATABASE IF EXISTS `{name}`"))


@dataclass(frozen=True)
class SQLiteFiles:
    """SQLite needs no server: a database is a file in a temporary folder."""

    folder: Path
    database: str = "sqlite"

    def url(self, name: str) -> str:
        return f"sqlite+aiosqlite:///{self.folder / name}.db"

    def create(self, name: str) -> None:
        """SQLite creates the file on first connect."""

    def drop(self, name: str) -> None:
        for suffix in (".db", ".db-wal", ".db-shm", ".db-journal"):
            (self.folder / f"{name}{suffix}").unlink(missing_ok=True)


@pytest.fixture(scope="session")
def postgres_server() -> PostgresServer:
    _require_server("PostgreSQL", "127.0.0.1", 5432)
    return PostgresServer()


@pytest.fixture(scope="session")
def mariadb_server() -> MariaDBServer:
    _require_server("MariaDB", "127.0.0.1", 3306)
    return MariaDBServer()


# The machine's RabbitMQ (.ci/run starts it): task_queue=taskiq's suites use queues named
# for each test, never a vhost or user of their own.
RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/"


@pytest.fixture(scope="session")
def rabbitmq_url() -> str:
    _require_server("RabbitMQ", "127.0.0.1", 5672)
    return RABBITMQ_URL


@pytest.fixture
def database_server(request: pytest.FixtureRequest, tmp_path: Path) -> DatabaseServer:
    """The server for `request.param` (a database choice), via the fixtures above."""
    database: str = request.param
    if database == "postgresql":
        server: DatabaseServer = request.getfixturevalue("postgres_server")
    elif database == "mysql":
        server = request.getfixturevalue("mariadb_server")
    else:
        server = SQLiteFiles(tmp_path)
    return server


@pytest.fixture
def throwaway_databases(database_server: DatabaseServer) -> Iterator[list[str]]:
    """Names appended here are dropped after the test, whatever its outcome."""
    names: list[str] = []
    yield names
    for name in names:
        database_server.drop(name)
