"""The recipes of a baked project's docs/migrations.md, run as written against each
real database: the code blocks marked `<!-- recipe: ... -->` become revisions (and the
backfill job a script) of a copy of the bake, on a table `items` with rows in it.

- A NOT NULL column without downtime: expand, backfill from the job in batches (it
  reports each), contract; every row has its value and the column is NOT NULL.
- An index on a table in use (PostgreSQL: CONCURRENTLY, after a failed concurrent
  build left an INVALID index of the same name, which the recipe replaces).
- A rename in two deploys: after deploy 1, old code (writing `name`) and new code
  (writing `title`) see the same values; after deploy 2, `name` is gone.
- Every recipe revision goes down again, and passes ruff; on PostgreSQL, squawk too.
"""

import asyncio
import re
import shutil
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tests.conftest import RUN_ID, Bakery, DatabaseServer, python, run, tail
from tests.variants import DATABASES, TEST_PYTHON_VERSION, Variant

RECIPE = re.compile(r"<!-- recipe: ([\w-]+) -->\n```python\n(.*?)```", re.DOTALL)
ROWS = 2500  # three of the backfill's batches
ITEMS = '''"""The table the recipes work on."""

import sqlalchemy as sa
from alembic import op


def upgrade() -> None:
    op.create_table(
        "items",
        sa.Column("id", sa.Integer(), sa.Identity(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("items")
'''
# The order a project would apply them in, and where the test stops in between.
REVISIONS = {
    "postgresql": ("expand", "contract", "contract-validate", "index", "rename", "rename-contract"),
    "mysql": ("expand", "contract", "index", "rename", "rename-contract"),
    "sqlite": ("expand", "contract", "index", "rename", "rename-contract"),
}


async def _execute(url: str, *statements: str) -> list[object]:
    """Each statement in a transaction of its own; the first column of each result."""
    engine = create_async_engine(url, poolclass=NullPool)
    answers: list[object] = []
    try:
        for statement in statements:
            async with engine.begin() as conn:
                result = await conn.execute(text(statement))
                answers.append(result.scalar() if result.returns_rows else None)
    finally:
        await engine.dispose()
    return answers


@pytest.mark.parametrize("database_server", DATABASES, indirect=True)
def test_the_recipes_work_as_written(
    bakery: Bakery,
    database_server: DatabaseServer,
    throwaway_databases: list[str],
    tmp_path: Path,
) -> None:
    database = database_server.database
    project = tmp_path / "project"
    shutil.copytree(bakery.project(Variant(database, "no", "no", TEST_PYTHON_VERSION)), project)
    recipes = dict(RECIPE.findall((project / "docs" / "migrations.md").read_text()))
    assert set(recipes) == {*REVISIONS[database], "backfill"}
    name = f"ckt_{RUN_ID}_{database[:2]}_recipes"
    throwaway_databases.append(name)
    database_server.create(name)
    url = database_server.url(name)
    env = {"DATABASE_URL": url}

    # The revisions, in a chain on top of the first migration.
    versions = project / "migrations" / "versions"
    ids, down = {}, "0001"
    for number, (recipe, source) in enumerate(
        [("items", ITEMS), *((r, recipes[r]) for r in REVISIONS[database])]
    ):
        revision = f"{number:02d}_{uuid.uuid4().hex[:6]}"
        header = f'"""Recipe: {recipe}."""\n\n'
        footer = f'\nrevision = "{revision}"\ndown_revision = "{down}"\n'
        body = source if source.startswith('"""') else header + source
        (versions / f"2099_01_01_{revision}_{recipe.replace('-', '_')}.py").write_text(
            body + footer + "branch_labels = None\ndepends_on = None\n", encoding="utf-8"
        )
        ids[recipe], down = revision, revision
    (project / "scripts" / "backfill_item_slugs.py").write_text(recipes["backfill"])
    linted = run(
        python("-m", "ruff", "check", "--select", "E,F,W,I", "migrations", "scripts"), project
    )
    assert linted.returncode == 0, tail(linted.stdout)

    def alembic(*arguments: str) -> str:
        result = run(python("-m", "alembic", *arguments), project, env)
        assert result.returncode == 0, f"alembic {' '.join(arguments)}:\n{tail(result.stdout)}"
        return result.stdout

    # 1. Expand, on a table with rows that the old code wrote.
    alembic("upgrade", ids["expand"])
    values = ", ".join(f"('Item {i % 100}')" for i in range(ROWS))
    asyncio.run(_execute(url, f"INSERT INTO items (name) VALUES {values}"))
    # 2. Backfill from the job, in batches.
    backfill = run(python("-m", "scripts.backfill_item_slugs"), project, env)
    assert backfill.returncode == 0, tail(backfill.stdout)
    assert backfill.stdout.count("rows filled") == 3, backfill.stdout
    (missing,) = asyncio.run(_execute(url, "SELECT COUNT(*) FROM items WHERE slug IS NULL"))
    assert missing == 0
    if database == "postgresql":
        # A concurrent build that failed (duplicates in a unique index) left it INVALID.
        failed = run(
            ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", name, "-c",
             "CREATE UNIQUE INDEX CONCURRENTLY ix_items_slug ON items (slug)"],
            project,
        )  # fmt: skip
        assert "could not create unique index" in failed.stdout, failed.stdout
    # 3. Contract and the index; then deploy 1 of the rename.
    alembic("upgrade", ids["rename"])
    nullable = {
        "postgresql": "SELECT is_nullable FROM information_schema.columns"
        " WHERE table_name = 'items' AND column_name = 'slug'",
        "mysql": "SELECT is_nullable FROM information_schema.columns"
        f" WHERE table_schema = '{name}' AND table_name = 'items' AND column_name = 'slug'",
        "sqlite": "SELECT CASE WHEN \"notnull\" THEN 'NO' ELSE 'YES' END"
        " FROM pragma_table_info('items') WHERE name = 'slug'",
    }[database]
    assert asyncio.run(_execute(url, nullable)) == ["NO"]
    if database == "postgresql":
        valid = "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass('ix_items_slug')"
        assert asyncio.run(_execute(url, valid)) == [True]

    # The rename, deploy 1: old code writes `name`, new code `title`; both stay equal.
    asyncio.run(_execute(url, "UPDATE items SET title = name WHERE title IS NULL"))
    both = asyncio.run(
        _execute(
            url,
            "INSERT INTO items (name, slug) VALUES ('old code', 'old')",
            "INSERT INTO items (title, slug) VALUES ('new code', 'new')",
            "UPDATE items SET name = 'old code, renamed' WHERE slug = 'old'",
            "UPDATE items SET title = 'new code, renamed' WHERE slug = 'new'",
            "SELECT COUNT(*) FROM items WHERE title IS NULL OR name IS NULL OR title <> name",
            "SELECT title FROM items WHERE slug = 'old'",
            "SELECT name FROM items WHERE slug = 'new'",
        )
    )
    assert both[-3:] == [0, "old code, renamed", "new code, renamed"]
    # Deploy 2.
    alembic("upgrade", "head")
    columns = asyncio.run(_execute(url, "SELECT COUNT(*) FROM items WHERE title IS NOT NULL"))
    assert columns == [ROWS + 2]

    # Every recipe goes down again.
    alembic("downgrade", ids["items"])
    if database == "postgresql":
        lint = run(python("-m", "scripts.lint_migrations"), project)
        assert lint.returncode == 0, tail(lint.stdout)
