"""The template works with cruft: create, check, and update after a template change,
without the post-generation hook building environments or touching databases
(SKIP_FIRST_MIGRATION=1, the switch the README documents for cruft), and without
stray .rej files from the per-bake random password in .env (`--skip .env`, as the
README advises for variants with one).
"""

import json
import shutil
from pathlib import Path

from tests.conftest import REPO_ROOT, TEMPLATE_DIR, python, run, tail

# aiomysql's wheel installs a stray top-level `examples` package, which shadows the
# optional `examples` library that cruft tries to import; hiding it lets cruft use
# its own fallback. (Only this test environment has both installed.)
CRUFT = (
    "import sys; sys.modules['examples'] = None; "
    "from cruft._cli import app; sys.argv[0] = 'cruft'; app()"
)
TEMPLATE_PARTS = ("cookiecutter.json", "hooks", TEMPLATE_DIR.name)
SKIP = {"SKIP_FIRST_MIGRATION": "1"}


def _git(cwd: Path, *args: str) -> None:
    identity = ("-c", "user.name=Template Test", "-c", "user.email=test@example.com")
    result = run(["git", *identity, *args], cwd=cwd)
    assert result.returncode == 0, tail(result.stdout)


def _cruft(cwd: Path, *args: str) -> tuple[int, str]:
    result = run(python("-c", CRUFT, *args), cwd=cwd, env=SKIP)
    return result.returncode, result.stdout


def test_cruft_create_check_update(tmp_path: Path) -> None:
    template = tmp_path / "template"
    template.mkdir()
    for part in TEMPLATE_PARTS:
        source = REPO_ROOT / part
        if source.is_dir():
            shutil.copytree(source, template / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, template / part)
    _git(template, "init", "-q", "-b", "main")
    _git(template, "add", "-A")
    _git(template, "commit", "-q", "-m", "template v1")

    out = tmp_path / "out"
    code, output = _cruft(
        tmp_path,
        "create",
        str(template),
        "--no-input",
        "--output-dir",
        str(out),
        "--skip",
        ".env",
        "--extra-context",
        json.dumps({"database": "postgresql"}),
    )
    assert code == 0, tail(output)
    project = out / "my-service"
    cruft_state = json.loads((project / ".cruft.json").read_text(encoding="utf-8"))
    assert cruft_state["context"]["cookiecutter"]["database"] == "postgresql"
    assert cruft_state["skip"] == [".env"]
    assert "Skipped the environment and the first migration" in output
    assert not (project / ".venv").exists()
    env_before = (project / ".env").read_text(encoding="utf-8")

    code, output = _cruft(project, "check")
    assert code == 0, tail(output)

    # A new template release...
    readme = template / TEMPLATE_DIR.name / "README.md"
    readme.write_text(readme.read_text(encoding="utf-8") + "\nNew in v2.\n", encoding="utf-8")
    _git(template, "commit", "-q", "-am", "template v2")
    code, output = _cruft(project, "check")
    assert code != 0, "cruft check should report the project as out of date"

    # ...is applied to the project, again without building or migrating anything.
    _git(project, "init", "-q", "-b", "main")
    _git(project, "add", "-A")
    _git(project, "commit", "-q", "-m", "generated")
    code, output = _cruft(project, "update", "--skip-apply-ask")
    assert code == 0, tail(output)
    assert "New in v2." in (project / "README.md").read_text(encoding="utf-8")
    assert not (project / ".venv").exists()
    assert (project / ".env").read_text(encoding="utf-8") == env_before
    assert sorted(p.name for p in project.rglob("*.rej")) == []
    code, output = _cruft(project, "check")
    assert code == 0, tail(output)
