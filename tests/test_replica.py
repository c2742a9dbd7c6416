"""The baked PostgreSQL service against a real streaming replica.

A private primary and a hot standby (`tests/pg_cluster.py`) serve the baked app
under uvicorn with DATABASE_REPLICA_URL set. With the standby's replay paused, a
user that was just created is missing from the list (a read on the replica) but
found by id (a read on the primary); once replay resumes the list shows it; with
the standby stopped, lists answer 503 within seconds while writes go on.
"""

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.baked_app import serve_baked
from tests.conftest import IN_CI, RUN_ID, Bakery, python, run, tail
from tests.pg_cluster import ClusterError, ReplicatedPostgres, replicated_postgres
from tests.variants import TEST_PYTHON_VERSION, Variant

DATABASE = f"ckt_{RUN_ID}_replica"
USERS = "/api/v1/users"


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
    response = client.get(USERS, params={"email": email})
    assert response.status_code == 200, response.text
    return [user["email"] for user in response.json()]


def test_reads_are_served_by_the_replica_and_writes_by_the_primary(
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

    env = {"DATABASE_URL": primary, "DATABASE_REPLICA_URL": standby}
    with serve_baked(project, env) as base_url, httpx.Client(base_url=base_url) as client:
        cluster.standby.sql("SELECT pg_wal_replay_pause()")
        created = client.post(USERS, json={"email": "lag@example.com", "full_name": "Lag"})
        assert created.status_code == 201, created.text
        assert _emails(client, "lag@") == []  # the replica has not replayed it
        by_id = client.get(f"{USERS}/{created.json()['id']}")  # the primary has it
        assert by_id.status_code == 200, by_id.text

        cluster.standby.sql("SELECT pg_wal_replay_resume()")
        deadline = time.monotonic() + 10
        while _emails(client, "lag@") != ["lag@example.com"]:
            assert time.monotonic() < deadline, "the list never showed the replayed user"
            time.sleep(0.1)

        cluster.standby.stop()
        started = time.monotonic()
        listed = client.get(USERS, timeout=15)
        assert listed.status_code == 503, listed.text
        assert listed.headers["retry-after"]
        assert time.monotonic() - started < 5
        again = client.post(USERS, json={"email": "after@example.com", "full_name": "After"})
        assert again.status_code == 201, again.text
        assert client.get(f"{USERS}/{again.json()['id']}").status_code == 200
