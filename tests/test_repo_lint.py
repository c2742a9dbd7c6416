"""This repository's own code (hooks/, tests/, benchmarks/) passes ruff and mypy.

The hooks hold Jinja, so they are checked as cookiecutter renders them, with the
default answers and with every database choice (their only rendered difference).
"""

from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, python, render_context, render_hook, run, tail
from tests.variants import DATABASES

CONFIG = str(REPO_ROOT / "pyproject.toml")
HOOKS = ("pre_gen_project", "post_gen_project")


@pytest.fixture(scope="module")
def rendered_hooks(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    paths = []
    for database in DATABASES:
        directory = tmp_path_factory.mktemp(f"rendered_hooks_{database}")
        context = render_context(database=database)
        paths += [render_hook(name, directory, context) for name in HOOKS]
    return paths


@pytest.mark.parametrize(
    "command",
    [("check", "--no-cache"), ("format", "--check", "--no-cache")],
    ids=["check", "format"],
)
def test_ruff(rendered_hooks: list[Path], command: tuple[str, ...]) -> None:
    paths = ["tests", "benchmarks", *map(str, rendered_hooks)]
    result = run(python("-m", "ruff", *command, "--config", CONFIG, *paths), cwd=REPO_ROOT)
    assert result.returncode == 0, tail(result.stdout)


def test_mypy(rendered_hooks: list[Path], tmp_path: Path) -> None:
    # One database's hooks at a time: mypy refuses two files with the same module name.
    for index in range(0, len(rendered_hooks), len(HOOKS)):
        paths = ["tests", "benchmarks", *map(str, rendered_hooks[index : index + len(HOOKS)])]
        result = run(
            python("-m", "mypy", "--config-file", CONFIG, *paths),
            cwd=REPO_ROOT,
            env={"MYPY_CACHE_DIR": str(tmp_path / "mypy-cache")},
        )
        assert result.returncode == 0, tail(result.stdout)
