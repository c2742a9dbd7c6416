"""No request-path query reads a whole table, at 100,000 rows per table, on each
database.

The baked example project's `scripts/explain_queries.py` seeds 100,000 users,
posts and role links (COPY on PostgreSQL, multi-row INSERTs elsewhere) into a
database of this run, runs every query an endpoint sends (every filter, the deepest
`offset`, the reports, the purge job's batch, the export), measures what each
statement reads on the real planner, and exits 1 when one reads a tenth of a table
or more without declaring it. The baked suites run it at its smallest sample; the
cost of a query that grows with a table, or with one user's history, shows at this
size (the busiest sample author has a fifth of the posts).
"""

import pytest

from tests.conftest import RUN_ID, Bakery, DatabaseServer, python, run, tail
from tests.variants import DATABASES, TEST_PYTHON_VERSION, Variant

ROWS = 100_000


@pytest.mark.parametrize("database_server", DATABASES, indirect=True)
def test_no_request_path_query_reads_a_whole_table(
    bakery: Bakery, database_server: DatabaseServer, throwaway_databases: list[str]
) -> None:
    project = bakery.project(Variant(database_server.database, "yes", "no", TEST_PYTHON_VERSION))
    name = f"ckt_{RUN_ID}_{database_server.database}_cost"
    throwaway_databases.append(name)
    database_server.create(name)
    env = {"DATABASE_URL": database_server.url(name)}
    migrated = run(python("-m", "alembic", "upgrade", "head"), cwd=project, env=env)
    assert migrated.returncode == 0, tail(migrated.stdout)

    measured = run(
        python("-m", "scripts.explain_queries", "--rows", str(ROWS)),
        cwd=project,
        env=env,
        timeout=300,
    )

    assert measured.returncode == 0, tail(measured.stdout, 120)
    assert f"no request-path query reads a whole table at {ROWS} rows per table" in (
        measured.stdout
    )
    assert "as declared: the export streams every post" in measured.stdout
