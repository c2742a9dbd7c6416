"""The supported combinations of answers, as data.

Every combination of the choice prompts in cookiecutter.json is supported:
database (3) x include_example_models (2) x auth (2) x run_first_migration (2) x
python_version (4) x use_docker (2) x ci (3) = 576 variants, each with
task_queue=none and =taskiq: 1152. Subsets share files:

- with the first migration skipped, as the matrix bakes, run_first_migration=yes
  writes the same files as =no: the variants with =no are baked and checked for
  leftovers and for their options' files (BAKED_VARIANTS): the 288 with
  task_queue=none, and 72 with task_queue=taskiq: on Python 3.11 and 3.14, the two
  forms its code takes (a ParamSpec before 3.12, PEP 695 type parameters from 3.12;
  3.12 and 3.13 render what 3.14 does, and their locks are checked by
  tests/test_locks.py), with docker and GitHub, docker and GitLab, or neither
  (TASK_QUEUE_FILE_SETS): 360;
- run_first_migration only changes what the post-generation hook *does*, and
  use_docker and ci only add or remove non-Python files (checked by parsing them),
  so the linters run on the baked variants with run_first_migration=no,
  use_docker=yes and ci=github (LINT_VARIANTS, 48 + 24); every other baked variant
  is compared with its lint variant and must have the same Python files;
- python_version only changes pyproject.toml, uv.lock and the container/CI files
  (ruff's target-version, mypy's python_version, requires-python, base images), so
  the baked test-suites run once per database x include_example_models x auth with
  task_queue=none (12), and with task_queue=taskiq once per database
  (TASK_QUEUE_CODE; CODE_VARIANTS, 15); a task_queue=taskiq suite runs
  TASK_QUEUE_TESTS only.
"""

import itertools
from dataclasses import dataclass, replace

PYTHON_VERSIONS = ("3.11", "3.12", "3.13", "3.14")
DATABASES = ("sqlite", "postgresql", "mysql")
YES_NO = ("yes", "no")
CI_CHOICES = ("github", "gitlab", "none")
AUTH_CHOICES = ("none", "jwt")
TASK_QUEUES = ("none", "taskiq")
TASK_QUEUE_PYTHON_VERSIONS = ("3.11", "3.14")
# use_docker and ci only add the container and CI files, whose task-queue parts
# tests/test_static_files.py parses: with a task queue, these combinations bake every file.
TASK_QUEUE_FILE_SETS = (("yes", "github"), ("yes", "gitlab"), ("no", "none"))
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
    task_queue: str = "none"

    def __str__(self) -> str:
        return (
            f"{self.database}-examples_{self.include_example_models}"
            f"-migrate_{self.run_first_migration}-py{self.python_version}"
            f"-docker_{self.use_docker}-ci_{self.ci}{self._suffix}"
        )

    @property
    def _suffix(self) -> str:
        auth = "" if self.auth == "none" else f"-auth_{self.auth}"
        tasks = "" if self.task_queue == "none" else f"-tasks_{self.task_queue}"
        return auth + tasks

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
            "task_queue": self.task_queue,
        }

    @property
    def code_id(self) -> str:
        """Names the Python code of the variant (database, examples, auth, task queue)."""
        return f"{self.database}-examples_{self.include_example_models}{self._suffix}"

    @property
    def lint_variant(self) -> "Variant":
        """The variant whose Python files this one shares (and which is linted)."""
        return replace(self, run_first_migration="no", use_docker="yes", ci="github")


VARIANTS = tuple(
    Variant(*answers)
    for answers in itertools.product(
        DATABASES, YES_NO, YES_NO, PYTHON_VERSIONS, YES_NO, CI_CHOICES, AUTH_CHOICES, TASK_QUEUES
    )
)
# Baked and checked file by file: run_first_migration changes only what the hook does,
# and the matrix bakes with the first migration skipped, so its `yes` variants would
# write the same files again (tests/test_hooks.py runs the real first migration).
BAKED_VARIANTS = tuple(
    v
    for v in VARIANTS
    if v.run_first_migration == "no"
    and (
        v.task_queue == "none"
        or (
            v.python_version in TASK_QUEUE_PYTHON_VERSIONS
            and (v.use_docker, v.ci) in TASK_QUEUE_FILE_SETS
        )
    )
)
LINT_VARIANTS = tuple(v for v in BAKED_VARIANTS if v == v.lint_variant)
# task_queue=taskiq's suites, one per database, to cover the most between them: the
# welcome email's end-to-end proofs through /users and LISTEN/NOTIFY on PostgreSQL;
# the same proofs through /auth/register on SQLite; without the example models, the
# no-op task, its purge and the first migration on MariaDB (whose claims, leases,
# retries and dead letters test_relay.py and test_worker.py cover there too).
TASK_QUEUE_CODE = (
    ("postgresql", "yes", "none"),
    ("mysql", "no", "none"),
    ("sqlite", "yes", "jwt"),
)
# What a task_queue=taskiq suite runs: the task queue's own tests (registering's
# enqueue among them), and those of the code it changes (creating users, the schema,
# the settings, /metrics, the docs). Its other code is the task_queue=none variant's,
# whose suite runs all of it.
TASK_QUEUE_TESTS = (
    "tests/test_outbox.py",
    "tests/test_relay.py",
    "tests/test_worker.py",
    "tests/test_welcome_email.py",
    "tests/test_noop_task.py",
    "tests/test_users.py",
    "tests/test_migrations.py",
    "tests/test_metrics.py",
    "tests/test_settings.py",
    "tests/test_docs.py",
)
# The tests of the database layer and the app's plumbing (app/db, the probes, logs,
# traces, the request deadline, streams): no answer but the database changes their
# code, so they run in one code variant per database (LAYER_CODE: the example models,
# neither auth nor a task queue), and every other code variant skips them.
LAYER_TESTS = (
    "tests/test_session.py",
    "tests/test_engine.py",
    "tests/test_db_layer.py",
    "tests/test_failures.py",
    "tests/test_replica.py",
    "tests/test_probes.py",
    "tests/test_tracing.py",
    "tests/test_logging.py",
    "tests/test_db_script.py",
    "tests/test_connection_budget.py",
    "tests/test_deadline.py",
    "tests/test_streams.py",
)
LAYER_CODE = ("yes", "none", "none")  # include_example_models, auth, task_queue
CODE_VARIANTS = tuple(
    v
    for v in LINT_VARIANTS
    if v.python_version == TEST_PYTHON_VERSION
    and (
        v.task_queue == "none" or (v.database, v.include_example_models, v.auth) in TASK_QUEUE_CODE
    )
)

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
# Present only with task_queue == "taskiq" (the deploy/ ones only where deploy/ is).
TASK_PATHS = (
    "app/db/outbox.py",
    "app/tasks",
    "scripts/worker.py",
    "scripts/replay_dead_letters.py",
    "tests/tasks.py",
    "tests/test_outbox.py",
    "tests/test_relay.py",
    "tests/test_worker.py",
    "docs/tasks.md",
    "deploy/kubernetes/worker-deployment.yaml",
    "deploy/kubernetes/worker-pdb.yaml",
)
# With task_queue == "taskiq": only with the example models, or only without them.
TASK_EXAMPLE_PATHS = (
    "app/tasks/welcome_email.py",
    "app/tasks/mail.py",
    "tests/test_welcome_email.py",
)
TASK_NO_EXAMPLE_PATHS = (
    "app/tasks/noop.py",
    "tests/test_noop_task.py",
)
# With task_queue == "taskiq" and no users: the outbox's own purge (where there are
# users, scripts/purge_deleted.py purges the outbox too).
TASK_NO_USER_PATHS = ("scripts/purge_outbox.py",)
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


def suite_arguments(variant: Variant) -> list[str]:
    """What a code variant's suite runs, as pytest arguments: everything in the
    LAYER_CODE variant, TASK_QUEUE_TESTS with a task queue, all but LAYER_TESTS else."""
    if variant.task_queue == "taskiq":
        return list(TASK_QUEUE_TESTS)
    if (variant.include_example_models, variant.auth, variant.task_queue) == LAYER_CODE:
        return []
    return [f"--ignore={test}" for test in LAYER_TESTS]
