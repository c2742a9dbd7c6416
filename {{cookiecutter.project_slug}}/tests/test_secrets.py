{%- set users = cookiecutter.__users == "yes" -%}
{%- set auth = cookiecutter.auth == "jwt" -%}
"""No configuration means nothing forgeable (docs/security.md): without its keys the
service does not start, and says why in one line; with ENVIRONMENT=development it
makes up a key per process and says so{% if users %}, so that what anyone can sign with the
placeholder `change-me` is refused{% endif %}."""

import os
import subprocess
import sys
{%- if users %}
import uuid
from datetime import UTC, datetime
{%- endif %}
from pathlib import Path

import pytest
{%- if users %}
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy.ext.asyncio import AsyncConnection
{%- endif %}

{% if auth -%}
from app.auth import tokens
{% endif -%}
{% if users -%}
from app.db.pagination import Position, encode_cursor
{% endif -%}
from app.main import create_app
from app.settings import {% if users %}PLACEHOLDER, {% endif %}SIGNING_KEYS, Settings
from tests.helpers import {% if users %}RolledBackDatabase, {% endif %}log_entries, serve

PROJECT_ROOT = Path(__file__).resolve().parent.parent
NAMES = [key.upper() for key in SIGNING_KEYS]
START_TIMEOUT = 30
{%- if auth %}
ME = "/api/v1/users/me"
{%- endif %}


def development(settings: Settings, key: str) -> Settings:
    """The tests' settings in development, every signing key set to `key`."""
    values = settings.model_dump() | {"environment": "development"}
    return Settings.model_validate(values | dict.fromkeys(SIGNING_KEYS, key))


def test_without_its_keys_the_service_does_not_start(tmp_path: Path) -> None:
    """The image's command, with no key and no ENVIRONMENT (production), and no .env
    (it runs in another directory): exit 1 and one line naming each key."""
    unset = {"ENVIRONMENT", *NAMES}
    environment = {k: v for k, v in os.environ.items() if k not in unset}
    started = subprocess.run(
        [sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory", "--port", "0"],
        cwd=tmp_path,
        env={**environment, "PYTHONPATH": str(PROJECT_ROOT)},
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,  # a service that starts instead would be waited for in vain
        check=False,
    )
    output = (started.stdout + started.stderr).strip()
    assert started.returncode == 1, output
    assert len(output.splitlines()) == 1, output
    for name in NAMES:
        assert f"{name} is not set" in output


async def test_development_makes_up_its_keys_and_says_so(
    test_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = development(test_settings, "")
    async with serve(create_app(settings)):
        pass
    entries = log_entries(capsys.readouterr().err)
    warnings = [e["message"] for e in entries if e["level"] == "WARNING"]
    for name in NAMES:
        said = f"{name} is unset or the placeholder: this process signs with a random key"
        assert any(w.startswith(said) for w in warnings)
{%- if users %}


@pytest.fixture
def placeholder_app(connection: AsyncConnection, test_settings: Settings) -> FastAPI:
    """The app in development with every key left at the placeholder, on the test's
    rolled-back connection."""
    app = create_app(development(test_settings, PLACEHOLDER))
    app.state.database = RolledBackDatabase(connection)
    return app


def _client(app: FastAPI) -> AsyncClient:
    transport = ASGITransport(app=app, raise_app_exceptions=False)
    return AsyncClient(transport=transport, base_url="http://test")


def _cursor(secret: str) -> str:
    position = Position(datetime.now(UTC), uuid.uuid4())
    return encode_cursor(position, name="/api/v1/users", filters={}, secret=secret)


async def test_a_cursor_signed_with_the_placeholder_is_refused(placeholder_app: FastAPI) -> None:
    settings: Settings = placeholder_app.state.settings
    assert settings.secret_key != PLACEHOLDER
    async with _client(placeholder_app) as client:
        # Signed with the key the process made up, a cursor is good: the test can pass.
        good = await client.get("/api/v1/users", params={"cursor": _cursor(settings.secret_key)})
        forged = await client.get("/api/v1/users", params={"cursor": _cursor(PLACEHOLDER)})
    assert good.status_code == 200, good.text
    assert forged.status_code == 422
{%- endif %}
{%- if auth %}


# PyJWT warns that the placeholder is a short key: that is the forger's problem here.
@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
async def test_a_token_signed_with_the_placeholder_is_refused(placeholder_app: FastAPI) -> None:
    settings: Settings = placeholder_app.state.settings
    forger = settings.model_copy(update={"jwt_secret_key": PLACEHOLDER})
    async with _client(placeholder_app) as client:
        registered = await client.post(
            "/api/v1/auth/register",
            json={"email": "ada@example.com", "full_name": "Ada", "password": "x" * 16},
        )
        assert registered.status_code == 201, registered.text
        user, now = uuid.UUID(registered.json()["id"]), datetime.now(UTC)
        forged, _ = tokens.issue(forger, "access", subject=user, now=now, generation=0)
        genuine, _ = tokens.issue(settings, "access", subject=user, now=now, generation=0)
        refused = await client.get(ME, headers={"Authorization": f"Bearer {forged}"})
        accepted = await client.get(ME, headers={"Authorization": f"Bearer {genuine}"})
    assert accepted.status_code == 200, accepted.text  # the same token, signed right, is good
    assert refused.status_code == 401
{%- endif %}
