"""Every variant bakes, leaves no template syntax behind, and passes ruff and mypy."""

import json
import re
import subprocess
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, Bakery, matrix_slug, python, run, tail
from tests.locks import LOCKED_PYTHON_VERSIONS
from tests.variants import (
    AUTH_CHOICES,
    AUTH_PATHS,
    BAKED_VARIANTS,
    CI_CHOICES,
    CI_PATHS,
    COMPOSE_MARIADB_PATHS,
    DATABASES,
    DOCKER_PATHS,
    EXAMPLE_PATHS,
    KUBERNETES_PATHS,
    LINT_VARIANTS,
    PGBOUNCER_PATHS,
    PYTHON_VERSIONS,
    SERVER_DATABASE_PATHS,
    TASK_EXAMPLE_PATHS,
    TASK_NO_EXAMPLE_PATHS,
    TASK_NO_USER_PATHS,
    TASK_PATHS,
    TASK_QUEUES,
    UPDATE_PATHS,
    USER_PATHS,
    VARIANTS,
    YES_NO,
    Variant,
)

# Jinja's markers. `${...}` in alembic's script.py.mako is Mako, and legitimate.
LEFTOVER_MARKERS = ("{{", "{%", "{#", "cookiecutter.")
EXAMPLE_MODULE = re.compile(r"\bapp\.posts\b")
USER_MODULE = re.compile(r"\bapp\.(users|api)\b")


def _files(project: Path) -> dict[str, bytes]:
    return {
        path.relative_to(project).as_posix(): path.read_bytes()
        for path in sorted(project.rglob("*"))
        if path.is_file()
    }


def test_variants_cover_every_choice() -> None:
    """tests/variants.py lists exactly the choices cookiecutter.json offers."""
    choices = json.loads((REPO_ROOT / "cookiecutter.json").read_text(encoding="utf-8"))
    assert tuple(choices["database"]) == DATABASES
    assert tuple(choices["python_version"]) == PYTHON_VERSIONS
    assert tuple(choices["include_example_models"]) == YES_NO
    assert tuple(choices["run_first_migration"]) == YES_NO
    assert tuple(choices["use_docker"]) == YES_NO
    assert tuple(choices["ci"]) == CI_CHOICES
    assert tuple(choices["auth"]) == AUTH_CHOICES
    assert tuple(choices["task_queue"]) == TASK_QUEUES
    assert len(VARIANTS) == len(set(VARIANTS)) == 576 * 2


@pytest.mark.parametrize("variant", BAKED_VARIANTS, ids=str)
def test_bakes(bakery: Bakery, variant: Variant) -> None:
    result = bakery.bake(variant)
    assert result.exception is None, repr(result.exception)
    assert result.exit_code == 0
    project = bakery.project(variant)
    assert project.name == matrix_slug()
    assert (project / "pyproject.toml").is_file()
    # The post-generation hook wrote .env from the example, with a fresh password.
    env = (project / ".env").read_text(encoding="utf-8")
    example = (project / ".env.example").read_text(encoding="utf-8")
    assert "change-me" not in env
    assert env.splitlines()[:4] == example.splitlines()[:4]
    assert len(env.splitlines()) == len(example.splitlines())
    # Every bake of a locked Python version ships its lock (tests/test_locks.py checks
    # it matches); only the others lock at bake time.
    lock = project / "uv.lock"
    assert lock.is_file() == (variant.python_version in LOCKED_PYTHON_VERSIONS), variant


@pytest.mark.parametrize("variant", BAKED_VARIANTS, ids=str)
def test_no_template_syntax_left(bakery: Bakery, variant: Variant) -> None:
    project = bakery.project(variant)
    leftovers = []
    for path in sorted(project.rglob("*")):
        relative = path.relative_to(project).as_posix()
        leftovers += [f"{relative}: in the path" for m in LEFTOVER_MARKERS if m in relative]
        if not path.is_file():
            continue
        data = path.read_bytes()
        if b"\0" in data:
            continue  # binary
        for number, line in enumerate(data.decode("utf-8").splitlines(), start=1):
            leftovers += [
                f"{relative}:{number}: {line.strip()}" for m in LEFTOVER_MARKERS if m in line
            ]
    assert not leftovers, "\n".join(leftovers)


# What authentication brings: nothing of it may be left in an auth=none bake.
CACHES = {".mypy_cache", ".ruff_cache", ".pytest_cache", "__pycache__"}
# (Not "bearer": /metrics, the web's and a worker's, take a bearer token in every variant.)
AUTH_MENTION = re.compile(r"jwt|pwdlib|argon2|refresh.token|app\.auth|oauth2", re.IGNORECASE)


@pytest.mark.parametrize("variant", LINT_VARIANTS, ids=str)
def test_without_auth_nothing_of_it_is_left(bakery: Bakery, variant: Variant) -> None:
    project = bakery.project(variant)
    mentions = sorted(
        {
            path.relative_to(project).as_posix()
            for path in project.rglob("*")
            if path.is_file()
            and not CACHES.intersection(path.relative_to(project).parts)
            and AUTH_MENTION.search(path.read_text(encoding="utf-8", errors="replace"))
        }
    )
    if variant.auth == "none":
        assert mentions == []
    else:
        assert "app/auth/tokens.py" in mentions


# What the task queue brings: nothing of it may be left in a task_queue=none bake (its
# answer is recorded in pyproject.toml's [tool.template-answers], by design).
TASK_QUEUE_MENTION = re.compile(
    r"taskiq|rabbitmq|amqp|outbox|broker|aio.pika|aiormq|smtp|processed_tasks|dead.letter"
    r"|task.queue|scripts\.worker|make worker",
    re.IGNORECASE,
)
RECORDED_ANSWER = 'task_queue = "none"\n'


@pytest.mark.parametrize("variant", LINT_VARIANTS, ids=str)
def test_without_a_task_queue_nothing_of_it_is_left(bakery: Bakery, variant: Variant) -> None:
    project = bakery.project(variant)
    mentions = sorted(
        {
            path.relative_to(project).as_posix()
            for path in project.rglob("*")
            if path.is_file()
            and not CACHES.intersection(path.relative_to(project).parts)
            and TASK_QUEUE_MENTION.search(
                path.read_text(encoding="utf-8", errors="replace").replace(RECORDED_ANSWER, "")
            )
        }
    )
    if variant.task_queue == "none":
        assert mentions == []
    else:
        assert "app/tasks/relay.py" in mentions


def _imports(project: Path, module: re.Pattern[str]) -> list[str]:
    return [
        f"{path.relative_to(project)}: {match.group()}"
        for path in sorted(project.rglob("*.py"))
        for match in module.finditer(path.read_text(encoding="utf-8"))
    ]


@pytest.mark.parametrize("variant", BAKED_VARIANTS, ids=str)
def test_example_domain_present_only_when_asked(bakery: Bakery, variant: Variant) -> None:
    """The example domain comes with include_example_models; users and roles with it
    or with auth=jwt (the accounts it logs in); and nothing imports what was removed."""
    project = bakery.project(variant)
    examples = variant.include_example_models == "yes"
    users = examples or variant.auth == "jwt"
    present = [p for p in EXAMPLE_PATHS if (project / p).exists()]
    assert present == (list(EXAMPLE_PATHS) if examples else [])
    with_users = [p for p in USER_PATHS if (project / p).exists()]
    assert with_users == (list(USER_PATHS) if users else [])
    if not examples:
        assert _imports(project, EXAMPLE_MODULE) == []
    if not users:
        assert _imports(project, USER_MODULE) == []


@pytest.mark.parametrize("variant", BAKED_VARIANTS, ids=str)
def test_option_files_present_only_when_asked(bakery: Bakery, variant: Variant) -> None:
    project = bakery.project(variant)
    docker = [p for p in DOCKER_PATHS if (project / p).exists()]
    assert docker == (list(DOCKER_PATHS) if variant.use_docker == "yes" else [])
    ci = [name for name, path in CI_PATHS.items() if (project / path).exists()]
    assert ci == ([variant.ci] if variant.ci != "none" else [])
    auth = [p for p in AUTH_PATHS if (project / p).exists()]
    assert auth == (list(AUTH_PATHS) if variant.auth == "jwt" else [])
    updates = [name for name, path in UPDATE_PATHS.items() if (project / path).exists()]
    assert updates == ci
    server_only = [p for p in SERVER_DATABASE_PATHS if (project / p).exists()]
    assert server_only == ([] if variant.database == "sqlite" else list(SERVER_DATABASE_PATHS))
    mariadb = [p for p in COMPOSE_MARIADB_PATHS if (project / p).exists()]
    with_mariadb = variant.database == "mysql" and variant.use_docker == "yes"
    assert mariadb == (list(COMPOSE_MARIADB_PATHS) if with_mariadb else [])
    kubernetes = [p for p in KUBERNETES_PATHS if (project / p).exists()]
    with_kubernetes = variant.database != "sqlite" and variant.use_docker == "yes"
    assert kubernetes == (list(KUBERNETES_PATHS) if with_kubernetes else [])
    pgbouncer = [p for p in PGBOUNCER_PATHS if (project / p).exists()]
    with_pgbouncer = with_kubernetes and variant.database == "postgresql"
    assert pgbouncer == (list(PGBOUNCER_PATHS) if with_pgbouncer else [])
    tasks = [p for p in TASK_PATHS if (project / p).exists()]
    expected = [p for p in TASK_PATHS if with_kubernetes or not p.startswith("deploy/")]
    assert tasks == (expected if variant.task_queue == "taskiq" else [])
    with_examples = variant.task_queue == "taskiq" and variant.include_example_models == "yes"
    without_examples = variant.task_queue == "taskiq" and variant.include_example_models == "no"
    examples = [p for p in TASK_EXAMPLE_PATHS if (project / p).exists()]
    assert examples == (list(TASK_EXAMPLE_PATHS) if with_examples else [])
    no_examples = [p for p in TASK_NO_EXAMPLE_PATHS if (project / p).exists()]
    assert no_examples == (list(TASK_NO_EXAMPLE_PATHS) if without_examples else [])
    without_users = without_examples and variant.auth == "none"
    no_users = [p for p in TASK_NO_USER_PATHS if (project / p).exists()]
    assert no_users == (list(TASK_NO_USER_PATHS) if without_users else [])


@pytest.mark.parametrize("variant", [v for v in BAKED_VARIANTS if v not in LINT_VARIANTS], ids=str)
def test_non_python_options_change_no_python_file(bakery: Bakery, variant: Variant) -> None:
    """run_first_migration, use_docker and ci leave the Python code alone, so the
    linters need to run on one variant of each group only."""

    def python_files(project: Path) -> dict[str, object]:
        code: dict[str, object] = {
            name: data for name, data in _files(project).items() if name.endswith((".py", ".ini"))
        }
        pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
        del pyproject["tool"]["template-answers"]  # records every answer, by design
        code["pyproject.toml"] = pyproject
        return code

    assert python_files(bakery.project(variant)) == python_files(
        bakery.project(variant.lint_variant)
    )


RUFF_COMMANDS = (("check", "--no-cache", "."), ("format", "--check", "--no-cache", "."))


def _lint(project: Path, mypy_cache: Path) -> dict[str, subprocess.CompletedProcess[str]]:
    results = {
        f"ruff {' '.join(command)}": run(python("-m", "ruff", *command), cwd=project)
        for command in RUFF_COMMANDS
    }
    env = {"MYPY_CACHE_DIR": str(mypy_cache)}
    results["mypy"] = run(python("-m", "mypy", "."), cwd=project, env=env)
    return results


@pytest.fixture(scope="session")
def lint_results(
    bakery: Bakery, tmp_path_factory: pytest.TempPathFactory
) -> dict[Variant, dict[str, subprocess.CompletedProcess[str]]]:
    """ruff and mypy on every lint variant, two at a time (the machine's two cores;
    nothing here is timed). One mypy cache per python_version, its setting changing
    every cached result: the variants of one version run one after the other and
    re-check only what differs."""
    projects = {variant: bakery.project(variant) for variant in LINT_VARIANTS}  # bakes here
    base = tmp_path_factory.getbasetemp() / "mypy-cache"

    def lint_version(version: str) -> dict[Variant, dict[str, subprocess.CompletedProcess[str]]]:
        return {
            variant: _lint(project, base / version)
            for variant, project in projects.items()
            if variant.python_version == version
        }

    with ThreadPoolExecutor(max_workers=2) as pool:
        per_version = list(pool.map(lint_version, PYTHON_VERSIONS))
    return {variant: result for results in per_version for variant, result in results.items()}


@pytest.mark.parametrize("variant", LINT_VARIANTS, ids=str)
def test_ruff(
    lint_results: dict[Variant, dict[str, subprocess.CompletedProcess[str]]], variant: Variant
) -> None:
    for name, result in lint_results[variant].items():
        if name.startswith("ruff"):
            assert result.returncode == 0, f"{name}:\n{tail(result.stdout)}"


@pytest.mark.parametrize("variant", LINT_VARIANTS, ids=str)
def test_mypy(
    lint_results: dict[Variant, dict[str, subprocess.CompletedProcess[str]]], variant: Variant
) -> None:
    result = lint_results[variant]["mypy"]
    assert result.returncode == 0, tail(result.stdout)
    assert "Success: no issues found" in result.stdout


@pytest.mark.parametrize("variant", LINT_VARIANTS, ids=str)
def test_answers_and_template_version_recorded(bakery: Bakery, variant: Variant) -> None:
    """Bug reports can quote how a project was made, and from which template release."""
    with (bakery.project(variant) / "pyproject.toml").open("rb") as file:
        recorded = tomllib.load(file)["tool"]["template-answers"]
    changelog = (REPO_ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    latest = re.search(r"^## \[(\d+\.\d+\.\d+)\]", changelog, re.MULTILINE)
    assert latest is not None
    assert recorded.pop("template_version") == latest.group(1)
    answers = variant.answers
    del answers["run_first_migration"]
    assert recorded == answers
