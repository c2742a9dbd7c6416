"""Each baked variant's uv.lock matches its pyproject.toml (`uv lock --check`), for
every database, dependency set (auth, task queue, examples) and Python version the
template ships a lock for; where it
ships none (3.14), the bake has no stale or empty lock and the hook says to lock.
tests/test_baked_suites.py installs each database's suite from its lock."""

import shutil
import tomllib
from pathlib import Path

import pytest

from tests.conftest import Bakery, import_hook, render_context
from tests.locks import DEPENDENCY_SETS, LOCKED_PYTHON_VERSIONS, uv_lock
from tests.variants import DATABASES, PYTHON_VERSIONS, Variant


@pytest.mark.parametrize(("auth", "task_queue", "examples"), DEPENDENCY_SETS)
@pytest.mark.parametrize("python_version", LOCKED_PYTHON_VERSIONS)
@pytest.mark.parametrize("database", DATABASES)
def test_the_shipped_lock_matches_the_bake(
    bakery: Bakery, database: str, python_version: str, auth: str, task_queue: str, examples: str
) -> None:
    variant = Variant(database, examples, "no", python_version, auth=auth, task_queue=task_queue)
    project = bakery.project(variant)
    checked = uv_lock(project, python_version, "--check")
    assert checked.returncode == 0, checked.stderr


def test_a_lock_that_no_longer_matches_is_refused(bakery: Bakery, tmp_path: Path) -> None:
    """The negative control: one more dependency in pyproject.toml, the same lock."""
    project = tmp_path / "project"
    shutil.copytree(bakery.project(Variant("postgresql", "yes", "no", "3.11")), project)
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    pyproject.write_text(text.replace("dependencies = [\n", 'dependencies = [\n    "six",\n', 1))
    assert "six" in tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["dependencies"]
    checked = uv_lock(project, "3.11", "--check")
    assert checked.returncode != 0
    assert "needs to be updated" in checked.stderr


@pytest.mark.parametrize(
    "python_version", [v for v in PYTHON_VERSIONS if v not in LOCKED_PYTHON_VERSIONS]
)
def test_without_a_shipped_lock_the_hook_locks_first(
    bakery: Bakery, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, python_version: str
) -> None:
    project = bakery.project(Variant("postgresql", "yes", "no", python_version))
    assert not (project / "uv.lock").exists()  # not an empty or foreign one
    hook = import_hook("post_gen_project", tmp_path, render_context(python_version=python_version))
    monkeypatch.setattr(hook, "missing_requirements", lambda _: ["fastapi"])
    monkeypatch.setattr(hook.shutil, "which", lambda name: f"/usr/bin/{name}")
    commands, _, _ = hook.plan_environment(project)
    assert [c.shell() for c in commands] == [
        f"uv lock --python {python_version}",
        f"uv sync --locked --extra dev --python {python_version}",
    ]
