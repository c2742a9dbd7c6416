"""The docs name what exists: the tests they cite, the files they point at, the
settings they document (every one of them), and code shown from real files."""

import ast
import re
from pathlib import Path

import pytest
from starlette.routing import Match

from app.main import create_app
from app.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 200
TEST_REFERENCE = re.compile(r"`?(test_\w+\.py)::(test_\w+)`?")
PATH_REFERENCE = re.compile(
    r"`((?:app|tests|scripts|migrations|docs)/[\w./-]+\.(?:py|md))(?:::\w+)?`"
)
CODE_FROM = re.compile(r"<!-- from: (\S+) -->\n```python\n(.*?)```", re.DOTALL)
# docs/migrations.md's recipes: revisions to copy, run by the template's own tests.
RECIPE = re.compile(r"<!-- recipe: [\w-]+ -->\n```python\n(.*?)```", re.DOTALL)
ENDPOINT_REFERENCE = re.compile(r"\b(GET|POST|PUT|PATCH|DELETE) (/[\w/{}.-]*\w[}/]?)")
MAKE_REFERENCE = re.compile(r"(?:`|^)make ([a-z][\w-]*)", re.MULTILINE)
MAKE_TARGET = re.compile(r"^([a-z][\w-]*):", re.MULTILINE)
PARAMETER = re.compile(r"\{[^}]*\}")
API_PREFIX = "/api/v1"
VARIABLE_ROW = re.compile(r"^\| `([A-Z][A-Z0-9_]+)`(?:, `([A-Z][A-Z0-9_]+)`)? \|", re.MULTILINE)
# Read by other programs than the app: the tests' own settings, docker compose,
# prometheus-client, the OpenTelemetry SDK.
NOT_SETTINGS = {
    "TEST_DATABASE_URL",
    "DB_PASSWORD",
    "PROMETHEUS_MULTIPROC_DIR",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
{%- if cookiecutter.task_queue == "taskiq" %}
    "BROKER_PASSWORD",
{%- endif %}
}
# The files that docs/migrations.md's worked example adds (a `tags` model).
WORKED_EXAMPLE = ("app/tags/", "tests/test_tags.py")


def _text(page: Path) -> str:
    return page.read_text(encoding="utf-8")


def _test_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }


def test_the_readme_is_an_entry_point() -> None:
    """At most 200 lines: what it is, how to start, where things are; the rest is
    in docs/."""
    lines = _text(ROOT / "README.md").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_cited_tests_exist(page: Path) -> None:
    missing = [
        f"{module}::{name}"
        for module, name in TEST_REFERENCE.findall(_text(page))
        if not (ROOT / "tests" / module).exists()
        or name not in _test_names(ROOT / "tests" / module)
    ]
    assert missing == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_cited_files_exist(page: Path) -> None:
    cited = [p for p in PATH_REFERENCE.findall(_text(page)) if not p.startswith(WORKED_EXAMPLE)]
    assert [path for path in cited if not (ROOT / path).exists()] == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_code_shown_is_the_code(page: Path) -> None:
    for source, code in CODE_FROM.findall(_text(page)):
        assert code in (ROOT / source).read_text(encoding="utf-8"), source
    recipes = RECIPE.findall(_text(page))
    for recipe in recipes:
        ast.parse(recipe)
    blocks = _text(page).count("```python")
    shown = len(CODE_FROM.findall(_text(page))) + len(recipes)
    assert blocks == shown, "a python block without its source"


def test_every_setting_is_documented_and_nothing_else() -> None:
    documented = {
        name
        for row in VARIABLE_ROW.findall(_text(ROOT / "docs" / "configuration.md"))
        for name in row
        if name
    }
    settings = {name.upper() for name in Settings.model_fields}
    assert settings - documented == set(), "settings missing from docs/configuration.md"
    assert documented - settings - NOT_SETTINGS == set(), "documented variables that do not exist"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_cited_endpoints_exist(page: Path, test_settings: Settings) -> None:
    """`GET /path` in the docs is served by this app; a path given from the API's
    prefix on (`/users/import`) counts too."""
    routes = create_app(test_settings).router.routes

    def served(method: str, path: str) -> bool:
        concrete = PARAMETER.sub("x", path)
        scopes = [
            {"type": "http", "method": method, "path": prefix + concrete, "root_path": ""}
            for prefix in ("", API_PREFIX)
        ]
        return any(route.matches(scope)[0] == Match.FULL for route in routes for scope in scopes)

    cited = ENDPOINT_REFERENCE.findall(_text(page))
    assert [f"{method} {path}" for method, path in cited if not served(method, path)] == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_cited_make_targets_exist(page: Path) -> None:
    targets = set(MAKE_TARGET.findall((ROOT / "Makefile").read_text(encoding="utf-8")))
    assert set(MAKE_REFERENCE.findall(_text(page))) - targets == set()
