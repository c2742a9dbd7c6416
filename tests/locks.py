"""The uv.lock each baked variant ships: one per database, Python version and dependency set.

`templates/locks/<database>-py<version>[-jwt][-taskiq[-noexamples]].lock` is what `uv
lock` writes for a bake of that database, Python version, auth and task queue (and,
with the task queue, the example models' choice), with the project's own name
replaced by the Jinja expression that renders it; `{{cookiecutter.project_slug}}/uv.lock`
includes the one that matches (cookiecutter looks up includes in `templates/`). The
tests check each lock against its bake with `uv lock --check`. After changing the
dependencies of a baked pyproject.toml:

    python -m tests.locks            # re-lock every variant (needs uv, PyPI, each Python)

Re-locking keeps every locked version that still satisfies pyproject.toml (uv's rule);
`python -m tests.locks --upgrade` moves everything to the newest releases.
"""

import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
LOCKS_DIR = REPO_ROOT / "templates" / "locks"
DATABASES = ("sqlite", "postgresql", "mysql")
# Python 3.14 has no lock yet: `uv lock` needs a 3.14 interpreter, and none can be
# installed on the machines this template is built on (python-build-standalone is
# downloaded from GitHub). Its bakes lock themselves at bake time (hooks/post_gen_project.py).
LOCKED_PYTHON_VERSIONS = ("3.11", "3.12", "3.13")
PLACEHOLDER_SLUG = "lock-placeholder"
# uv writes the normalised name (PEP 503); the slug rules leave '_' as the only change.
NAME_EXPRESSION = "{{ cookiecutter.project_slug | replace('_', '-') }}"


# The answers that change the dependencies: auth=jwt adds its own, task_queue=taskiq its
# own, and with the example models (which add none by themselves) its SMTP client and
# test server too. (auth, task_queue, include_example_models), one example-models
# answer standing for both where it changes nothing; tests/test_bake.py checks that
# every bake of a locked Python version has its lock:
DEPENDENCY_SETS = (
    ("none", "none", "yes"),
    ("jwt", "none", "yes"),
    ("none", "taskiq", "yes"),
    ("jwt", "taskiq", "yes"),
    ("none", "taskiq", "no"),
    ("jwt", "taskiq", "no"),
)


# Jinja passes a raw block through without lexing it: a lock renders in half the time.
RAW, END_RAW = "{% raw %}", "{% endraw %}"


def to_template(lock: str) -> str:
    """A lock as uv wrote it for PLACEHOLDER_SLUG, as the template stores it."""
    quoted = f'"{PLACEHOLDER_SLUG}"'
    if quoted not in lock:
        raise RuntimeError(f"the lock does not name {PLACEHOLDER_SLUG}")
    return RAW + lock.replace(quoted, f'"{END_RAW}{NAME_EXPRESSION}{RAW}"') + END_RAW


def lock_path(
    database: str,
    python_version: str,
    auth: str = "none",
    task_queue: str = "none",
    examples: str = "yes",
) -> Path:
    suffix = "".join(f"-{choice}" for choice in (auth, task_queue) if choice != "none")
    if task_queue != "none" and examples == "no":
        suffix += "-noexamples"
    return LOCKS_DIR / f"{database}-py{python_version}{suffix}.lock"


def interpreter(python_version: str) -> str | None:
    """A Python of this version on the machine: on PATH, else one pyenv installed."""
    candidates = [shutil.which(f"python{python_version}")]
    candidates += sorted(
        glob.glob(os.path.expanduser(f"~/.pyenv/versions/{python_version}.*/bin/python"))
    )
    for candidate in candidates:
        if candidate is None:
            continue
        probe = subprocess.run(
            [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode == 0 and probe.stdout.strip() == python_version:
            return candidate
    return None


def uv_environment() -> dict[str, str]:
    """uv as a user would run it: PyPI, no interpreter downloads, no user config."""
    return {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "UV_NO_CONFIG": "1"}


def uv_lock(project: Path, python_version: str, *extra: str) -> subprocess.CompletedProcess[str]:
    python = interpreter(python_version)
    if python is None:
        raise RuntimeError(f"no Python {python_version} on this machine")
    return subprocess.run(
        [sys.executable, "-m", "uv", "lock", "--python", python, *extra],
        cwd=project,
        env=uv_environment(),
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


def bake(
    database: str,
    python_version: str,
    auth: str,
    output: Path,
    task_queue: str = "none",
    examples: str = "yes",
) -> Path:
    """A bake whose pyproject.toml is the one of this database, Python and dependency set."""
    from cookiecutter.main import cookiecutter

    answers = {
        "project_slug": PLACEHOLDER_SLUG,
        "database": database,
        "python_version": python_version,
        "auth": auth,
        "task_queue": task_queue,
        "include_example_models": examples,
        "run_first_migration": "no",
    }
    previous = os.environ.get("SKIP_FIRST_MIGRATION")
    os.environ["SKIP_FIRST_MIGRATION"] = "1"
    try:
        return Path(
            cookiecutter(
                str(REPO_ROOT), no_input=True, extra_context=answers, output_dir=str(output)
            )
        )
    finally:
        if previous is None:
            os.environ.pop("SKIP_FIRST_MIGRATION", None)
        else:
            os.environ["SKIP_FIRST_MIGRATION"] = previous


def relock(
    database: str,
    python_version: str,
    auth: str,
    upgrade: bool,
    task_queue: str = "none",
    examples: str = "yes",
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        project = bake(database, python_version, auth, Path(folder), task_queue, examples)
        lock = project / "uv.lock"
        current = lock_path(database, python_version, auth, task_queue, examples)
        if upgrade:  # else start from the shipped pins, which the bake rendered
            lock.unlink(missing_ok=True)
        result = uv_lock(project, python_version, *(["--upgrade"] if upgrade else []))
        if result.returncode != 0:
            raise RuntimeError(f"uv lock failed for {current.name}:\n{result.stderr}")
        LOCKS_DIR.mkdir(parents=True, exist_ok=True)
        current.write_text(to_template(lock.read_text(encoding="utf-8")), encoding="utf-8")
        print(f"locked {current.relative_to(REPO_ROOT)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upgrade", action="store_true", help="move to the newest releases")
    arguments = parser.parse_args()
    for database in DATABASES:
        for python_version in LOCKED_PYTHON_VERSIONS:
            for auth, task_queue, examples in DEPENDENCY_SETS:
                relock(database, python_version, auth, arguments.upgrade, task_queue, examples)


if __name__ == "__main__":
    main()
