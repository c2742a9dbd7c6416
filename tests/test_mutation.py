"""The mutation check's smoke (the full check is `python -m tests.mutation`, not part
of this run): its catalogue still fits the code it mutates, and its harness tells a
mutant the suite kills from one it lets through."""

import ast
import shutil
from pathlib import Path

import pytest

from tests import mutation
from tests.conftest import Bakery
from tests.mutants import EVERY_DATABASE, Mutant, mutants_for
from tests.variants import CODE_VARIANTS, Variant


def _example_variant(database: str) -> Variant:
    """The variant the mutation check bakes: the example domain, no auth."""
    return next(
        v
        for v in CODE_VARIANTS
        if v.database == database and v.include_example_models == "yes" and v.auth == "none"
    )


@pytest.mark.parametrize("database", sorted(EVERY_DATABASE))
def test_every_mutant_fits_the_code_it_mutates(bakery: Bakery, database: str) -> None:
    """Each mutant's text is in its file exactly once, and the mutated file still
    parses: a mutant that no longer applies fails here, not hours into a check."""
    project = bakery.project(_example_variant(database))
    mutants = mutants_for(database)
    assert len(mutants) >= 15
    for mutant in mutants:
        original, mutated = mutation.mutated_text(project, mutant)
        assert mutated != original
        ast.parse(mutated, filename=mutant.path)
    assert len({m.id for m in mutants}) == len(mutants), "ids repeat within a database"


def test_a_stale_mutant_is_refused(bakery: Bakery) -> None:
    project = bakery.project(_example_variant("sqlite"))
    stale = Mutant("stale", "app/db/session.py", "no such text", "", "none")
    with pytest.raises(mutation.CatalogueError, match="0 times"):
        mutation.mutated_text(project, stale)


def test_the_check_kills_a_real_bug_and_lets_a_harmless_edit_through(
    bakery: Bakery, tmp_path: Path
) -> None:
    """On a copy of the SQLite bake, with the suite cut down to one module: the
    inverted soft-delete filter is killed, a comment survives, and both files are
    left as they were."""
    project = tmp_path / "project"
    shutil.copytree(bakery.project(_example_variant("sqlite")), project)
    killer = next(m for m in mutants_for("sqlite") if m.id == "soft-delete-inverted")
    harmless = Mutant(
        "a-comment",
        "app/db/soft_delete.py",
        "from app.db.mixins import SoftDeleteMixin\n",
        "from app.db.mixins import SoftDeleteMixin  # changes nothing\n",
        "none",
    )
    before = (project / killer.path).read_text(encoding="utf-8")
    outcomes = mutation.check(
        "sqlite", project, [killer, harmless], ["tests/test_db_layer.py"], report=False
    )
    assert [(o.mutant.id, o.killed) for o in outcomes] == [
        ("soft-delete-inverted", True),
        ("a-comment", False),
    ]
    assert outcomes[0].by.startswith("tests/test_db_layer.py::test_")
    assert (project / killer.path).read_text(encoding="utf-8") == before
