"""Each variant whose code differs runs its own test-suite against its real database,
and its migrations match its models.

The baked suites run with this session's interpreter (no virtualenv per bake).
Every database created here is named for this run and dropped afterwards.
"""

import pytest

from tests.conftest import RUN_ID, Bakery, DatabaseServer, python, run, tail
from tests.variants import CODE_VARIANTS, Variant

PYTEST_NO_TESTS_COLLECTED = 5
PARAMETERS = pytest.mark.parametrize(
    ("variant", "database_server"),
    [pytest.param(v, v.database, id=v.code_id) for v in CODE_VARIANTS],
    indirect=["database_server"],
)


def _failure_summary(output: str) -> str:
    """pytest's short summary (which test failed, and why) and the closing lines."""
    summary = output.partition("short test summary info")[2].lstrip("= \n")
    return f"{summary.strip()}\n...\n{tail(output, 40)}" if summary else tail(output, 120)


def _database_name(variant: Variant, purpose: str) -> str:
    examples = "ex" if variant.include_example_models == "yes" else "noex"
    return f"ckt_{RUN_ID}_{variant.database}_{examples}_{purpose}"


@PARAMETERS
def test_baked_suite_passes(
    bakery: Bakery,
    variant: Variant,
    database_server: DatabaseServer,
    throwaway_databases: list[str],
) -> None:
    project = bakery.project(variant)
    name = _database_name(variant, "test")  # the baked fixtures insist on '_test'
    unused = _database_name(variant, "unused")
    throwaway_databases += [name, unused]
    env = {
        "TEST_DATABASE_URL": database_server.url(name),
        # Nothing may fall back to the development database of .env.
        "DATABASE_URL": database_server.url(unused),
    }
    result = run(python("-m", "pytest", "-q", "-p", "no:cacheprovider"), cwd=project, env=env)
    if result.returncode == PYTEST_NO_TESTS_COLLECTED:
        pytest.fail(f"the baked suite of {variant.code_id} ran no test:\n{tail(result.stdout)}")
    assert result.returncode == 0, _failure_summary(result.stdout)
    assert " passed" in result.stdout.splitlines()[-1]


@PARAMETERS
def test_migrations_match_models(
    bakery: Bakery,
    variant: Variant,
    database_server: DatabaseServer,
    throwaway_databases: list[str],
) -> None:
    """`alembic upgrade head` on a fresh database, then `alembic check`: no drift."""
    project = bakery.project(variant)
    name = _database_name(variant, "dev")
    throwaway_databases.append(name)
    database_server.create(name)
    env = {"DATABASE_URL": database_server.url(name)}

    def alembic(*args: str) -> str:
        result = run(python("-m", "alembic", *args), cwd=project, env=env)
        assert result.returncode == 0, f"alembic {' '.join(args)}:\n{tail(result.stdout)}"
        return result.stdout

    alembic("upgrade", "head")
    assert "No new upgrade operations detected" in alembic("check")
    assert "0001 (head)" in alembic("current")
