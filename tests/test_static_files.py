"""Files that cannot run here (no Docker engine, no CI runner) are parsed and
checked: the workflows and compose files against their published JSON schemas
(vendored by check-jsonschema, so no network), the Dockerfile instruction by
instruction.
"""

import json
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from dockerfile_parse import DockerfileParser
from dotenv import dotenv_values
from ruamel.yaml import YAML
from sqlalchemy.engine import make_url

from tests.conftest import REPO_ROOT, Bakery
from tests.locks import LOCKED_PYTHON_VERSIONS
from tests.variants import DATABASES, PYTHON_VERSIONS, Variant

SCHEMAS = files("check_jsonschema.builtin_schemas.vendor")
# One variant per distinct set of container/CI files: they depend on the database
# and the Python version only.
STATIC_VARIANTS = [
    Variant(database, "yes", "no", python, "yes", ci)
    for database in DATABASES
    for python in PYTHON_VERSIONS
    for ci in ("github", "gitlab")
]
DATABASE_IMAGES = {"postgresql": "postgres:", "mysql": "mariadb:"}
AUTHS = ("none", "jwt")
PLACEHOLDER = "change-me"  # .env.example's, for every secret


def _validate(document: Any, schema_name: str) -> None:
    schema = json.loads(SCHEMAS.joinpath(schema_name).read_text(encoding="utf-8"))
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(document), key=str)
    assert not errors, "\n".join(e.message for e in errors[:5])


def _yaml(path: Path) -> Any:
    # YAML 1.2, as GitHub and GitLab read it (1.1 would turn the key `on` into True).
    return YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("variant", STATIC_VARIANTS, ids=str)
def test_ci_workflow(bakery: Bakery, variant: Variant) -> None:
    project = bakery.project(variant)
    if variant.ci == "github":
        workflow = _yaml(project / ".github/workflows/ci.yml")
        _validate(workflow, "github-workflows.json")
        job = workflow["jobs"]["test"]
        steps = " ".join(step.get("run", "") for step in job["steps"])
        setup = next(s for s in job["steps"] if "setup-python" in s.get("uses", ""))
        assert setup["with"]["python-version"] == variant.python_version
    else:
        pipeline = _yaml(project / ".gitlab-ci.yml")
        _validate(pipeline, "gitlab-ci.json")
        job = pipeline["test"]
        steps = " ".join(job["before_script"] + job["script"])
        assert job["image"] == f"python:{variant.python_version}-slim"
    for command in ("ruff check", "ruff format --check", "mypy", "alembic upgrade head", "pytest"):
        assert command in steps
    # squawk on the migrations' SQL: PostgreSQL only (no linter reads the others').
    assert ("scripts.lint_migrations" in steps) == (variant.database == "postgresql")
    assert "uv sync --locked --extra dev" in steps  # installs what uv.lock pins
    services = json.dumps(job.get("services", {}))
    if variant.database in DATABASE_IMAGES:
        assert DATABASE_IMAGES[variant.database] in services
        assert "_test" in json.dumps(job.get("env") or job.get("variables"))
    else:
        assert services in ("{}", "[]")


@pytest.mark.parametrize("variant", STATIC_VARIANTS[::2], ids=str)
def test_compose_file(bakery: Bakery, variant: Variant) -> None:
    compose = _yaml(bakery.project(variant) / "docker-compose.yml")
    _validate(compose, "compose-spec.json")
    services = compose["services"]
    assert services["app"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )
    assert services["migrate"]["command"][-2:] == ["upgrade", "head"]
    # The app runs the image's command (serve only) and is checked on /livez.
    assert "command" not in services["app"]
    assert "/livez" in " ".join(services["app"]["healthcheck"]["test"])
    if variant.database in DATABASE_IMAGES:
        db = services["db"]
        assert db["image"].startswith(DATABASE_IMAGES[variant.database])
        assert "healthcheck" in db
        assert services["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"
        assert "DB_PASSWORD" in json.dumps(db["environment"])
        _assert_env_logs_into_composes_database(bakery.project(variant), variant.database, db)
    else:
        assert "db" not in services
        assert "db-data:/data" in services["app"]["volumes"]


@pytest.mark.parametrize(
    "variant",
    [Variant(d, "yes", "no", "3.11", auth=auth) for d in DATABASES for auth in AUTHS],
    ids=str,
)
def test_compose_passes_every_secret(bakery: Bakery, variant: Variant) -> None:
    """Each secret that .env holds (the post-generation hook's random values for the
    placeholders of .env.example) reaches the app and the migration, and compose
    refuses to start without it; the image itself runs in production, where the app
    refuses to start without its keys."""
    project = bakery.project(variant)
    example = dotenv_values(project / ".env.example")
    secrets = {name for name, value in example.items() if value == PLACEHOLDER} - {"DB_PASSWORD"}
    assert {"SECRET_KEY", "METRICS_TOKEN"} <= secrets
    assert ("JWT_SECRET_KEY" in secrets) == (variant.auth == "jwt")
    services = _yaml(project / "docker-compose.yml")["services"]
    for service in ("app", "migrate"):
        environment = services[service]["environment"]
        for name in secrets:
            assert environment[name] == f"${{{name}:?set {name} in .env}}", (service, name)


def _assert_env_logs_into_composes_database(
    project: Path, database: str, db: dict[str, Any]
) -> None:
    """`docker compose up -d db`, then the host's tests: .env's URLs name compose's
    user, password and database, on the loopback port compose publishes."""
    prefix = "POSTGRES" if database == "postgresql" else "MARIADB"
    port = 5432 if database == "postgresql" else 3306
    assert db["ports"] == [f"127.0.0.1:{port}:{port}"]
    dotenv = dotenv_values(project / ".env")
    assert db["environment"][f"{prefix}_PASSWORD"] == "${DB_PASSWORD:?set DB_PASSWORD in .env}"
    for name in ("DATABASE_URL", "TEST_DATABASE_URL"):
        url = make_url(dotenv[name] or "")
        assert (url.username, url.host, url.port) == (
            db["environment"][f"{prefix}_USER"],
            "127.0.0.1",
            port,
        )
        assert url.password == dotenv["DB_PASSWORD"]
    database_key = "POSTGRES_DB" if database == "postgresql" else "MARIADB_DATABASE"
    assert make_url(dotenv["DATABASE_URL"] or "").database == db["environment"][database_key]


TASK_QUEUE_VARIANTS = [
    Variant(database, "yes", "no", "3.11", "yes", ci, task_queue="taskiq")
    for database in DATABASES
    for ci in ("github", "gitlab")
]


@pytest.mark.parametrize("variant", TASK_QUEUE_VARIANTS, ids=str)
def test_task_queue_in_compose_and_ci(bakery: Bakery, variant: Variant) -> None:
    """compose's healthchecked `rabbitmq`, logged into by .env's BROKER_URL with .env's
    BROKER_PASSWORD, and a `worker` after the migration and RabbitMQ; CI's RabbitMQ
    service, logged into by CI's BROKER_URL."""
    project = bakery.project(variant)
    compose = _yaml(project / "docker-compose.yml")
    _validate(compose, "compose-spec.json")
    services = compose["services"]
    rabbitmq, worker = services["rabbitmq"], services["worker"]
    assert rabbitmq["ports"] == ["127.0.0.1:5672:5672"]
    assert "healthcheck" in rabbitmq
    password = rabbitmq["environment"]["RABBITMQ_DEFAULT_PASS"]
    assert password == "${BROKER_PASSWORD:?set BROKER_PASSWORD in .env}"  # noqa: S105
    dotenv = dotenv_values(project / ".env")
    host_url = make_url(dotenv["BROKER_URL"] or "")
    assert (host_url.username, host_url.host, host_url.port) == (
        rabbitmq["environment"]["RABBITMQ_DEFAULT_USER"],
        "127.0.0.1",
        5672,
    )
    assert host_url.password == dotenv["BROKER_PASSWORD"]
    assert worker["command"] == ["python", "-m", "scripts.worker"]
    assert worker["depends_on"] == {
        "migrate": {"condition": "service_completed_successfully"},
        "rabbitmq": {"condition": "service_healthy"},
    }
    assert "9100/livez" in " ".join(worker["healthcheck"]["test"])
    worker_url = make_url(worker["environment"]["BROKER_URL"])
    assert (worker_url.username, worker_url.host) == ("app", "rabbitmq")
    if variant.ci == "github":
        job = _yaml(project / ".github/workflows/ci.yml")["jobs"]["test"]
        service = job["services"]["rabbitmq"]
        user = service["env"]
        ci_url = make_url(job["env"]["BROKER_URL"])
        assert ci_url.host == "127.0.0.1"
        assert service["ports"] == ["5672:5672"]
    else:
        job = _yaml(project / ".gitlab-ci.yml")["test"]
        (service,) = [s for s in job["services"] if s["name"].startswith("rabbitmq:")]
        user = service["variables"]
        ci_url = make_url(job["variables"]["BROKER_URL"])
        assert ci_url.host == service["alias"]
    assert (ci_url.username, ci_url.password) == (
        user["RABBITMQ_DEFAULT_USER"],
        user["RABBITMQ_DEFAULT_PASS"],
    )
    assert ci_url.username != "guest"  # refused from anywhere but localhost


@pytest.mark.parametrize("variant", STATIC_VARIANTS[::2], ids=str)
def test_dockerfile(bakery: Bakery, variant: Variant) -> None:
    parser = DockerfileParser(path=str(bakery.project(variant) / "Dockerfile"))
    instructions = [(i["instruction"], i["value"]) for i in parser.structure]
    stages = [value for name, value in instructions if name == "FROM"]
    base = "python:${PYTHON_VERSION}-slim"
    assert stages == [f"{base} AS build", f"{base} AS runtime"]
    assert ("ARG", f"PYTHON_VERSION={variant.python_version}") in instructions
    assert ("USER", "app") in instructions
    [healthcheck] = [value for name, value in instructions if name == "HEALTHCHECK"]
    assert "/livez" in healthcheck  # tests/test_container_commands.py runs it
    assert any(name == "COPY" and value.startswith("--from=build") for name, value in instructions)
    # The dependency layer is installed before the application code is copied.
    copies = [value for name, value in instructions if name in ("COPY", "RUN")]
    assert copies.index("pyproject.toml uv.lock README.md ./") < copies.index("app ./app")
    # Both installs take exactly what uv.lock pins (tests/test_container_commands.py runs them).
    installs = [value for name, value in instructions if name == "RUN" and "uv sync" in value]
    assert len(installs) == 2
    assert all("--locked" in value for value in installs)
    command = json.loads(next(value for name, value in instructions if name == "CMD"))
    assert command[:3] == ["uvicorn", "app.main:create_app", "--factory"]
    assert "alembic" not in command  # migrations run once per deploy, not per container


@pytest.mark.parametrize(
    "variant", [v for v in STATIC_VARIANTS if v.database == "postgresql"], ids=str
)
def test_dependency_updates(bakery: Bakery, variant: Variant) -> None:
    """Dependabot (GitHub) or Renovate (GitLab) keeps uv.lock and the images current."""
    project = bakery.project(variant)
    if variant.ci == "github":
        config = _yaml(project / ".github/dependabot.yml")
        _validate(config, "dependabot.json")
        ecosystems = {update["package-ecosystem"] for update in config["updates"]}
        assert ecosystems == {"uv", "github-actions", "docker", "docker-compose", "pre-commit"}
    else:
        config = json.loads((project / "renovate.json").read_text(encoding="utf-8"))
        _validate(config, "renovate.json")
        assert config["lockFileMaintenance"]["enabled"] is True


@pytest.mark.parametrize("database", DATABASES)
def test_pre_commit_config(bakery: Bakery, database: str) -> None:
    variant = Variant(database, "yes", "no", "3.11")
    config = _yaml(bakery.project(variant) / ".pre-commit-config.yaml")
    hooks = [hook["id"] for repo in config["repos"] for hook in repo["hooks"]]
    squawk = ["squawk"] if database == "postgresql" else []
    assert hooks == ["ruff-check", "ruff-format", "mypy", *squawk]


def test_template_ci_workflow() -> None:
    """The template's own workflow runs the README's test command against both database
    servers and RabbitMQ."""
    workflow = _yaml(REPO_ROOT / ".github/workflows/template-ci.yml")
    _validate(workflow, "github-workflows.json")
    job = workflow["jobs"]["matrix"]
    images = {s["image"].split(":")[0] for s in job["services"].values()}
    assert images == {"postgres", "mariadb", "rabbitmq"}
    assert job["steps"][-1]["run"] == "bash scripts/test.sh"
    python_versions = job["steps"][1]["with"]["python-version"].split()
    assert set(python_versions) >= set(LOCKED_PYTHON_VERSIONS)  # tests/test_locks.py needs each
    # `mysql` means MySQL or MariaDB: its suites run against MySQL 8 as well.
    mysql = workflow["jobs"]["mysql8"]
    service = mysql["services"]["mysql"]
    assert service["image"].startswith("mysql:8")
    assert mysql["services"]["rabbitmq"]["ports"] == ["5672:5672"]  # the taskiq variant's
    assert service["ports"] == ["3306:3306"]  # where tests/conftest.py looks for it
    run = mysql["steps"][-1]["run"]
    assert run.startswith("python -m pytest tests/test_baked_suites.py")
    assert run.endswith("-k mysql")
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert "bash scripts/test.sh" in readme
