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
SQLite's needs no server, so it adds the least time."""

import asyncio
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
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
