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
from ruamel.yaml import YAML

from tests.conftest import REPO_ROOT, Bakery
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
        steps = " ".join(job["script"])
        assert job["image"] == f"python:{variant.python_version}-slim"
    for command in ("ruff check", "ruff format --check", "mypy", "alembic upgrade head", "pytest"):
        assert command in steps
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
    if variant.database in DATABASE_IMAGES:
        db = services["db"]
        assert db["image"].startswith(DATABASE_IMAGES[variant.database])
        assert "healthcheck" in db
        assert services["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"
        assert "DB_PASSWORD" in json.dumps(db["environment"])
    else:
        assert "db" not in services
        assert "db-data:/data" in services["app"]["volumes"]


@pytest.mark.parametrize("variant", STATIC_VARIANTS[::2], ids=str)
def test_dockerfile(bakery: Bakery, variant: Variant) -> None:
    parser = DockerfileParser(path=str(bakery.project(variant) / "Dockerfile"))
    instructions = [(i["instruction"], i["value"]) for i in parser.structure]
    stages = [value for name, value in instructions if name == "FROM"]
    base = "python:${PYTHON_VERSION}-slim"
    assert stages == [f"{base} AS build", f"{base} AS runtime"]
    assert ("ARG", f"PYTHON_VERSION={variant.python_version}") in instructions
    assert ("USER", "app") in instructions
    assert any(name == "HEALTHCHECK" and "/health" in value for name, value in instructions)
    assert any(name == "COPY" and value.startswith("--from=build") for name, value in instructions)
    # The dependency layer is installed before the application code is copied.
    copies = [value for name, value in instructions if name in ("COPY", "RUN")]
    assert copies.index("pyproject.toml README.md ./") < copies.index("app ./app")
    command = next(value for name, value in instructions if name == "CMD")
    assert "alembic upgrade head" in command
    assert "uvicorn app.main:create_app --factory" in command


@pytest.mark.parametrize("database", DATABASES)
def test_pre_commit_config(bakery: Bakery, database: str) -> None:
    variant = Variant(database, "yes", "no", "3.11")
    config = _yaml(bakery.project(variant) / ".pre-commit-config.yaml")
    hooks = [hook["id"] for repo in config["repos"] for hook in repo["hooks"]]
    assert hooks == ["ruff-check", "ruff-format", "mypy"]


def test_template_ci_workflow() -> None:
    """The template's own workflow runs the README's test command against both servers."""
    workflow = _yaml(REPO_ROOT / ".github/workflows/template-ci.yml")
    _validate(workflow, "github-workflows.json")
    job = workflow["jobs"]["matrix"]
    assert {s["image"].split(":")[0] for s in job["services"].values()} == {"postgres", "mariadb"}
    assert job["steps"][-1]["run"] == "python -m pytest tests"
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert "python -m pytest tests" in readme
