"""The container's own commands, run here since there is no Docker engine, in the
image's file system as the Dockerfile builds it (tests/image_build.py: installed
from uv.lock, without the dev tools or the source tree) and with the environment
the image and docker-compose.yml (filled from the baked `.env`) give them: the
Dockerfile's CMD serves (with several workers) and migrates nothing, and compose's
`migrate` command does; the HEALTHCHECK, the same command as compose's, passes
whenever the process serves, even with the database down, which only /readyz
reports. Metrics add up across workers in the image's multiprocess directory, for
the scraper that sends compose's METRICS_TOKEN only.

auth=jwt needs one more secret (JWT_SECRET_KEY): one jwt bake runs here too. Its
compose environment comes from the same lines on every database, and
tests/test_static_files.py checks that each database's compose passes every secret;
SQLite's needs no server, so it adds the least time.

task_queue=taskiq adds compose's `worker`: its command, from the image, with its
compose environment, takes the welcome email of a user created through the image's
CMD from RabbitMQ to an SMTP server of the test's, its healthcheck passes, and
SIGTERM ends it within compose's stop_grace_period."""

import asyncio
import email
import json
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import pytest
from aiosmtpd.controller import Controller
from dockerfile_parse import DockerfileParser
from dotenv import dotenv_values
from prometheus_client.parser import text_string_to_metric_families
from ruamel.yaml import YAML
from sqlalchemy import inspect
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tests.baked_app import serve_baked
from tests.conftest import RUN_ID, Bakery, DatabaseServer, run, tail
from tests.image_build import Image, build_image
from tests.pg_cluster import free_port
from tests.variants import DATABASES, TEST_PYTHON_VERSION, Variant

WORKERS = 3
IMAGE_PORT = "8000"
COMPOSE_VARIABLE = re.compile(r"\$\{(\w+)(?::\?[^}]*)?\}")  # ${NAME} and ${NAME:?error}


def _image_commands(project: Path) -> tuple[list[str], list[str]]:
    """The runtime stage's CMD and HEALTHCHECK command."""
    parser = DockerfileParser(path=str(project / "Dockerfile"))
    instructions = [(i["instruction"], i["value"]) for i in parser.structure]
    command = json.loads(next(value for name, value in instructions if name == "CMD"))
    healthcheck = next(value for name, value in instructions if name == "HEALTHCHECK")
    probe = json.loads(healthcheck[healthcheck.index("CMD ") + len("CMD ") :])
    return command, probe


def _here(image: Image, argv: list[str], port: int) -> list[str]:
    """The image's argv on this machine: its venv, loopback, a free port."""
    python = str(image.python)
    replaced = {"python": python, "0.0.0.0": "127.0.0.1", IMAGE_PORT: str(port)}  # noqa: S104
    argv = [replaced.get(arg, arg.replace(f":{IMAGE_PORT}/", f":{port}/")) for arg in argv]
    return [python, "-m", *argv] if argv[0] == "uvicorn" else argv


def _compose_environment(project: Path, service: dict[str, Any]) -> dict[str, str]:
    """A service's `environment`, its variables filled from `.env` as compose does."""
    dotenv = dotenv_values(project / ".env")

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        assert dotenv.get(name), f"docker-compose.yml needs {name}, which .env does not set"
        return str(dotenv[name])

    return {k: COMPOSE_VARIABLE.sub(value, str(v)) for k, v in service["environment"].items()}


def _unreachable(url: str, folder: Path) -> str:
    parsed = make_url(url)
    dead = (
        parsed.set(database=str(folder / "no-such-dir" / "x.db"))
        if parsed.get_backend_name() == "sqlite"
        else parsed.set(port=1)
    )
    return dead.render_as_string(hide_password=False)


async def _tables(url: str) -> list[str]:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(lambda sync: inspect(sync).get_table_names())
    finally:
        await engine.dispose()


def _requests_counted(base_url: str, route: str, token: str) -> float:
    assert httpx.get(f"{base_url}/metrics", timeout=5).status_code == 401
    bearer = {"Authorization": f"Bearer {token}"}
    scraped = httpx.get(f"{base_url}/metrics", headers=bearer, timeout=5)
    assert scraped.status_code == 200
    metrics = scraped.text
    return sum(
        sample.value
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
        if sample.name == "http_requests_total" and sample.labels["route"] == route
    )


@pytest.mark.parametrize(
    ("database_server", "auth"),
    [*((database, "none") for database in DATABASES), ("sqlite", "jwt")],
    indirect=["database_server"],
)
def test_the_images_command_and_healthcheck(
    bakery: Bakery,
    database_server: DatabaseServer,
    auth: str,
    throwaway_databases: list[str],
    tmp_path: Path,
) -> None:
    variant = Variant(database_server.database, "yes", "no", TEST_PYTHON_VERSION, auth=auth)
    project = bakery.project(variant)
    image = build_image(project, tmp_path / "image")
    assert not image.path("/srv/app").exists()  # the installed package serves, not a copy
    assert not image.path("/opt/venv/bin/pytest").exists()  # no dev tools in the image
    command, probe = _image_commands(project)
    image_env = image.environment
    services = YAML(typ="safe", pure=True).load((project / "docker-compose.yml").read_text())[
        "services"
    ]
    assert services["app"]["healthcheck"]["test"] == ["CMD", *probe]
    assert image_env["ENVIRONMENT"] == "production"

    name = f"ckt_{RUN_ID}_{database_server.database}_{auth}_image"
    throwaway_databases.append(name)
    database_server.create(name)
    url = database_server.url(name)  # compose's points at its `db` service instead
    env = {
        **image_env,
        **_compose_environment(project, services["app"]),
        "WEB_CONCURRENCY": str(WORKERS),
    }

    for database_url, ready in ((url, 200), (_unreachable(url, tmp_path), 503)):
        port = free_port()
        container = {  # a new container: a new /tmp
            "DATABASE_URL": database_url,
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / f"prometheus-{ready}"),
        }
        with serve_baked(
            image.cwd, {**env, **container}, command=_here(image, command, port), port=port
        ) as base_url:
            token = env["METRICS_TOKEN"]
            before = _requests_counted(base_url, "/livez", token)  # serve_baked's own wait
            for _ in range(20):  # spread over the workers
                assert httpx.get(f"{base_url}/livez", timeout=5).status_code == 200
            healthcheck = subprocess.run(_here(image, probe, port), timeout=10, check=False)
            assert healthcheck.returncode == 0  # the container counts as healthy
            assert httpx.get(f"{base_url}/readyz", timeout=5).status_code == ready
            # Whichever worker answers, /metrics counts every worker's requests.
            for _ in range(WORKERS):
                assert _requests_counted(base_url, "/livez", token) == before + 21

    assert "alembic_version" not in asyncio.run(_tables(url))  # the CMD migrated nothing
    migrate_env = {
        **image_env,
        **_compose_environment(project, services["migrate"]),
        "DATABASE_URL": url,
    }
    migrated = run(_here(image, services["migrate"]["command"], 0), cwd=image.cwd, env=migrate_env)
    assert migrated.returncode == 0, tail(migrated.stdout)
    assert "alembic_version" in asyncio.run(_tables(url))


class _Inbox:
    """An SMTP server's handler that keeps each email's Message-ID."""

    def __init__(self) -> None:
        self.message_ids: list[str] = []
        self.arrived = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.message_ids.append(str(email.message_from_bytes(envelope.content)["Message-ID"]))
        self.arrived.set()
        return "250 OK"


async def _delete_queues(broker_url: str, name: str, max_attempts: int) -> None:
    """What the worker declared for this test's queue (app/tasks/topology.py)."""
    connection = await aio_pika.connect(broker_url)
    async with connection:
        channel = await connection.channel()
        for queue in [name, f"{name}.dead-letter"] + [
            f"{name}.retry-{n}" for n in range(1, max_attempts)
        ]:
            await channel.queue_delete(queue)
        await channel.exchange_delete(name)


def _healthy(command: list[str], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if subprocess.run(command, timeout=10, check=False).returncode == 0:
            return True
        time.sleep(0.5)
    return False


def test_the_workers_command_runs_a_task_from_the_image(
    bakery: Bakery, rabbitmq_url: str, tmp_path: Path
) -> None:
    variant = Variant("sqlite", "yes", "no", TEST_PYTHON_VERSION, task_queue="taskiq")
    project = bakery.project(variant)
    image = build_image(project, tmp_path / "image")
    command, _ = _image_commands(project)
    services = YAML(typ="safe", pure=True).load((project / "docker-compose.yml").read_text())[
        "services"
    ]
    worker = services["worker"]
    metrics_port, web_port, smtp_port = free_port(), free_port(), free_port()
    healthcheck = [
        arg.replace(":9100/", f":{metrics_port}/")
        for arg in _here(image, worker["healthcheck"]["test"][1:], 0)
    ]
    assert healthcheck != _here(image, worker["healthcheck"]["test"][1:], 0)  # the port replaced
    queue = f"ckt-{RUN_ID}-image-worker"
    here = {  # this machine's database file, RabbitMQ and SMTP server, a queue of its own
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'app.db'}",
        "BROKER_URL": rabbitmq_url,
        "TASK_QUEUE_NAME": queue,
        "TASK_MAX_ATTEMPTS": "2",
        "RELAY_POLL_SECONDS": "0.2",
    }
    metrics_dirs = {}
    for container in ("app", "worker", "migrate"):  # a /tmp each
        metrics_dirs[container] = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / container)}
        (tmp_path / container).mkdir()
    web_env = {**image.environment, **_compose_environment(project, services["app"]), **here}
    web_env |= metrics_dirs["app"]
    worker_env = {
        **image.environment,
        **_compose_environment(project, worker),
        **here,
        "SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
        "WORKER_METRICS_PORT": str(metrics_port),
        **metrics_dirs["worker"],
    }
    migrate_env = {
        **image.environment,
        **_compose_environment(project, services["migrate"]),
        **here,
        **metrics_dirs["migrate"],
    }
    migrated = run(_here(image, services["migrate"]["command"], 0), cwd=image.cwd, env=migrate_env)
    assert migrated.returncode == 0, tail(migrated.stdout)

    inbox = _Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    process = subprocess.Popen(
        _here(image, worker["command"], 0),
        cwd=image.cwd,
        env={**os.environ, **worker_env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert _healthy(healthcheck, 30), "the worker's healthcheck never passed"
        with serve_baked(
            image.cwd, web_env, command=_here(image, command, web_port), port=web_port
        ) as base_url:
            created = httpx.post(
                f"{base_url}/api/v1/users",
                json={"email": "ada@example.com", "full_name": "Ada"},
                timeout=10,
            )
            assert created.status_code == 201, created.text
        assert inbox.arrived.wait(30), "the welcome email never arrived"
        assert len(inbox.message_ids) == 1
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        grace = float(str(worker["stop_grace_period"]).removesuffix("s"))
        output, _ = process.communicate(timeout=grace)
        assert process.returncode == 0, output[-3000:]
        assert time.monotonic() - started < grace
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        smtp.stop()
        asyncio.run(_delete_queues(rabbitmq_url, queue, 2))
