"""Finish the generated project: a short list of named steps (see main() at the end).

Cookiecutter renders this file with Jinja and runs it with its own interpreter,
inside the new project directory. A post-generation hook that fails makes
cookiecutter delete the whole project, so the first migration (which needs a
database and maybe the network) never fails the bake: when it cannot run, it says
what failed and prints the exact commands to run later.

Set SKIP_FIRST_MIGRATION=1 to skip creating an environment and migrating, e.g.
under cruft, which re-runs this hook in temporary directories.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path


def _text(value: str) -> str:
    """Rejoin the surrogate pairs that JSON uses for characters beyond U+FFFF."""
    return value.encode("utf-16", "surrogatepass").decode("utf-16")


PROJECT_SLUG = _text({{ cookiecutter.project_slug | string | tojson }})
PYTHON_VERSION = _text({{ cookiecutter.python_version | string | tojson }})
DATABASE = _text({{ cookiecutter.database | string | tojson }})
INCLUDE_EXAMPLE_MODELS = _text({{ cookiecutter.include_example_models | string | tojson }})
AUTH = _text({{ cookiecutter.auth | string | tojson }})
TASK_QUEUE = _text({{ cookiecutter.task_queue | string | tojson }})
RUN_FIRST_MIGRATION = _text({{ cookiecutter.run_first_migration | string | tojson }})
USE_DOCKER = _text({{ cookiecutter.use_docker | string | tojson }})
CI = _text({{ cookiecutter.ci | string | tojson }})

SKIP_SWITCH = "SKIP_FIRST_MIGRATION"
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})

# What each option leaves out when it is not chosen; missing paths are fine.
# The example domain, posts and what shows them off: without include_example_models.
EXAMPLE_PATHS = (
    "app/posts",
    "tests/test_posts.py",
    "tests/test_queries.py",
    "tests/test_properties.py",
    "tests/test_pagination.py",
    "tests/test_concurrency.py",
    "scripts/explain_queries.py",
)
# Users and roles: the example domain's, or the accounts auth=jwt logs in. Neither: none.
USER_PATHS = (
    "app/users",
    "app/db/search.py",
    "app/api.py",
    "tests/factories.py",
    "tests/test_users.py",
    "scripts/purge_deleted.py",
    "tests/test_purge_deleted.py",
)
DOCKER_PATHS = ("Dockerfile", ".dockerignore", "docker-compose.yml")
# Only for a database server: the read replica, the server's connection limit.
SERVER_DATABASE_PATHS = (
    "app/db/connection_budget.py",
    "app/db/replica.py",
    "tests/test_connection_budget.py",
    "tests/test_replica.py",
)
# Only with auth=jwt.
AUTH_PATHS = (
    "app/auth",
    "scripts/users.py",
    "tests/test_auth.py",
    "tests/test_access.py",
    "tests/test_login_defences.py",
    "docs/auth.md",
)
# Only with task_queue=taskiq: the outbox, the broker, the relay and the worker.
TASK_PATHS = (
    "app/db/outbox.py",
    "app/tasks",
    "scripts/worker.py",
    "scripts/replay_dead_letters.py",
    "tests/tasks.py",
    "tests/test_outbox.py",
    "tests/test_relay.py",
    "tests/test_worker.py",
    "docs/tasks.md",
    "deploy/kubernetes/worker-deployment.yaml",
    "deploy/kubernetes/worker-pdb.yaml",
)
# Its example task: the welcome email with the example models; without them, a no-op
# task. Without users, a purge of its own (scripts/purge_deleted.py purges the outbox
# too where there are users).
TASK_EXAMPLE_PATHS = (
    "app/tasks/welcome_email.py",
    "app/tasks/mail.py",
    "tests/test_welcome_email.py",
)
TASK_NO_EXAMPLE_PATHS = (
    "app/tasks/noop.py",
    "tests/test_noop_task.py",
)
TASK_NO_USER_PATHS = ("scripts/purge_outbox.py",)
# Only for MariaDB in compose: its init script (the tests' databases for `app`).
COMPOSE_MARIADB_PATHS = ("docker",)
# Kubernetes manifests: only with the image, and only for a database server (a SQLite
# file has one writer: several pods cannot share it). Their PgBouncer: PostgreSQL only.
KUBERNETES_PATHS = ("deploy", "docs/kubernetes.md")
PGBOUNCER_PATHS = ("deploy/kubernetes/pgbouncer",)
CI_PATHS = {"github": (".github",), "gitlab": (".gitlab-ci.yml", "renovate.json")}
# .env.example holds this placeholder for every secret (SECRET_KEY, and the database
# password docker-compose.yml reads); .env gets a fresh random value for each.
PLACEHOLDER_SECRET = "change-me"  # noqa: S105 -- a placeholder, not a secret
# A URL whose password is not the database's: the setting that holds it alone.
URL_PASSWORD_OWNERS = {"BROKER_URL": "BROKER_PASSWORD"}

# The migration needs the project's runtime dependencies (pyproject.toml) and, for
# SQLAlchemy's asyncio extra, greenlet. The project's code needs Python 3.11+.
EXTRA_RUNTIME_DISTRIBUTIONS = ("greenlet",)
MINIMUM_PYTHON = (3, 11)
REQUIREMENT_PATTERN = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(.*)")
PYTHON_VERSION_MARKER = re.compile(r"python_version\s*(<=|>=|==|!=|<|>)\s*['\"]([0-9.]+)['\"]")

if DATABASE == "sqlite":
    DATABASE_HINT = "Can the database file's folder be created, and is DATABASE_URL right?"
elif USE_DOCKER == "yes":  # .env points at compose's database
    DATABASE_HINT = "Is the database running (docker compose up -d db), and is DATABASE_URL right?"
else:
    DATABASE_HINT = "Is the database server running, and is DATABASE_URL right?"
DATABASE_HINT += " (.env, or the environment, which wins)"

VENV_TIMEOUT = 300
INSTALL_TIMEOUT = 900
CREATE_DATABASE_TIMEOUT = 120
UPGRADE_TIMEOUT = 300
OUTPUT_TAIL_LINES = 15


@dataclass(frozen=True)
class Command:
    """One command of the first migration, run in the project directory."""

    what: str
    argv: tuple[str, ...]
    timeout: float

    def shell(self) -> str:
        return shlex.join(self.argv)


@dataclass(frozen=True)
class Outcome:
    ok: bool
    detail: str = ""


# ---------------------------------------------------------------------------
# Step 1: prune


def unwanted_paths() -> list[str]:
    unwanted: list[str] = []
    users = INCLUDE_EXAMPLE_MODELS == "yes" or AUTH == "jwt"
    if INCLUDE_EXAMPLE_MODELS == "no":
        unwanted += EXAMPLE_PATHS
    if not users:
        unwanted += USER_PATHS
    if AUTH == "none":
        unwanted += AUTH_PATHS
    if TASK_QUEUE == "none":
        unwanted += (*TASK_PATHS, *TASK_EXAMPLE_PATHS, *TASK_NO_EXAMPLE_PATHS, *TASK_NO_USER_PATHS)
    else:
        unwanted += TASK_NO_EXAMPLE_PATHS if INCLUDE_EXAMPLE_MODELS == "yes" else TASK_EXAMPLE_PATHS
        if users:
            unwanted += TASK_NO_USER_PATHS
    if USE_DOCKER == "no":
        unwanted += DOCKER_PATHS
    if DATABASE == "sqlite":
        unwanted += SERVER_DATABASE_PATHS
    if USE_DOCKER == "no" or DATABASE != "mysql":
        unwanted += COMPOSE_MARIADB_PATHS
    if USE_DOCKER == "no" or DATABASE == "sqlite":
        unwanted += KUBERNETES_PATHS
    elif DATABASE != "postgresql":
        unwanted += PGBOUNCER_PATHS
    for ci, paths in CI_PATHS.items():
        if ci != CI:
            unwanted += paths
    return unwanted


def prune(project: Path) -> None:
    for relative in unwanted_paths():
        path = project / relative
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    lock = project / "uv.lock"  # rendered empty where the template ships no lock
    if lock.exists() and not lock.read_text(encoding="utf-8").strip():
        lock.unlink()


# ---------------------------------------------------------------------------
# Step 2: .env


def write_env_file(project: Path) -> None:
    """Start from the example settings, with fresh random values in place of the
    placeholder secrets: one per secret setting (SECRET_KEY, ...), and the database
    password wherever it appears (DB_PASSWORD and the URLs of compose's database).
    An existing .env is never overwritten."""
    env, example = project / ".env", project / ".env.example"
    if env.exists() or not example.exists():
        return
    fresh: dict[str, str] = {}  # one random value per setting
    lines = []
    for line in example.read_text(encoding="utf-8").splitlines(keepends=True):
        name, _, value = line.partition("=")
        # A secret of its own (SECRET_KEY, ...), or inside a URL of a compose service:
        # that service's password (the database's, unless URL_PASSWORD_OWNERS says).
        owner = (
            name
            if value.strip() == PLACEHOLDER_SECRET
            else URL_PASSWORD_OWNERS.get(name, "DB_PASSWORD")
        )
        if PLACEHOLDER_SECRET in value:
            secret = fresh.setdefault(owner, secrets.token_urlsafe(32))
            line = f"{name}={value.replace(PLACEHOLDER_SECRET, secret)}"
        lines.append(line)
    env.write_text("".join(lines), encoding="utf-8")
    print("Wrote .env from .env.example (git-ignored; its secrets are freshly generated).")


# ---------------------------------------------------------------------------
# Step 3: first migration


def skip_requested() -> bool:
    return os.environ.get(SKIP_SWITCH, "").strip().lower() in TRUE_WORDS


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for part in version.split("."):
        digits = re.match(r"\d+", part)
        if digits is None:
            break
        parts.append(int(digits.group()))
    return tuple(parts)


def _runtime_requirements(project: Path) -> list[str]:
    """`[project].dependencies` of the generated pyproject.toml."""
    import tomllib  # Python 3.11+, checked by the caller

    with (project / "pyproject.toml").open("rb") as file:
        dependencies: list[str] = tomllib.load(file)["project"]["dependencies"]
    return [*dependencies, *EXTRA_RUNTIME_DISTRIBUTIONS]


def _marker_applies(marker: str) -> bool:
    """Whether an environment marker holds here; only python_version is evaluated
    (the one kind the template writes), anything else counts as true."""
    for operator, version in PYTHON_VERSION_MARKER.findall(marker):
        here, there = sys.version_info[:2], _version_tuple(version)
        holds = {
            "<": here < there,
            "<=": here <= there,
            ">": here > there,
            ">=": here >= there,
            "==": here == there,
            "!=": here != there,
        }[operator]
        if not holds:
            return False
    return True


def missing_requirements(project: Path) -> list[str]:
    """The runtime requirements this interpreter lacks (or has too old)."""
    if sys.version_info < MINIMUM_PYTHON:
        return [f"python>={'.'.join(map(str, MINIMUM_PYTHON))}"]
    missing = []
    for entry in _runtime_requirements(project):
        requirement, _, marker = (part.strip() for part in entry.partition(";"))
        if not _marker_applies(marker):
            continue
        match = REQUIREMENT_PATTERN.fullmatch(requirement)
        if match is None:
            missing.append(requirement)
            continue
        name, specifier = match.groups()
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(requirement)
            continue
        minimum = re.fullmatch(r">=\s*([0-9][0-9.]*)", specifier.strip())
        if minimum and _version_tuple(installed) < _version_tuple(minimum.group(1)):
            missing.append(f"{requirement} (found {installed})")
    return missing


def _venv_python() -> str:
    if os.name == "nt":
        return str(Path(".venv", "Scripts", "python.exe"))
    return str(Path(".venv", "bin", "python"))


def _base_python() -> str:
    """A Python of the chosen version to build .venv from (pip's path, without uv)."""
    if sys.version_info >= _version_tuple(PYTHON_VERSION):
        return sys.executable
    return shutil.which(f"python{PYTHON_VERSION}") or f"python{PYTHON_VERSION}"


def plan_environment(project: Path) -> tuple[list[Command], str, str]:
    """The commands that give the project an interpreter with its dependencies.

    Returns (commands, the interpreter to migrate with, why it was chosen).
    """
    missing = missing_requirements(project)
    if not missing:
        return [], sys.executable, "this interpreter already has the project's dependencies"
    why = "this interpreter lacks " + ", ".join(missing)
    python = _venv_python()
    if shutil.which("uv"):  # the versions uv.lock pins (uv sync creates or reuses .venv)
        commands = []
        if not (project / "uv.lock").exists():  # no lock shipped for this Python
            lock_argv = ("uv", "lock", "--python", PYTHON_VERSION)
            commands.append(Command("lock the dependencies (uv.lock)", lock_argv, INSTALL_TIMEOUT))
        sync_argv = ("uv", "sync", "--locked", "--extra", "dev", "--python", PYTHON_VERSION)
        install = Command("install the locked dependencies into .venv", sync_argv, INSTALL_TIMEOUT)
        commands.append(install)
        return commands, python, why
    install_argv = (python, "-m", "pip", "install", "-e", ".[dev]")
    commands = [Command("install the project into .venv", install_argv, INSTALL_TIMEOUT)]
    if not (project / python).exists():  # an existing .venv (e.g. a re-run) is reused
        create_argv = (_base_python(), "-m", "venv", ".venv")
        commands.insert(0, Command("create .venv", create_argv, VENV_TIMEOUT))
    return commands, python, why


def migration_commands(python: str) -> list[Command]:
    return [
        Command(
            "create the database if it is missing",
            (python, "-m", "scripts.db", "create"),
            CREATE_DATABASE_TIMEOUT,
        ),
        Command(
            "upgrade the database to the latest migration",
            (python, "-m", "alembic", "upgrade", "head"),
            UPGRADE_TIMEOUT,
        ),
    ]


def run_command(command: Command, project: Path) -> Outcome:
    """Run one command; the environment (e.g. DATABASE_URL) is passed through."""
    try:
        completed = subprocess.run(
            command.argv,
            cwd=project,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=command.timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return Outcome(False, f"timed out after {command.timeout:.0f} s")
    except OSError as error:
        return Outcome(False, f"could not start: {error}")
    if completed.returncode != 0:
        output = completed.stdout.decode("utf-8", "replace").strip().splitlines()
        tail = "\n".join("    | " + line for line in output[-OUTPUT_TAIL_LINES:])
        return Outcome(False, f"exit status {completed.returncode}\n{tail}".rstrip())
    return Outcome(True)


def _print_commands(project: Path, commands: Sequence[Command]) -> None:
    print(f"    cd {shlex.quote(str(project))}")
    for command in commands:
        print(f"    {command.shell()}")


def first_migration(project: Path, run: Callable[[Command, Path], Outcome] = run_command) -> bool:
    """Bring the new database to the latest migration. Returns True when it did.

    Never raises for a failed command: it reports it and prints what to run later.
    """
    if RUN_FIRST_MIGRATION != "yes":
        setup, python, _ = plan_environment(project)
        print("Not migrating (run_first_migration=no). To create and migrate the database:")
        _print_commands(project, [*setup, *migration_commands(python)])
        return False
    if skip_requested():
        setup, python, _ = plan_environment(project)
        print(f"Skipped the environment and the first migration ({SKIP_SWITCH} is set). Later:")
        _print_commands(project, [*setup, *migration_commands(python)])
        return False

    setup, python, why = plan_environment(project)
    print(f"First migration with {python} ({why}).")
    commands = [*setup, *migration_commands(python)]
    for index, command in enumerate(commands):
        print(f"  - {command.what}: {command.shell()}", flush=True)
        outcome = run(command, project)
        if not outcome.ok:
            print(f"WARNING: could not {command.what}: {outcome.detail}")
            if command not in setup:
                print(DATABASE_HINT)
            print("The project is complete, but its database is not migrated. Run later:")
            _print_commands(project, commands[index:])
            return False
    print("The database is at the latest migration.")
    return True


# ---------------------------------------------------------------------------
# Step 4: summary


def print_summary(project: Path, migrated: bool) -> None:
    try:
        _, python, _ = plan_environment(project)  # the interpreter the commands above use
    except Exception:  # whatever broke step 3 must not break the summary
        python = "python"
    print()
    print(f"Created {PROJECT_SLUG} ({DATABASE}, example models: {INCLUDE_EXAMPLE_MODELS}).")
    print(
        "Database: "
        + ("migrated." if migrated else "not migrated yet (commands above).")
        + " Settings: .env"
    )
    print("Next steps:")
    print(f"    cd {shlex.quote(str(project))}")
    print(f"    {python} -m pytest")
    print(f"    {python} -m uvicorn app.main:create_app --factory --reload")


def main() -> int:
    # Whatever the terminal's encoding, printing must never fail the bake.
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    project = Path.cwd()  # cookiecutter runs this hook in the new project
    prune(project)  # 1. drop what the chosen options do not need
    write_env_file(project)  # 2. .env from .env.example
    try:
        migrated = first_migration(project)  # 3. environment + database + alembic upgrade
    except Exception as error:  # a bug here must not cost the user the project
        print(f"WARNING: the first migration step failed unexpectedly: {error!r}")
        print("The project is complete, but its database is not migrated. Run later:")
        _print_commands(project, migration_commands("python"))
        migrated = False
    print_summary(project, migrated)  # 4. what to do next
    return 0


if __name__ == "__main__":
    sys.exit(main())
