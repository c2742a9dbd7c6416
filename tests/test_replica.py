"""The baked PostgreSQL service against a real streaming replica.

A private primary and a hot standby (`tests/pg_cluster.py`) serve the baked app
under uvicorn with DATABASE_REPLICA_URL set. With the standby's replay paused, a
user that was just created is missing from the list (a read on the replica) but
found by id (a read on the primary); once replay resumes the list shows it. With
the standby stopped, reads go on from the primary's pool (a WARNING, the metric
`db_replica_fallback_reads_total`), writes go on, and the instance stays ready; once
the standby is back, reads return to it within DB_REPLICA_RETRY_SECONDS. With
DB_REPLICA_FALLBACK=fail, the same outage costs reads a fast 503 instead.
"""

import re
import secrets
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.baked_app import serve_baked
from tests.conftest import IN_CI, RUN_ID, Bakery, python, run, tail
from tests.pg_cluster import ClusterError, ReplicatedPostgres, replicated_postgres
from tests.variants import TEST_PYTHON_VERSION, Variant

DATABASE = f"ckt_{RUN_ID}_replica"
USERS = "/api/v1/users"
RETRY_SECONDS = 1
FALLBACK_READS = re.compile(r"^db_replica_fallback_reads_total (\S+)$", re.MULTILINE)
METRICS_TOKEN = secrets.token_urlsafe(32)


@pytest.fixture(scope="module")
def cluster() -> Iterator[ReplicatedPostgres]:
    try:
        with replicated_postgres() as servers:
            yield servers
    except ClusterError as error:
        message = f"could not start a private primary and standby: {error}"
        if IN_CI:
            pytest.fail(f"CI=true and {message}", pytrace=False)
        pytest.skip(message)


def _emails(client: httpx.Client, email: str) -> list[str]:
    response = client.get(USERS, params={"email": email}, timeout=15)
    assert response.status_code == 200, response.text
    return [user["email"] for user in response.json()]


def _create(client: httpx.Client, email: str) -> str:
    created = client.post(USERS, json={"email": email, "full_name": "R"})
    assert created.status_code == 201, created.text
    user_id: str = created.json()["id"]
    return user_id


def _until(condition: Callable[[], bool], what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_reads_use_the_replica_and_go_on_without_it(
    bakery: Bakery, cluster: ReplicatedPostgres
) -> None:
    project = bakery.project(Variant("postgresql", "yes", "no", TEST_PYTHON_VERSION))
    cluster.primary.sql(f'CREATE DATABASE "{DATABASE}"')
    primary, standby = cluster.primary.url(DATABASE), cluster.standby.url(DATABASE)
    migrated = run(
        python("-m", "alembic", "upgrade", "head"), cwd=project, env={"DATABASE_URL": primary}
    )
    assert migrated.returncode == 0, tail(migrated.stdout)
    cluster.wait_for_replay(DATABASE, "SELECT count(*) FROM alembic_version", "1")

    env = {
        "DATABASE_URL": primary,
        "DATABASE_REPLICA_URL": standby,
        "DB_REPLICA_RETRY_SECONDS": str(RETRY_SECONDS),
        "METRICS_TOKEN": METRICS_TOKEN,
    }
    printed: list[str] = []
    with (
        serve_baked(project, env, output=printed) as base_url,
        httpx.Client(base_url=base_url) as client,
    ):
        cluster.standby.sql("SELECT pg_wal_replay_pause()")
        user_id = _create(client, "lag@example.com")
        assert _emails(client, "lag@") == []  # the replica has not replayed it
        assert client.get(f"{USERS}/{user_id}").status_code == 200  # the primary has it
        cluster.standby.sql("SELECT pg_wal_replay_resume()")
        _until(lambda: _emails(client, "lag@") == ["lag@example.com"], "no replay")

        cluster.standby.stop()
        started = time.monotonic()
        assert _emails(client, "lag@") == ["lag@example.com"]  # from the primary
        assert time.monotonic() - started < 5
        assert _emails(client, "lag@") == ["lag@example.com"]
        _create(client, "after@example.com")
        assert _emails(client, "after@") == ["after@example.com"]  # read-your-write, now
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"primary": "ok", "replica": "error"}
        assert ready.json()["reads_from"] == "primary"
        metrics = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert metrics.status_code == 200, metrics.text
        fallbacks = FALLBACK_READS.search(metrics.text)
        assert fallbacks is not None
        assert float(fallbacks[1]) >= 3

        with serve_baked(project, env | {"DB_REPLICA_FALLBACK": "fail"}) as failing_url:
            started = time.monotonic()
            refused = httpx.get(f"{failing_url}{USERS}", timeout=15)
            assert refused.status_code == 503, refused.text
            assert refused.headers["retry-after"]
            assert time.monotonic() - started < 5

        cluster.standby.start()
        cluster.wait_for_replay(DATABASE, "SELECT count(*) FROM users", "2")
        cluster.standby.sql("SELECT pg_wal_replay_pause()")
        _create(client, "back@example.com")
        # The list misses the new user only once the replica serves it again.
        _until(lambda: _emails(client, "back@") == [], "reads never went back to the replica")
        cluster.standby.sql("SELECT pg_wal_replay_resume()")
        assert client.get("/readyz").json()["reads_from"] == "replica"
    log = printed[0]
    assert "the replica cannot be reached, reads go to the primary" in log
    assert "the replica answers again: reads go back to it" in log
