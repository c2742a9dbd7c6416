"""Each variant reads as written by hand for its own database.

No file of a bake names another database, its drivers or its tools (a comment,
a docstring, a doc page, a config line: everything but the lock file), and no
Jinja tag leaves whitespace behind: trailing spaces, runs of blank lines, a missing
or doubled final newline, a module docstring glued to the code after it.

The bakes are the session's (tests/conftest.py's `bakery`): the code variants, and
one per database with the other non-Python answers (no Docker, GitLab CI, Python
3.14), all of them among the matrix that tests/test_bake.py bakes anyway.
"""

import io
import re
import tokenize
from dataclasses import replace
from pathlib import Path

import pytest

from tests.conftest import Bakery
from tests.variants import CODE_VARIANTS, Variant

PROSE_VARIANTS = (
    *CODE_VARIANTS,
    *(
        replace(v, use_docker="no", ci="gitlab", python_version="3.14")
        for v in CODE_VARIANTS
        if v.auth == "jwt"
    ),
)

# What names each database, its drivers and its tools. `app.db` and `scripts.db` are
# this project's modules, not SQLite files.
_SQLITE = r"\b\w*sqlite\w*|\bpragma\b|(?<![\w.])(?!(?:app|scripts)\.db\b)[\w*-]+\.db\b(?![\w.])"
_POSTGRESQL = r"\b\w*(?:postgres|asyncpg|psycopg|pgbouncer)\w*|\bpg_\w+|\bpsql\b"
_MYSQL = r"\b\w*(?:mysql|mariadb)\w*|\binnodb\b|\butf8mb4\b"
NAMES = {"sqlite": _SQLITE, "postgresql": _POSTGRESQL, "mysql": _MYSQL}
FOREIGN = {
    database: re.compile("|".join(p for d, p in NAMES.items() if d != database), re.IGNORECASE)
    for database in NAMES
}
# prometheus-client's multiprocess files (app/metrics.py), in every variant.
NOT_A_DATABASE = {"gauge_live*_*.db"}

# What tools write into a bake after it is rendered (test_baked_suites.py installs
# each code variant, which writes its egg-info).
CACHES = {".venv", ".mypy_cache", ".ruff_cache", ".pytest_cache", "__pycache__", ".hypothesis"}
BUILD_OUTPUT = ".egg-info"
LOCK_FILES = {"uv.lock"}
TRAILING_SPACE = re.compile(r"[ \t]+$", re.MULTILINE)


def _text_files(project: Path) -> dict[str, str]:
    """Every text file of a bake but the lock file, by relative path."""
    files = {}
    for path in sorted(project.rglob("*")):
        relative = path.relative_to(project)
        generated = CACHES.intersection(relative.parts) or any(
            part.endswith(BUILD_OUTPUT) for part in relative.parts
        )
        if not path.is_file() or generated or path.name in LOCK_FILES:
            continue
        data = path.read_bytes()
        if b"\0" not in data:
            files[relative.as_posix()] = data.decode("utf-8")
    return files


@pytest.fixture(scope="module")
def baked(bakery: Bakery) -> dict[Variant, dict[str, str]]:
    return {variant: _text_files(bakery.project(variant)) for variant in PROSE_VARIANTS}


def test_the_patterns_tell_names_from_module_names() -> None:
    assert FOREIGN["postgresql"].search("python -m scripts.db create") is None
    assert FOREIGN["postgresql"].search("from app.db.engine import create_engines") is None
    assert FOREIGN["postgresql"].findall("*.db-wal sqlite+aiosqlite:///./x_test.db") == [
        "*.db",
        "sqlite",
        "aiosqlite",
        "x_test.db",
    ]
    assert FOREIGN["sqlite"].findall("asyncpg and PgBouncer, aiomysql on MariaDB") == [
        "asyncpg",
        "PgBouncer",
        "aiomysql",
        "MariaDB",
    ]
    assert FOREIGN["mysql"].search("MySQL and MariaDB have no partial indexes") is None


@pytest.mark.parametrize("variant", PROSE_VARIANTS, ids=str)
def test_no_file_names_another_database(
    baked: dict[Variant, dict[str, str]], variant: Variant
) -> None:
    mentions = [
        f"{name}:{_line_number(text, match.start())}: {match.group()!r}"
        for name, text in baked[variant].items()
        for match in FOREIGN[variant.database].finditer(text)
        if match.group() not in NOT_A_DATABASE
    ]
    assert mentions == [], "\n".join(mentions)


def _line_number(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _python_block_lines(text: str) -> set[int]:
    """The line numbers inside Markdown's ```python blocks."""
    inside, numbers = False, set()
    for number, line in enumerate(text.split("\n"), start=1):
        if line.startswith("```"):
            inside = line == "```python"
        elif inside:
            numbers.add(number)
    return numbers


def _blank_runs(text: str) -> list[tuple[int, int]]:
    """(first line number, length) of every run of blank lines."""
    runs, start = [], 0
    lines = text.split("\n")[:-1]  # the part after the final newline is no line
    for number, line in enumerate([*lines, "end"], start=1):
        if not line.strip():
            start = start or number
        elif start:
            runs.append((start, number - start))
            start = 0
    return runs


def _whitespace_faults(name: str, text: str) -> list[str]:
    faults = []
    if text and (not text.endswith("\n") or text.endswith("\n\n")):
        faults.append(f"{name}: does not end with exactly one newline")
    for match in TRAILING_SPACE.finditer(text):
        number = _line_number(text, match.start())
        line = text.split("\n")[number - 1]
        what = "a line of only spaces" if not line.strip() else "trailing whitespace"
        faults.append(f"{name}:{number}: {what}: {line!r}")
    # Python and its Mako template keep PEP 8's two blank lines, and so do the Python
    # blocks of Markdown (ruff formats them); elsewhere one.
    most = 2 if name.endswith((".py", ".mako")) else 1
    python_lines = _python_block_lines(text) if name.endswith(".md") else set()
    faults += [
        f"{name}:{start}: {length} blank lines in a row"
        for start, length in _blank_runs(text)
        if length > (2 if start in python_lines else most)
    ]
    end = _module_docstring_end(text) if name.endswith(".py") else None
    if end is not None and "".join(text.split("\n")[end : end + 1]).strip():
        faults.append(f"{name}: no blank line after the module docstring")
    return faults


def _module_docstring_end(source: str) -> int | None:
    """The line number where a module's docstring ends, if it opens with one. Only
    the first tokens are read: a bake for a newer Python may hold syntax this
    interpreter cannot parse."""
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.ENCODING}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in skip:
            return token.end[0] if token.type == tokenize.STRING else None
    return None


@pytest.mark.parametrize("variant", PROSE_VARIANTS, ids=str)
def test_no_whitespace_left_by_the_template(
    baked: dict[Variant, dict[str, str]], variant: Variant
) -> None:
    faults = [
        fault for name, text in baked[variant].items() for fault in _whitespace_faults(name, text)
    ]
    assert faults == [], "\n".join(faults)


def test_the_whitespace_check_sees_each_fault() -> None:
    assert _whitespace_faults("a.md", "x\n") == []
    assert _whitespace_faults("a.md", "x") == ["a.md: does not end with exactly one newline"]
    assert _whitespace_faults("a.md", "x\n\n") == ["a.md: does not end with exactly one newline"]
    assert _whitespace_faults("a.md", "x \n") == ["a.md:1: trailing whitespace: 'x '"]
    assert _whitespace_faults("a.md", "x\n  \ny\n") == ["a.md:2: a line of only spaces: '  '"]
    assert _whitespace_faults("a.md", "x\n\n\ny\n") == ["a.md:2: 2 blank lines in a row"]
    assert _whitespace_faults("a.md", "```python\nx = 1\n\n\ny = 2\n```\n") == []
    assert _whitespace_faults("a.md", "```python\nx\n```\n\n\ny\n") == [
        "a.md:4: 2 blank lines in a row"
    ]
    assert _whitespace_faults("a.py", "x = 1\n\n\ny = 2\n") == []
    assert _whitespace_faults("a.py", "x = 1\n\n\n\ny = 2\n") == ["a.py:2: 3 blank lines in a row"]
    assert _whitespace_faults("a.py", '"""Doc."""\nimport os\n') == [
        "a.py: no blank line after the module docstring"
    ]
    assert _whitespace_faults("a.py", '"""Doc."""\n\nimport os\n') == []
    assert _whitespace_faults("empty.py", "") == []
    assert _whitespace_faults("only.py", '"""Doc."""\n') == []
