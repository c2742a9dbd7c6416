"""Check the answers before cookiecutter writes the project.

Cookiecutter renders this file with Jinja and runs it with its own interpreter, in
the (still empty) project directory. The first bad answer stops the bake: one line
on stderr says what is wrong and how to fix it, the exit status is 1, and
cookiecutter removes the project directory it had created.

Each answer is injected as a JSON string literal on a line of its own (a JSON
string is also a valid Python string literal), never pasted inside a hand-written
string: a value with quotes or backslashes cannot break this file.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from collections.abc import Callable


def _text(value: str) -> str:
    """Rejoin the surrogate pairs that JSON uses for characters beyond U+FFFF."""
    return value.encode("utf-16", "surrogatepass").decode("utf-16")


PROJECT_NAME = _text({{ cookiecutter.project_name | string | tojson }})
PROJECT_SLUG = _text({{ cookiecutter.project_slug | string | tojson }})
DESCRIPTION = _text({{ cookiecutter.description | string | tojson }})
AUTHOR_NAME = _text({{ cookiecutter.author_name | string | tojson }})
AUTHOR_EMAIL = _text({{ cookiecutter.author_email | string | tojson }})
PYTHON_VERSION = _text({{ cookiecutter.python_version | string | tojson }})
DATABASE = _text({{ cookiecutter.database | string | tojson }})
INCLUDE_EXAMPLE_MODELS = _text({{ cookiecutter.include_example_models | string | tojson }})
AUTH = _text({{ cookiecutter.auth | string | tojson }})
TASK_QUEUE = _text({{ cookiecutter.task_queue | string | tojson }})
RUN_FIRST_MIGRATION = _text({{ cookiecutter.run_first_migration | string | tojson }})
USE_DOCKER = _text({{ cookiecutter.use_docker | string | tojson }})
CI = _text({{ cookiecutter.ci | string | tojson }})

SUPPORTED_PYTHON_VERSIONS = ("3.11", "3.12", "3.13", "3.14")
SUPPORTED_DATABASES = ("sqlite", "postgresql", "mysql")
YES_NO = ("yes", "no")
SUPPORTED_CI = ("github", "gitlab", "none")
SUPPORTED_AUTH = ("none", "jwt")
SUPPORTED_TASK_QUEUES = ("none", "taskiq")

# A lowercase distribution name that is also a plain directory name. It ends in a
# letter or digit because PEP 508 names must; one separator at a time, so the name
# tools normalise it to (PEP 503: '_' becomes '-') is the slug with '_' replaced.
SLUG_PATTERN = re.compile(r"[a-z][a-z0-9]*(?:[_-][a-z0-9]+)*")
# The database is named after the slug ('-' becomes '_') and the tests use
# '<name>_test': that must fit PostgreSQL's 63-byte identifier limit.
SLUG_MAX_LENGTH = 58
# Deliberately loose: one '@', no spaces, a dot in the domain.
EMAIL_PATTERN = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
# Line breaks and other control characters cannot appear in a one-line string.
FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})

Check = Callable[[], "str | None"]


def _unsafe_character(value: str) -> str | None:
    """Describe the first character that cannot go inside a double-quoted string."""
    for char in value:
        if char == '"':
            return 'a double quote (")'
        if char == "\\":
            return "a backslash (\\)"
        if unicodedata.category(char) in FORBIDDEN_CATEGORIES:
            return f"a control character (U+{ord(char):04X})"
    return None


def check_project_name() -> str | None:
    if not PROJECT_NAME.strip():
        return "project_name is empty: give the project a name, e.g. project_name='My Service'"
    return _check_quotable("project_name", PROJECT_NAME)


def check_project_slug() -> str | None:
    if not SLUG_PATTERN.fullmatch(PROJECT_SLUG):
        return (
            f"project_slug {PROJECT_SLUG!r} is invalid: use lowercase letters, digits, "
            "single '-' or '_' between them, starting with a letter and ending with a "
            "letter or digit (e.g. project_slug=my-service)"
        )
    if len(PROJECT_SLUG) > SLUG_MAX_LENGTH:
        return (
            f"project_slug {PROJECT_SLUG!r} is too long ({len(PROJECT_SLUG)} characters): "
            f"use at most {SLUG_MAX_LENGTH}, so that the test database name fits "
            "PostgreSQL's 63-byte limit"
        )
    return None


def check_free_text() -> str | None:
    for field, value in (("description", DESCRIPTION), ("author_name", AUTHOR_NAME)):
        problem = _check_quotable(field, value)
        if problem:
            return problem
    return None


def check_author_email() -> str | None:
    if not EMAIL_PATTERN.fullmatch(AUTHOR_EMAIL) or _unsafe_character(AUTHOR_EMAIL):
        return (
            f"author_email {AUTHOR_EMAIL!r} is not an email address: use the form name@example.com"
        )
    return None


def check_choices() -> str | None:
    for field, value, choices in (
        ("python_version", PYTHON_VERSION, SUPPORTED_PYTHON_VERSIONS),
        ("database", DATABASE, SUPPORTED_DATABASES),
        ("include_example_models", INCLUDE_EXAMPLE_MODELS, YES_NO),
        ("auth", AUTH, SUPPORTED_AUTH),
        ("task_queue", TASK_QUEUE, SUPPORTED_TASK_QUEUES),
        ("run_first_migration", RUN_FIRST_MIGRATION, YES_NO),
        ("use_docker", USE_DOCKER, YES_NO),
        ("ci", CI, SUPPORTED_CI),
    ):
        if value not in choices:
            return f"{field} {value!r} is not supported: choose one of {', '.join(choices)}"
    return None


def _check_quotable(field: str, value: str) -> str | None:
    unsafe = _unsafe_character(value)
    if unsafe is None:
        return None
    return (
        f"{field} {value!r} contains {unsafe}: remove it; {field} is written into "
        "Python and TOML double-quoted strings (apostrophes and accents are fine)"
    )


CHECKS: tuple[Check, ...] = (
    check_project_name,
    check_project_slug,
    check_free_text,
    check_author_email,
    check_choices,
)


def main() -> int:
    for check in CHECKS:
        problem = check()
        if problem:
            print(f"ERROR: {problem}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
