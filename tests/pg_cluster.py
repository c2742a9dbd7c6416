"""Private PostgreSQL servers for the tests: a primary and its streaming hot standby.

Built with the server's own tools (`initdb`, `pg_ctl`, `pg_basebackup -R`) in a
temporary folder, on free loopback ports, as the `postgres` user when the tests run
as root (PostgreSQL refuses to run as root). The machine's own server on port 5432
is never touched.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

BIN_GLOB = "/usr/lib/postgresql/*/bin"
START_TIMEOUT = 60


class ClusterError(RuntimeError):
    """A private server could not be built or started."""


def _bin_dir() -> Path:
    candidates = sorted(Path("/").glob(BIN_GLOB.lstrip("/")), key=lambda p: int(p.parent.name))
    for candidate in reversed(candidates):
        if (candidate / "initdb").exists():
            return candidate
    raise ClusterError(f"no initdb under {BIN_GLOB} (Debian package postgresql)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _as_postgres(argv: Sequence[str]) -> list[str]:
    """PostgreSQL's tools refuse to run as root: run them as the postgres user."""
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else list(argv)


def _run(argv: Sequence[str], timeout: float = START_TIMEOUT) -> str:
    result = subprocess.run(
        _as_postgres(argv),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise ClusterError(f"{' '.join(argv)}: exit {result.returncode}\n{result.stderr[-2000:]}")
    return result.stdout


@dataclass
class Server:
    """One private server: its data folder, its port, and control over it."""

    bin: Path
    data: Path
    port: int

    @property
    def log(self) -> Path:
        return self.data.parent / f"{self.data.name}.log"

    def start(self) -> None:
        _run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "start"])

    def stop(self) -> None:
        _run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"])

    def sql(self, statement: str, database: str = "postgres") -> str:
        """Run one statement with psql; return its unaligned output."""
        return _run(
            [
                "psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", database,
                "-c", statement,
            ],
            timeout=30,
        ).strip()  # fmt: skip

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"


@dataclass
class ReplicatedPostgres:
    primary: Server
    standby: Server

    def wait_for_replay(
        self, database: str, query: str, expected: str, timeout: float = 30
    ) -> None:
        """Until `query` on the standby gives what it gives on the primary."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.standby.sql(query, database) == expected:
                    return
            except ClusterError:
                pass  # e.g. the database has not reached the standby yet
            if time.monotonic() > deadline:
                raise ClusterError(f"the standby did not replay {query!r} within {timeout} s")
            time.sleep(0.1)


def _configure(data: Path, port: int, socket_dir: Path, extra: str = "") -> None:
    settings = (
        f"\nport = {port}\nlisten_addresses = '127.0.0.1'\n"
        f"unix_socket_directories = '{socket_dir}'\nfsync = off\n"
        "wal_level = replica\nmax_wal_senders = 4\nhot_standby = on\n" + extra
    )
    with (data / "postgresql.conf").open("a", encoding="utf-8") as conf:
        conf.write(settings)


@contextmanager
def replicated_postgres() -> Iterator[ReplicatedPostgres]:
    """A primary and a hot standby streaming from it, both started; stopped and
    removed afterwards."""
    bin_dir = _bin_dir()
    root = Path(tempfile.mkdtemp(prefix="ckt-pg-"))
    started: list[Server] = []
    try:
        if os.geteuid() == 0:
            shutil.chown(root, "postgres", "postgres")
        primary = Server(bin_dir, root / "primary", free_port())
        _run([str(bin_dir / "initdb"), "-D", str(primary.data), "-U", "postgres",
              "--auth=trust", "--no-sync"])  # fmt: skip
        _configure(primary.data, primary.port, root)
        primary.start()
        started.append(primary)
        standby = Server(bin_dir, root / "standby", free_port())
        _run([str(bin_dir / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary.port),
              "-U", "postgres", "-D", str(standby.data), "-R", "-X", "stream"])  # fmt: skip
        _configure(standby.data, standby.port, root)
        standby.start()
        started.append(standby)
        if standby.sql("SELECT pg_is_in_recovery()") != "t":
            raise ClusterError("the standby is not in recovery")
        yield ReplicatedPostgres(primary, standby)
    finally:
        for server in reversed(started):
            with suppress(ClusterError):  # already stopped by the test
                server.stop()
        shutil.rmtree(root, ignore_errors=True)
