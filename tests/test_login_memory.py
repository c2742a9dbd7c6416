"""A burst of anonymous log-ins does not grow the served process without bound.

Every log-in hashes (an unknown email against a stand-in hash, for equal timing), and
argon2id holds PASSWORD_HASH_MEMORY_KIB per hash while it runs: with one thread per
request, a dozen requests were enough to take a 512 Mi pod down. The baked `auth=jwt`
service, at its shipped hashing cost, under uvicorn in a process of its own, takes 48
concurrent log-ins for unknown emails (each from an address of its own, so the throttle
stays out of it); the process's peak resident memory (`VmHWM`) may exceed its size
before the burst by at most 200 MiB. Linux only (/proc), like the servers these tests use.
"""

import asyncio
from pathlib import Path

import httpx
import pytest

from tests.baked_app import serve_baked
from tests.conftest import RUN_ID, Bakery, DatabaseServer, python, run, tail
from tests.pg_cluster import free_port
from tests.variants import TEST_PYTHON_VERSION, Variant

LOG_INS = 48
LIMIT_MIB = 200
VARIANT = Variant("postgresql", "no", "no", TEST_PYTHON_VERSION, auth="jwt")


def _server_pid(port: int) -> int:
    """The uvicorn process listening on `port` (started by serve_baked)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"uvicorn" in b" ".join(argv) and str(port).encode() in argv:
            return int(entry.name)
    raise AssertionError(f"no uvicorn process on port {port}")


def _kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


async def _log_ins(base_url: str) -> list[int]:
    limits = httpx.Limits(max_connections=LOG_INS)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as client:
        answers = await asyncio.gather(
            *(
                client.post(
                    "/api/v1/auth/token",
                    data={"username": f"nobody{i}@example.com", "password": "a guess"},
                    headers={"X-Forwarded-For": f"198.51.100.{i + 1}"},
                )
                for i in range(LOG_INS)
            )
        )
    return [answer.status_code for answer in answers]


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
@pytest.mark.parametrize("database_server", ["postgresql"], indirect=True)
def test_48_concurrent_log_ins_grow_the_process_by_at_most_200_mib(
    bakery: Bakery, database_server: DatabaseServer, throwaway_databases: list[str]
) -> None:
    project = bakery.project(VARIANT)
    name = f"ckt_{RUN_ID}_login_memory"
    throwaway_databases.append(name)
    database_server.create(name)
    url = database_server.url(name)
    alembic = python("-m", "alembic", "upgrade", "head")
    migrated = run(alembic, cwd=project, env={"DATABASE_URL": url})
    assert migrated.returncode == 0, tail(migrated.stdout)
    port = free_port()
    # The shipped hashing cost and concurrency; a long wait for a slot, so that no
    # log-in is turned away (503) on a busy machine: memory is what is measured here.
    env = {"DATABASE_URL": url, "PASSWORD_HASH_WAIT_SECONDS": "60"}
    with serve_baked(project, env, port=port) as base_url:
        pid = _server_pid(port)
        before = _kib(pid, "VmRSS")
        statuses = asyncio.run(_log_ins(base_url))
        peak = _kib(pid, "VmHWM")
    grown_mib = (peak - before) / 1024
    print(f"peak {peak / 1024:.0f} MiB: {grown_mib:.0f} MiB above {before / 1024:.0f} MiB before")
    assert grown_mib <= LIMIT_MIB, f"{LOG_INS} log-ins grew the process by {grown_mib:.0f} MiB"
    assert set(statuses) == {401}, statuses
