"""The supported combinations of answers, as data.

Every combination of the choice prompts in cookiecutter.json is supported:
database (3) x include_example_models (2) x auth (2) x run_first_migration (2) x
python_version (4) x use_docker (2) x ci (3) = 576 variants. Subsets share files:

- with the first migration skipped, as the matrix bakes, run_first_migration=yes
  writes the same files as =no: the 288 variants with =no are baked and checked for
  leftovers and for their options' files (BAKED_VARIANTS);
- run_first_migration only changes what the post-generation hook *does*, and
  use_docker and ci only add or remove non-Python files (checked by parsing them),
  so the linters run on the 48 variants with run_first_migration=no,
  use_docker=yes and ci=github (LINT_VARIANTS); every other variant is compared
  with its lint variant and must have the same Python files;
- python_version only changes pyproject.toml, uv.lock and the container/CI files
  (ruff's target-version, mypy's python_version, requires-python, base images), so
  the baked test-suites run once per database x include_example_models x auth
  (CODE_VARIANTS, 12 of them).
"""

import itertools
from dataclasses import dataclass, replace

PYTHON_VERSIONS = ("3.11", "3.12", "3.13", "3.14")
DATABASES = ("sqlite", "postgresql", "mysql")
YES_NO = ("yes", "no")
CI_CHOICES = ("github", "gitlab", "none")
AUTH_CHOICES = ("none", "jwt")
# The interpreter the template's tests (and the baked suites) run on.
TEST_PYTHON_VERSION = "3.11"


@dataclass(frozen=True)
class Variant:
    database: str
    include_example_models: str
    run_first_migration: str
    python_version: str
    use_docker: str = "yes"
    ci: str = "github"
    auth: str = "none"

    def __str__(self) -> str:
        return (
            f"{self.database}-examples_{self.include_example_models}"
            f"-migrate_{self.run_first_migration}-py{self.python_version}"
            f"-docker_{self.use_docker}-ci_{self.ci}{self._auth_suffix}"
        )

    @property
    def _auth_suffix(self) -> str:
        return "" if self.auth == "none" else f"-auth_{self.auth}"

    @property
    def answers(self) -> dict[str, str]:
        return {
            "database": self.database,
            "include_example_models": self.include_example_models,
            "run_first_migration": self.run_first_migration,
            "python_version": self.python_version,
            "use_docker": self.use_docker,
            "ci": self.ci,
            "auth": self.auth,
        }

    @property
    def code_id(self) -> str:
        """Names the Python code of the variant (database and examples)."""
        return f"{self.database}-examples_{self.include_example_models}{self._auth_suffix}"

    @property
    def lint_variant(self) -> "Variant":
        """The variant whose Python files this one shares (and which is linted)."""
        return replace(self, run_first_migration="no", use_docker="yes", ci="github")


VARIANTS = tuple(
    Variant(*answers)
    for answers in itertools.product(
        DATABASES, YES_NO, YES_NO, PYTHON_VERSIONS, YES_NO, CI_CHOICES, AUTH_CHOICES
    )
)
# Baked and checked file by file: run_first_migration changes only what the hook does,
# and the matrix bakes with the first migration skipped, so its `yes` variants would
# write the same files again (tests/test_hooks.py runs the real first migration).
BAKED_VARIANTS = tuple(v for v in VARIANTS if v.run_first_migration == "no")
LINT_VARIANTS = tuple(v for v in VARIANTS if v == v.lint_variant)
CODE_VARIANTS = tuple(v for v in LINT_VARIANTS if v.python_version == TEST_PYTHON_VERSION)

# Removed by the post-generation hook when include_example_models == "no".
EXAMPLE_PATHS = (
    "app/posts",
    "tests/test_posts.py",
    "tests/test_queries.py",
    "tests/test_properties.py",
    "tests/test_pagination.py",
    "tests/test_concurrency.py",
    "scripts/explain_queries.py",
)
# Present with the example models or auth == "jwt" (its accounts), else removed.
USER_PATHS = (
    "app/users",
    "app/db/search.py",
    "app/api.py",
    "tests/factories.py",
    "tests/test_users.py",
    "scripts/purge_deleted.py",
    "tests/test_purge_deleted.py",
)
# Removed by the post-generation hook when database == "sqlite".
SERVER_DATABASE_PATHS = (
    "app/db/connection_budget.py",
    "app/db/replica.py",
    "tests/test_connection_budget.py",
    "tests/test_replica.py",
)
# Present only with auth == "jwt".
AUTH_PATHS = (
    "app/auth",
    "scripts/users.py",
    "tests/test_auth.py",
    "tests/test_access.py",
    "tests/test_login_defences.py",
    "docs/auth.md",
)
# Present only with use_docker == "yes" and database == "mysql".
COMPOSE_MARIADB_PATHS = ("docker",)
# Present only with use_docker == "yes".
DOCKER_PATHS = ("Dockerfile", ".dockerignore", "docker-compose.yml")
# Present only with use_docker == "yes" and a database server (not SQLite).
KUBERNETES_PATHS = ("deploy", "docs/kubernetes.md")
# Present only with KUBERNETES_PATHS and database == "postgresql".
PGBOUNCER_PATHS = ("deploy/kubernetes/pgbouncer",)
# Present only with the matching ci answer.
CI_PATHS = {"github": ".github/workflows/ci.yml", "gitlab": ".gitlab-ci.yml"}
# Dependency-update configuration, matching the ci answer.
UPDATE_PATHS = {"github": ".github/dependabot.yml", "gitlab": "renovate.json"}
