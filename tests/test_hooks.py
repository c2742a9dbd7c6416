"""The hooks: bad answers stop the bake, odd-but-valid ones bake, and the first
migration works, warns, or is skipped as documented."""

import ast
import compileall
import shlex
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from cookiecutter.exceptions import FailedHookException
from dotenv import dotenv_values
from sqlalchemy.engine import make_url

from tests.conftest import (
    RUN_ID,
    SKIP_SWITCH,
    Cookies,
    DatabaseServer,
    import_hook,
    python,
    render_context,
    render_hook,
    render_template_file,
    run,
)
from tests.variants import (
    AUTH_PATHS,
    CI_PATHS,
    COMPOSE_MARIADB_PATHS,
    DATABASES,
    DOCKER_PATHS,
    EXAMPLE_PATHS,
    KUBERNETES_PATHS,
    PGBOUNCER_PATHS,
    SERVER_DATABASE_PATHS,
    TASK_EXAMPLE_PATHS,
    TASK_NO_EXAMPLE_PATHS,
    TASK_NO_USER_PATHS,
    TASK_PATHS,
    USER_PATHS,
)

DEFAULT_SLUG_ERROR = (
    "use lowercase letters, digits, single '-' or '_' between them, starting with a "
    "letter and ending with a letter or digit"
)
QUOTED_HINT = "is written into Python and TOML double-quoted strings"


def _assert_nothing_left(tmp_path: Path) -> None:
    """pytest-cookies bakes into tmp_path/cookies/bakeNN: each must be empty."""
    left = [p for p in (tmp_path / "cookies").rglob("*") if not p.name.startswith("bake")]
    assert left == []


# ---------------------------------------------------------------------------
# Pre-generation: bad answers


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        pytest.param(
            {"project_slug": "My Slug"},
            f"ERROR: project_slug 'My Slug' is invalid: {DEFAULT_SLUG_ERROR}",
            id="slug-with-space-and-capitals",
        ),
        pytest.param(
            {"project_slug": "1abc"},
            f"ERROR: project_slug '1abc' is invalid: {DEFAULT_SLUG_ERROR}",
            id="slug-starting-with-digit",
        ),
        pytest.param(
            {"project_slug": "abc-"},
            f"ERROR: project_slug 'abc-' is invalid: {DEFAULT_SLUG_ERROR}",
            id="slug-ending-with-dash",
        ),
        pytest.param(
            {"project_slug": "my--service"},  # PEP 503 would name it my-service
            f"ERROR: project_slug 'my--service' is invalid: {DEFAULT_SLUG_ERROR}",
            id="slug-with-two-separators-in-a-row",
        ),
        pytest.param(
            {"project_name": "2048 Game"},  # the derived slug starts with a digit
            f"ERROR: project_slug '2048-game' is invalid: {DEFAULT_SLUG_ERROR}",
            id="derived-slug-starting-with-digit",
        ),
        pytest.param(
            {"project_slug": "a" * 59},
            f"ERROR: project_slug '{'a' * 59}' is too long (59 characters): use at most 58",
            id="slug-too-long",
        ),
        pytest.param(
            # (With no slug given, the derived slug is empty too: see the test below.)
            {"project_name": "", "project_slug": "empty"},
            "ERROR: project_name is empty: give the project a name",
            id="empty-name",
        ),
        pytest.param(
            {"project_name": "   ", "project_slug": "blank"},
            "ERROR: project_name is empty: give the project a name",
            id="blank-name",
        ),
        pytest.param(
            {"project_name": 'The "Best" Service'},
            'ERROR: project_name \'The "Best" Service\' contains a double quote ("): '
            f"remove it; project_name {QUOTED_HINT}",
            id="name-with-double-quote",
        ),
        pytest.param(
            {"project_name": "Back\\slash"},
            "ERROR: project_name 'Back\\\\slash' contains a backslash (\\): "
            f"remove it; project_name {QUOTED_HINT}",
            id="name-with-backslash",
        ),
        pytest.param(
            {"project_name": "Two\nLines", "project_slug": "two-lines"},
            "ERROR: project_name 'Two\\nLines' contains a control character (U+000A)",
            id="name-with-newline",
        ),
        pytest.param(
            {"description": 'Says "hi"'},
            "ERROR: description 'Says \"hi\"' contains a double quote",
            id="description-with-double-quote",
        ),
        pytest.param(
            {"author_name": "C:\\Users"},
            "ERROR: author_name 'C:\\\\Users' contains a backslash",
            id="author-with-backslash",
        ),
        pytest.param(
            {"author_email": "not-an-email"},
            "ERROR: author_email 'not-an-email' is not an email address: "
            "use the form name@example.com",
            id="email-without-at",
        ),
        pytest.param(
            {"author_email": "ada lovelace@example.com"},
            "ERROR: author_email 'ada lovelace@example.com' is not an email address",
            id="email-with-space",
        ),
    ],
)
def test_bad_answer_stops_the_bake(
    cookies: Cookies,
    capfd: pytest.CaptureFixture[str],
    tmp_path: Path,
    answers: dict[str, str],
    message: str,
) -> None:
    result = cookies.bake(extra_context=answers)
    err = capfd.readouterr().err
    assert isinstance(result.exception, FailedHookException), repr(result.exception)
    assert result.exit_code != 0
    assert result.project_path is None
    # One line, from the hook, saying what is wrong and how to fix it.
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith(message), err
    _assert_nothing_left(tmp_path)


def test_empty_name_without_slug_is_refused_before_anything_is_written(
    cookies: Cookies, tmp_path: Path
) -> None:
    """The derived slug is empty: cookiecutter refuses to write into the output
    directory itself before any hook runs."""
    result = cookies.bake(extra_context={"project_name": ""})
    assert result.exception is not None
    assert result.project_path is None
    _assert_nothing_left(tmp_path)


def test_unsupported_python_version_is_refused_before_anything_is_written(
    cookies: Cookies, tmp_path: Path
) -> None:
    """Cookiecutter itself checks choice answers; the pre-gen hook re-checks
    (below), e.g. for a replayed or hand-edited context."""
    result = cookies.bake(extra_context={"python_version": "3.10"})
    assert isinstance(result.exception, ValueError)
    assert "python_version" in str(result.exception)
    _assert_nothing_left(tmp_path)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        (
            "python_version",
            "3.10",
            "ERROR: python_version '3.10' is not supported: choose one of 3.11, 3.12, 3.13, 3.14",
        ),
        (
            "database",
            "oracle",
            "ERROR: database 'oracle' is not supported: choose one of sqlite, postgresql, mysql",
        ),
        (
            "include_example_models",
            "maybe",
            "ERROR: include_example_models 'maybe' is not supported: choose one of yes, no",
        ),
        ("auth", "oauth", "ERROR: auth 'oauth' is not supported: choose one of none, jwt"),
        (
            "task_queue",
            "celery",
            "ERROR: task_queue 'celery' is not supported: choose one of none, taskiq",
        ),
    ],
)
def test_pre_gen_hook_checks_choices(tmp_path: Path, field: str, value: str, message: str) -> None:
    context = render_context()
    context[field] = value
    hook = render_hook("pre_gen_project", tmp_path, context)
    result = run(python(str(hook)), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout.strip() == message


def test_pre_gen_hook_survives_characters_beyond_the_bmp(tmp_path: Path) -> None:
    """JSON writes them as surrogate pairs; the hook must rejoin them."""
    hook = render_hook("pre_gen_project", tmp_path, render_context(project_name="Rocket 🚀\t"))
    result = run(python(str(hook)), cwd=tmp_path, env={"PYTHONIOENCODING": "ascii"})
    assert result.returncode == 1
    assert result.stdout.strip() == (
        "ERROR: project_name 'Rocket \\U0001f680\\t' contains a control character (U+0009): "
        f"remove it; project_name {QUOTED_HINT} (apostrophes and accents are fine)"
    )


# ---------------------------------------------------------------------------
# Pre-generation: valid but unusual answers


def test_apostrophes_and_unicode_bake_a_valid_project(
    cookies: Cookies, clean_environment: pytest.MonkeyPatch
) -> None:
    clean_environment.setenv(SKIP_SWITCH, "1")
    answers = {
        "project_name": "O'Brien's Café Ünïcode 🚀",
        "description": "L'été à Zürich: naïve café service, 100% async 🚀",
        "author_name": "Zoë O'Connor-Núñez",
        "author_email": "zoe.o'connor@exämple.com",
    }
    result = cookies.bake(extra_context=answers)
    assert result.exception is None, repr(result.exception)
    project = result.project_path
    assert project is not None
    assert project.name == "o-brien-s-cafe-unicode"

    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["description"] == answers["description"]
    assert pyproject["project"]["authors"] == [
        {"name": answers["author_name"], "email": answers["author_email"]}
    ]
    assert compileall.compile_dir(project, quiet=1, force=True, legacy=True) is True

    main = ast.parse((project / "app/main.py").read_text(encoding="utf-8"))
    keywords = {
        k.arg: ast.literal_eval(k.value)
        for node in ast.walk(main)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "FastAPI"
        for k in node.keywords
        if isinstance(k.value, ast.Constant)
    }
    assert keywords["title"] == answers["project_name"]
    assert keywords["description"] == answers["description"]
    readme = (project / "README.md").read_text(encoding="utf-8")
    assert readme.startswith(f"# {answers['project_name']}")

    # The answers land in these modules: no ruff rule objects to them. (The whole
    # project is linted by test_bake.py.)
    files = ("app/__init__.py", "app/main.py")
    for command in (("check", "--no-cache", *files), ("format", "--check", "--no-cache", *files)):
        lint = run(python("-m", "ruff", *command), cwd=project)
        assert lint.returncode == 0, lint.stdout


# ---------------------------------------------------------------------------
# Post-generation: the first migration, for real


def _alembic_current(project: Path, env: dict[str, str] | None = None) -> str:
    result = run(python("-m", "alembic", "current"), cwd=project, env=env)
    assert result.returncode == 0, result.stdout
    return result.stdout


def test_default_bake_is_migrated_and_runnable(
    cookies: Cookies, capfd: pytest.CaptureFixture[str], clean_environment: pytest.MonkeyPatch
) -> None:
    """`cookiecutter . --no-input`: SQLite, examples, and the first migration."""
    result = cookies.bake()
    out = capfd.readouterr().out
    assert result.exception is None, repr(result.exception)
    project = result.project_path
    assert project is not None
    assert project.name == "my-service"
    assert "The database is at the latest migration." in out, out
    assert (project / "my_service.db").is_file()
    assert "0001 (head)" in _alembic_current(project)
    # ...and the service answers on its database.
    check = run(
        python(
            "-c",
            "from fastapi.testclient import TestClient\n"
            "from app.main import create_app\n"
            "with TestClient(create_app()) as client:\n"
            "    response = client.get('/health')\n"
            "    assert response.status_code == 200, response.text\n"
            "    print(response.json())",
        ),
        cwd=project,
    )
    assert check.returncode == 0, check.stdout
    assert "'database': 'ok'" in check.stdout


@pytest.mark.parametrize(
    ("database_server", "include_example_models"),
    [("postgresql", "yes"), ("mysql", "yes"), ("sqlite", "no")],
    indirect=["database_server"],
)
def test_first_migration_on_each_database(
    cookies: Cookies,
    capfd: pytest.CaptureFixture[str],
    clean_environment: pytest.MonkeyPatch,
    database_server: DatabaseServer,
    throwaway_databases: list[str],
    include_example_models: str,
) -> None:
    """The hook creates the database named after the slug and migrates it. (Without
    Docker: with Docker, .env points at compose's database, tested below.)"""
    slug = f"ckt-{RUN_ID}-hook-{database_server.database}"
    database_name = slug.replace("-", "_")
    if database_server.database != "sqlite":
        # The hook uses the project's .env URL (the live server): drop it afterwards.
        throwaway_databases.append(database_name)
    result = cookies.bake(
        extra_context={
            "project_slug": slug,
            "database": database_server.database,
            "include_example_models": include_example_models,
            "use_docker": "no",
        }
    )
    out = capfd.readouterr().out
    assert result.exception is None, repr(result.exception)
    project = result.project_path
    assert project is not None
    assert "The database is at the latest migration." in out, out
    assert "0001 (head)" in _alembic_current(project)
    if database_server.database == "sqlite":
        assert (project / f"{database_name}.db").is_file()


@pytest.mark.parametrize(
    ("database", "unreachable_url"),
    [
        ("postgresql", "postgresql+asyncpg://postgres@127.0.0.1:1/ckt_unreachable"),
        ("mysql", "mysql+aiomysql://root@127.0.0.1:1/ckt_unreachable?charset=utf8mb4"),
        # A database file under a regular file: its folder cannot be created.
        ("sqlite", "sqlite+aiosqlite:////dev/null/ckt_unreachable.db"),
    ],
)
def test_unreachable_database_warns_and_keeps_the_project(
    cookies: Cookies,
    capfd: pytest.CaptureFixture[str],
    clean_environment: pytest.MonkeyPatch,
    database: str,
    unreachable_url: str,
) -> None:
    clean_environment.setenv("DATABASE_URL", unreachable_url)
    result = cookies.bake(extra_context={"database": database})
    out = capfd.readouterr().out
    assert result.exception is None, repr(result.exception)
    assert result.exit_code == 0
    project = result.project_path
    assert project is not None
    assert (project / "app/main.py").is_file()
    assert "WARNING: could not create the database if it is missing" in out, out
    assert "and is DATABASE_URL right? (.env, or the environment, which wins)" in out
    later = out.split("Run later:\n", 1)[1].splitlines()[:3]
    interpreter = shlex.quote(sys.executable)
    assert later == [
        f"    cd {shlex.quote(str(project))}",
        f"    {interpreter} -m scripts.db create",
        f"    {interpreter} -m alembic upgrade head",
    ]


@pytest.mark.parametrize("database", ["postgresql", "mysql"])
def test_with_docker_the_first_migration_targets_composes_database(
    cookies: Cookies,
    capfd: pytest.CaptureFixture[str],
    clean_environment: pytest.MonkeyPatch,
    database: str,
) -> None:
    """.env logs in as compose's `app` user, whom the servers here do not know: the
    migration fails, the project stays, and the hint says to start compose's database."""
    result = cookies.bake(extra_context={"database": database, "use_docker": "yes"})
    out = capfd.readouterr().out
    assert result.exception is None, repr(result.exception)
    project = result.project_path
    assert project is not None
    assert "WARNING: could not create the database if it is missing" in out, out
    assert "Is the database running (docker compose up -d db)" in out, out
    assert make_url(dotenv_values(project / ".env")["DATABASE_URL"] or "").username == "app"


@pytest.mark.parametrize("how", ["skip-switch", "run_first_migration=no"])
def test_no_migration_when_asked(
    cookies: Cookies,
    capfd: pytest.CaptureFixture[str],
    clean_environment: pytest.MonkeyPatch,
    how: str,
) -> None:
    if how == "skip-switch":
        clean_environment.setenv(SKIP_SWITCH, "1")
        result = cookies.bake()
        expected = f"Skipped the environment and the first migration ({SKIP_SWITCH} is set)"
    else:
        result = cookies.bake(extra_context={"run_first_migration": "no"})
        expected = "Not migrating (run_first_migration=no)"
    out = capfd.readouterr().out
    assert result.exception is None, repr(result.exception)
    project = result.project_path
    assert project is not None
    assert expected in out, out
    assert f"{shlex.quote(sys.executable)} -m alembic upgrade head" in out
    assert not (project / "my_service.db").exists()
    assert not (project / ".venv").exists()


# ---------------------------------------------------------------------------
# Post-generation: its steps, one by one (the hook imported as a module)


@pytest.fixture
def post_gen(tmp_path: Path) -> Any:
    return import_hook("post_gen_project", tmp_path / "hook", render_context())


def test_pruned_paths_match_the_tests(post_gen: Any) -> None:
    assert post_gen.EXAMPLE_PATHS == EXAMPLE_PATHS
    assert post_gen.USER_PATHS == USER_PATHS
    assert post_gen.DOCKER_PATHS == DOCKER_PATHS
    assert post_gen.SERVER_DATABASE_PATHS == SERVER_DATABASE_PATHS
    assert post_gen.COMPOSE_MARIADB_PATHS == COMPOSE_MARIADB_PATHS
    assert post_gen.AUTH_PATHS == AUTH_PATHS
    assert post_gen.TASK_PATHS == TASK_PATHS
    assert post_gen.TASK_EXAMPLE_PATHS == TASK_EXAMPLE_PATHS
    assert post_gen.TASK_NO_EXAMPLE_PATHS == TASK_NO_EXAMPLE_PATHS
    assert post_gen.TASK_NO_USER_PATHS == TASK_NO_USER_PATHS
    assert post_gen.KUBERNETES_PATHS == KUBERNETES_PATHS
    assert post_gen.PGBOUNCER_PATHS == PGBOUNCER_PATHS
    assert {ci: paths[0] for ci, paths in post_gen.CI_PATHS.items()} == {
        ci: path.split("/")[0] for ci, path in CI_PATHS.items()
    }


GITLAB = (".gitlab-ci.yml", "renovate.json")
# Everything of the task queue: what task_queue=none removes.
NO_TASKS = (*TASK_PATHS, *TASK_EXAMPLE_PATHS, *TASK_NO_EXAMPLE_PATHS, *TASK_NO_USER_PATHS)


@pytest.mark.parametrize(
    ("answers", "removed"),
    [
        (
            {},
            [
                *GITLAB,
                *SERVER_DATABASE_PATHS,
                *COMPOSE_MARIADB_PATHS,
                *KUBERNETES_PATHS,
                *AUTH_PATHS,
                *NO_TASKS,
            ],
        ),
        ({"database": "postgresql"}, [*GITLAB, *COMPOSE_MARIADB_PATHS, *AUTH_PATHS, *NO_TASKS]),
        ({"database": "postgresql", "auth": "jwt"}, [*GITLAB, *COMPOSE_MARIADB_PATHS, *NO_TASKS]),
        (
            {"database": "postgresql", "task_queue": "taskiq"},
            [
                *GITLAB,
                *COMPOSE_MARIADB_PATHS,
                *AUTH_PATHS,
                *TASK_NO_EXAMPLE_PATHS,
                *TASK_NO_USER_PATHS,
            ],
        ),
        (
            {"include_example_models": "no", "task_queue": "taskiq"},
            [
                *GITLAB,
                *SERVER_DATABASE_PATHS,
                *COMPOSE_MARIADB_PATHS,
                *KUBERNETES_PATHS,
                *AUTH_PATHS,
                *EXAMPLE_PATHS,
                *USER_PATHS,
                *TASK_EXAMPLE_PATHS,
            ],
        ),
        (
            {"include_example_models": "no", "auth": "jwt", "task_queue": "taskiq"},
            [
                *GITLAB,
                *SERVER_DATABASE_PATHS,
                *COMPOSE_MARIADB_PATHS,
                *KUBERNETES_PATHS,
                *EXAMPLE_PATHS,
                *TASK_EXAMPLE_PATHS,
                *TASK_NO_USER_PATHS,
            ],
        ),
        (
            {"ci": "gitlab", "database": "mysql"},
            [".github", *PGBOUNCER_PATHS, *AUTH_PATHS, *NO_TASKS],
        ),
        (
            {"ci": "none", "use_docker": "no", "database": "mysql"},
            [
                ".github",
                *GITLAB,
                *DOCKER_PATHS,
                *COMPOSE_MARIADB_PATHS,
                *KUBERNETES_PATHS,
                *AUTH_PATHS,
                *NO_TASKS,
            ],
        ),
        (
            {"include_example_models": "no", "ci": "gitlab"},
            [
                *AUTH_PATHS,
                *NO_TASKS,
                *EXAMPLE_PATHS,
                *USER_PATHS,
                ".github",
                *SERVER_DATABASE_PATHS,
                *COMPOSE_MARIADB_PATHS,
                *KUBERNETES_PATHS,
            ],
        ),
        (
            {"include_example_models": "no", "auth": "jwt", "database": "mysql"},
            [*EXAMPLE_PATHS, *GITLAB, *PGBOUNCER_PATHS, *NO_TASKS],
        ),
    ],
)
def test_unwanted_paths_follow_the_answers(
    tmp_path: Path, answers: dict[str, str], removed: list[str]
) -> None:
    hook = import_hook("post_gen_project", tmp_path / "hook", render_context(**answers))
    assert sorted(hook.unwanted_paths()) == sorted(removed)


def test_prune_tolerates_missing_paths(tmp_path: Path) -> None:
    hook = import_hook(
        "post_gen_project", tmp_path / "hook", render_context(include_example_models="no")
    )
    project = tmp_path / "project"
    (project / "app/users").mkdir(parents=True)
    (project / "app/users/models.py").write_text("", encoding="utf-8")
    (project / "app/main.py").write_text("", encoding="utf-8")
    hook.prune(project)
    assert not (project / "app/users").exists()
    assert (project / "app/main.py").exists()


def test_env_file_gets_a_fresh_value_for_each_secret(post_gen: Any, tmp_path: Path) -> None:
    example = (
        "A=1\nDATABASE_URL=postgresql+asyncpg://app:change-me@127.0.0.1:5432/db\n"
        "SECRET_KEY=change-me\nDB_PASSWORD=change-me\n"
    )
    (tmp_path / ".env.example").write_text(example, encoding="utf-8")
    post_gen.write_env_file(tmp_path)
    first = (tmp_path / ".env").read_text(encoding="utf-8")
    lines = first.splitlines()
    assert lines[0] == "A=1"
    names = [line.partition("=")[0] for line in lines[1:]]
    assert names == ["DATABASE_URL", "SECRET_KEY", "DB_PASSWORD"]
    url, secret, password = (line.partition("=")[2] for line in lines[1:])
    assert len(secret) >= 32
    assert len(password) >= 32
    assert post_gen.PLACEHOLDER_SECRET not in (secret, password)
    assert secret != password  # one value per secret, not one for all
    assert make_url(url).password == password  # the URL logs in as compose's user
    (tmp_path / ".env").unlink()
    post_gen.write_env_file(tmp_path)
    assert (tmp_path / ".env").read_text(encoding="utf-8") != first  # random per bake


def test_the_broker_url_gets_the_broker_password(post_gen: Any, tmp_path: Path) -> None:
    example = (
        "DATABASE_URL=postgresql+asyncpg://app:change-me@127.0.0.1:5432/db\n"
        "DB_PASSWORD=change-me\n"
        "BROKER_URL=amqp://app:change-me@127.0.0.1:5672/\n"
        "BROKER_PASSWORD=change-me\n"
    )
    (tmp_path / ".env.example").write_text(example, encoding="utf-8")
    post_gen.write_env_file(tmp_path)
    env = dotenv_values(tmp_path / ".env")
    assert make_url(env["BROKER_URL"] or "").password == env["BROKER_PASSWORD"]
    assert make_url(env["DATABASE_URL"] or "").password == env["DB_PASSWORD"]
    assert env["BROKER_PASSWORD"] != env["DB_PASSWORD"]
    assert "change-me" not in (tmp_path / ".env").read_text(encoding="utf-8")


def test_env_file_is_never_overwritten(post_gen: Any, tmp_path: Path) -> None:
    (tmp_path / ".env.example").write_text("DATABASE_URL=example\n", encoding="utf-8")
    post_gen.write_env_file(tmp_path)
    assert (tmp_path / ".env").read_text(encoding="utf-8") == "DATABASE_URL=example\n"
    (tmp_path / ".env").write_text("DATABASE_URL=mine\n", encoding="utf-8")
    post_gen.write_env_file(tmp_path)
    assert (tmp_path / ".env").read_text(encoding="utf-8") == "DATABASE_URL=mine\n"


def _project_with_dependencies(tmp_path: Path, *dependencies: str) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    quoted = ", ".join(f'"{d}"' for d in dependencies)
    (project / "pyproject.toml").write_text(
        f'[project]\nname = "x"\ndependencies = [{quoted}]\n', encoding="utf-8"
    )
    return project


@pytest.mark.parametrize("database", DATABASES)
def test_this_interpreter_satisfies_every_baked_project(
    post_gen: Any, tmp_path: Path, database: str
) -> None:
    """So the bakes in these tests migrate with sys.executable, without a venv."""
    context = render_context(database=database)
    render_template_file("pyproject.toml", tmp_path, context)
    assert post_gen.missing_requirements(tmp_path) == []
    commands, interpreter, _ = post_gen.plan_environment(tmp_path)
    assert commands == []
    assert interpreter == sys.executable


def test_dependencies_for_other_pythons_are_not_required(post_gen: Any, tmp_path: Path) -> None:
    project = _project_with_dependencies(
        tmp_path,
        "no-such-distribution-ckt>=1.0; python_version < '3.0'",
        "other-missing-ckt>=1.0; python_version >= '3.0'",
    )
    assert post_gen.missing_requirements(project) == ["other-missing-ckt>=1.0"]


def test_missing_or_old_dependencies_are_reported(post_gen: Any, tmp_path: Path) -> None:
    project = _project_with_dependencies(
        tmp_path, "sqlalchemy>=99.0", "no-such-distribution-ckt>=1.0", "alembic>=1.0"
    )
    missing = post_gen.missing_requirements(project)
    assert missing[0].startswith("sqlalchemy>=99.0 (found ")
    assert missing[1:] == ["no-such-distribution-ckt>=1.0"]


@pytest.mark.parametrize("uv", [True, False], ids=["with-uv", "without-uv"])
def test_environment_is_built_when_dependencies_are_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, uv: bool
) -> None:
    hook = import_hook("post_gen_project", tmp_path / "hook", render_context(python_version="3.11"))
    project = _project_with_dependencies(tmp_path, "no-such-distribution-ckt>=1.0")
    monkeypatch.setattr(
        hook.shutil, "which", lambda name: f"/usr/bin/{name}" if uv and name == "uv" else None
    )
    commands, interpreter, why = hook.plan_environment(project)
    assert interpreter == ".venv/bin/python"
    assert "no-such-distribution-ckt>=1.0" in why
    if uv:
        assert [c.shell() for c in commands] == [
            "uv lock --python 3.11",  # this bare project ships no uv.lock
            "uv sync --locked --extra dev --python 3.11",
        ]
        (project / "uv.lock").write_text("version = 1\n", encoding="utf-8")
        commands, _, _ = hook.plan_environment(project)
        assert [c.shell() for c in commands] == ["uv sync --locked --extra dev --python 3.11"]
    else:
        assert [c.argv for c in commands] == [
            (sys.executable, "-m", "venv", ".venv"),
            (".venv/bin/python", "-m", "pip", "install", "-e", ".[dev]"),
        ]


def test_an_existing_venv_is_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hook = import_hook("post_gen_project", tmp_path / "hook", render_context())
    project = _project_with_dependencies(tmp_path, "no-such-distribution-ckt>=1.0")
    (project / ".venv/bin").mkdir(parents=True)
    (project / ".venv/bin/python").touch()
    monkeypatch.setattr(hook.shutil, "which", lambda name: None)
    commands, _, _ = hook.plan_environment(project)
    assert [c.what for c in commands] == ["install the project into .venv"]


def test_an_unexpected_error_in_the_migration_step_keeps_the_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    hook = import_hook("post_gen_project", tmp_path / "hook", render_context())
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)

    def broken(project: Path) -> bool:
        raise KeyError("project")

    monkeypatch.setattr(hook, "first_migration", broken)
    assert hook.main() == 0
    out = capsys.readouterr().out
    assert "WARNING: the first migration step failed unexpectedly: KeyError('project')" in out
    assert "    python -m alembic upgrade head" in out


def test_without_uv_a_newer_python_is_looked_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = import_hook("post_gen_project", tmp_path / "hook", render_context(python_version="3.14"))
    project = _project_with_dependencies(tmp_path, "no-such-distribution-ckt>=1.0")
    monkeypatch.setattr(hook.shutil, "which", lambda name: None)
    commands, _, _ = hook.plan_environment(project)
    assert commands[0].argv == ("python3.14", "-m", "venv", ".venv")


def test_failed_install_prints_the_commands_left_to_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    hook = import_hook("post_gen_project", tmp_path / "hook", render_context())
    project = _project_with_dependencies(tmp_path, "no-such-distribution-ckt>=1.0")
    monkeypatch.setattr(hook.shutil, "which", lambda name: "/usr/bin/uv" if name == "uv" else None)
    monkeypatch.delenv(SKIP_SWITCH, raising=False)
    ran: list[str] = []

    def fake_run(command: Any, cwd: Path) -> Any:
        ran.append(command.shell())
        ok = command.argv[:2] != ("uv", "sync")
        return hook.Outcome(ok, "" if ok else "exit status 2\n    | no network")

    assert hook.first_migration(project, run=fake_run) is False
    out = capsys.readouterr().out
    assert ran == [
        "uv lock --python 3.11",
        "uv sync --locked --extra dev --python 3.11",
    ]
    assert "WARNING: could not install the locked dependencies into .venv: exit status 2" in out
    assert "no network" in out
    assert out.split("Run later:\n", 1)[1].splitlines()[:4] == [
        f"    cd {shlex.quote(str(project))}",
        "    uv sync --locked --extra dev --python 3.11",
        "    .venv/bin/python -m scripts.db create",
        "    .venv/bin/python -m alembic upgrade head",
    ]


def test_run_command_reports_timeouts_and_missing_programs(post_gen: Any, tmp_path: Path) -> None:
    slow = post_gen.Command("sleep", (sys.executable, "-c", "import time; time.sleep(30)"), 0.5)
    outcome = post_gen.run_command(slow, tmp_path)
    assert not outcome.ok
    assert outcome.detail.startswith("timed out after")
    missing = post_gen.Command("nothing", ("/nonexistent/ckt-program",), 5)
    outcome = post_gen.run_command(missing, tmp_path)
    assert not outcome.ok
    assert outcome.detail.startswith("could not start:")
    failing = post_gen.Command(
        "fail", (sys.executable, "-c", "print('boom'); raise SystemExit(3)"), 30
    )
    outcome = post_gen.run_command(failing, tmp_path)
    assert outcome == post_gen.Outcome(False, "exit status 3\n    | boom")
