"""A baked project's app under uvicorn in a process of its own, as it runs in
production, on a free loopback port."""

import os
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import python
from tests.pg_cluster import free_port

STARTUP_TIMEOUT = 30


@contextmanager
def serve_baked(
    project: Path,
    env: Mapping[str, str],
    *,
    args: tuple[str, ...] = (),
    command: Sequence[str] | None = None,
    port: int | None = None,
    output: list[str] | None = None,
) -> Iterator[str]:
    """`uvicorn app.main:create_app --factory` with `env` on top of this process's
    environment; yields the base URL once the app answers. `command` replaces that
    command line (it must listen on `port`); `output`, if given, receives what the
    server printed. On the way out, a clean shutdown is required."""
    port = port or free_port()
    argv = command or python(
        "-m", "uvicorn", "app.main:create_app", "--factory", "--port", str(port), *args
    )
    server = subprocess.Popen(
        list(argv),
        cwd=project,
        env={**os.environ, "LOG_REQUESTS": "false", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            try:
                # /livez: served in every environment (the docs are not, outside development).
                if httpx.get(f"{base_url}/livez", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"uvicorn did not come up:\n{server.communicate()[0]}")
            time.sleep(0.2)
        yield base_url
    finally:
        if server.poll() is None:
            server.terminate()
        printed, _ = server.communicate(timeout=STARTUP_TIMEOUT)
        if output is not None:
            output.append(printed)
        # uvicorn re-raises SIGTERM after a clean shutdown: -15 is the normal exit.
        assert server.returncode in (0, -signal.SIGTERM), printed
        assert "Application shutdown complete" in printed, printed
