"""A private PgBouncer for the tests, in transaction mode, in front of a PostgreSQL server.

The Debian package's `pgbouncer`, started in the foreground on a free loopback port
with its configuration, log and pid file in a temporary folder; as the `postgres`
user when the tests run as root (PgBouncer refuses to run as root). The machine's
own PgBouncer service, if any, is never touched.
Docs: https://www.pgbouncer.org/config.html
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.pg_cluster import free_port

START_TIMEOUT = 20
STOP_TIMEOUT = 2
POOL_SIZE = 8  # server connections per database and user


class PgBouncerError(RuntimeError):
    """PgBouncer could not be found or started."""


@dataclass(frozen=True)
class PgBouncer:
    port: int
    log: Path

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"


def _config(folder: Path, port: int, server_port: int) -> str:
    return f"""\
[databases]
* = host=127.0.0.1 port={server_port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {folder}/userlist.txt
pool_mode = transaction
default_pool_size = {POOL_SIZE}
max_client_conn = 1000
logfile = {folder}/pgbouncer.log
pidfile = {folder}/pgbouncer.pid
"""


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@contextmanager
def running_pgbouncer(server_port: int = 5432) -> Iterator[PgBouncer]:
    binary = shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None
    )
    if binary is None:
        raise PgBouncerError("no pgbouncer binary (Debian package pgbouncer; .ci/run installs it)")
    folder = Path(tempfile.mkdtemp(prefix="ckt-pgbouncer-"))
    port = free_port()
    (folder / "userlist.txt").write_text('"postgres" ""\n', encoding="utf-8")
    config = folder / "pgbouncer.ini"
    config.write_text(_config(folder, port, server_port), encoding="utf-8")
    # Run as postgres directly (no runuser in between), so that signals reach it.
    user: dict[str, object] = {}
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
        for path in folder.iterdir():
            shutil.chown(path, "postgres", "postgres")
        user = {"user": "postgres", "group": "postgres", "extra_groups": []}
    process = subprocess.Popen(
        [binary, str(config)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **user,  # type: ignore[call-overload]
    )
    bouncer = PgBouncer(port, folder / "pgbouncer.log")
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not _accepts(port):
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                log = bouncer.log.read_text() if bouncer.log.exists() else ""
                raise PgBouncerError(f"pgbouncer did not start:\n{process.communicate()[0]}\n{log}")
            time.sleep(0.1)
        yield bouncer
    finally:
        if process.poll() is None:
            process.terminate()  # SIGTERM: "immediate shutdown", though it may linger
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(folder, ignore_errors=True)
