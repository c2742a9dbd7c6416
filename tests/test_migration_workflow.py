"""A baked project's migration workflow, for real, against each database.

- The README's "add your own model" path (docs/migrations.md, "Adding a model"): a new
  model, `make migration`, then `make migrate`, `make downgrade`, `make migrate`; the
  generated file passes ruff.
- PostgreSQL: then an index on that table, which now exists, the same way: it comes
  out CONCURRENTLY, outside the revision's transaction (env.py's hook). What `make
  migration` wrote passes squawk (`scripts/lint_migrations.py`), and `make lint` fails
  on a revision that builds an index without CONCURRENTLY.
"""

import shutil
import sys
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory

from tests.conftest import RUN_ID, Bakery, DatabaseServer, python, run, tail
from tests.variants import DATABASES, TEST_PYTHON_VERSION, Variant

TAGS_MODEL = '''"""Tags: the model of docs/migrations.md's "Adding a model"."""

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base
from app.db.mixins import TimestampMixin, UUIDPrimaryKeyMixin


class Tag(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    __tablename__ = "tags"

    name: Mapped[str] = mapped_column(String(50), unique=True)
    label: Mapped[str | None] = mapped_column(String(50){label_index})
'''
PLAIN_INDEX = '''"""An index on a table that exists, built as a plain CREATE INDEX."""

from alembic import op

revision = "ffff_plain_index"
down_revision = "{down_revision}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_tags_created_at", "tags", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_tags_created_at", table_name="tags")
'''


def _project(bakery: Bakery, database: str, tmp_path: Path) -> Path:
    """A copy of the bake without the example models, to change as a user would."""
    project = tmp_path / "project"
    variant = Variant(database, "no", "no", TEST_PYTHON_VERSION)
    shutil.copytree(bakery.project(variant), project)
    return project


class Make:
    """`make <target>` in the project, with this interpreter and the given database."""

    def __init__(self, project: Path, database_url: str) -> None:
        self.project = project
        self.env = {"DATABASE_URL": database_url, "PYTHON": sys.executable}

    def __call__(self, *arguments: str, status: int = 0) -> str:
        result = run(["make", *arguments, f"PYTHON={sys.executable}"], self.project, self.env, 300)
        assert result.returncode == status, f"make {' '.join(arguments)}:\n{tail(result.stdout)}"
        return result.stdout


def _new_revision(project: Path, before: set[Path]) -> Path:
    (created,) = set((project / "migrations" / "versions").glob("*.py")) - before
    return created


@pytest.mark.parametrize("database_server", DATABASES, indirect=True)
def test_adding_a_model_up_down_up(
    bakery: Bakery,
    database_server: DatabaseServer,
    throwaway_databases: list[str],
    tmp_path: Path,
) -> None:
    project = _project(bakery, database_server.database, tmp_path)
    name = f"ckt_{RUN_ID}_{database_server.database[:2]}_model"
    throwaway_databases.append(name)
    database_server.create(name)
    make = Make(project, database_server.url(name))
    versions = project / "migrations" / "versions"
    make("migrate")

    # 1-2. The model, in a folder of its own, imported in app/models.py.
    (project / "app" / "tags").mkdir()
    (project / "app" / "tags" / "__init__.py").write_text('"""Tags."""\n', encoding="utf-8")
    model = project / "app" / "tags" / "models.py"
    model.write_text(TAGS_MODEL.format(label_index=""), encoding="utf-8")
    models = project / "app" / "models.py"
    text = models.read_text(encoding="utf-8")
    imported = "from app.db.base import Base\nfrom app.tags.models import Tag\n"
    text = text.replace("from app.db.base import Base\n", imported)
    models.write_text(
        text.replace('__all__ = ["Base"', '__all__ = ["Base", "Tag"'), encoding="utf-8"
    )

    # 3-5. Generate the migration, apply it, undo it, apply it again.
    before = set(versions.glob("*.py"))
    make("migration", "m=add tags")
    added = _new_revision(project, before)
    assert 'op.create_table(\n        "tags"' in added.read_text(encoding="utf-8")
    make("migrate")
    make("downgrade")
    make("migrate")
    if database_server.database == "postgresql":
        # An index on the table that now exists comes out CONCURRENTLY.
        model.write_text(TAGS_MODEL.format(label_index=", index=True"), encoding="utf-8")
        before = set(versions.glob("*.py"))
        make("migration", "m=index tag labels")
        indexed = _new_revision(project, before).read_text(encoding="utf-8")
        assert "with op.get_context().autocommit_block():" in indexed
        assert "postgresql_concurrently=True" in indexed
        assert "if_not_exists=True" in indexed
        make("migrate")

    # What was generated is lint-clean.
    ruff = run(python("-m", "ruff", "check", "migrations"), project)
    assert ruff.returncode == 0, tail(ruff.stdout)
    if database_server.database == "postgresql":
        lint = run(python("-m", "scripts.lint_migrations"), project)
        assert lint.returncode == 0, tail(lint.stdout)

        # A revision that builds an index without CONCURRENTLY fails `make lint`.
        head = ScriptDirectory.from_config(Config(str(project / "alembic.ini"))).get_current_head()
        (versions / "2099_01_01_ffff_plain_index.py").write_text(
            PLAIN_INDEX.format(down_revision=head), encoding="utf-8"
        )
        output = make("lint", status=2)
        assert "require-concurrent-index-creation" in output
        assert "2099_01_01_ffff_plain_index.sql" in output
