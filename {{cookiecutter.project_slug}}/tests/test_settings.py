"""Bad configuration fails at start-up, naming the variable and the expected form."""
{% if cookiecutter.database != "sqlite" %}
import re
{%- endif %}
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from app.settings import DRIVER, PLACEHOLDER, SIGNING_KEYS, Settings, get_settings

SECRET = "a-real-secret-key-of-at-least-32-bytes"  # noqa: S105 -- a test value


def keys(value: str) -> dict[str, Any]:
    """Every signing key set to `value`, as keyword arguments of Settings."""
    return dict.fromkeys(SIGNING_KEYS, value)


KEYS = keys(SECRET)


# The right database through another driver is refused too: the code relies on this one.
@pytest.mark.parametrize(
    "url",
    [
        "not a url",
{%- if cookiecutter.database == "sqlite" %}
        "sqlite:///./app.db",
        "sqlite+pysqlite:///./app.db",
{%- elif cookiecutter.database == "postgresql" %}
        "postgresql://postgres@localhost/db",
        "postgresql+psycopg://postgres@localhost/db",
{%- else %}
        "mysql://root@localhost/db",
        "mysql+pymysql://root@localhost/db",
{%- endif %}
    ],
)
def test_database_url_must_use_this_services_driver(url: str) -> None:
    with pytest.raises(ValidationError) as error:
        Settings(database_url=url)
    message = str(error.value)
    assert "DATABASE_URL" in message
    assert DRIVER in message


@pytest.mark.parametrize("key", SIGNING_KEYS)
@pytest.mark.parametrize("environment", ["test", "production"])
def test_a_signing_key_must_be_real_outside_development(environment: str, key: str) -> None:
    name = key.upper()
    Settings(**KEYS, environment=environment)
    for value, refusal in (
        ("", f"{name} is not set"),
        (PLACEHOLDER, f"{name} is the placeholder"),
        ("k" * 31, f"{name} must be at least 32 bytes"),
    ):
        with pytest.raises(ValidationError, match=refusal):
            Settings(**{**KEYS, key: value}, environment=environment)


def test_development_makes_up_a_key_per_process_and_says_so() -> None:
    """Only with ENVIRONMENT=development: in place of a missing or placeholder key, a
    random one of each Settings (of each process), never the placeholder."""
    made_up = [Settings(**keys(key), environment="development") for key in ("", PLACEHOLDER)]
    for key in SIGNING_KEYS:
        first, second = (getattr(settings, key) for settings in made_up)
        assert first != second
        assert PLACEHOLDER not in (first, second)
        assert len(first.encode()) >= 32
        for settings in made_up:
            warnings = settings.startup_warnings
            assert any(w.startswith(f"{key.upper()} is unset or the placeholder") for w in warnings)
    assert Settings(**KEYS, environment="development").startup_warnings == []


def test_the_default_environment_is_production(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env
    for name in ("ENVIRONMENT", *(key.upper() for key in SIGNING_KEYS)):
        monkeypatch.delenv(name, raising=False)
    assert Settings(**KEYS).environment == "production"
    with pytest.raises(ValidationError, match="SECRET_KEY is not set"):
        Settings()


@pytest.mark.parametrize("environment", ["test", "production"])
def test_the_metrics_token_is_unset_or_real(environment: str) -> None:
    assert Settings(**KEYS, environment=environment, metrics_token=SECRET).metrics_token == SECRET
    with pytest.raises(ValidationError, match="METRICS_TOKEN is the placeholder"):
        Settings(**KEYS, environment=environment, metrics_token=PLACEHOLDER)
    with pytest.raises(ValidationError, match="METRICS_TOKEN must be at least 32 bytes"):
        Settings(**KEYS, environment=environment, metrics_token="k" * 31)
    Settings(**KEYS, environment="development", metrics_token=PLACEHOLDER)  # while developing
    # Unset, /metrics is open: said at start-up in production.
    warnings = Settings(**KEYS, environment=environment, metrics_token=None).startup_warnings
    said = ["METRICS_TOKEN is not set: /metrics answers anyone who reaches it"]
    assert warnings == (said if environment == "production" else [])


def test_cors_origins_are_origins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ORIGINS", "https://App.example.com, http://localhost:5173")
    listed = Settings(**KEYS).cors_origins
    assert listed == ["https://app.example.com", "http://localhost:5173"]
    for origin in ("*", "https://app.example.com/", "app.example.com", "https://u@app.example.com"):
        with pytest.raises(ValidationError, match="CORS_ORIGINS lists origins"):
            Settings(**KEYS, cors_origins=[origin])


def test_a_refusal_never_shows_a_value() -> None:
    """Refusals end up in logs: no value in them, which may be a secret (a password in
    a URL, a key that is too short), nor any other setting's."""
    url = "oracle://app:url-password@db.example.com/app"
    with pytest.raises(ValidationError) as wrong_driver:
        Settings(database_url=url, **KEYS)
    with pytest.raises(ValidationError) as short_key:
        Settings(**{**KEYS, "secret_key": "short-secret-value"}, environment="production")
    assert "DATABASE_URL must be" in str(wrong_driver.value)
    assert "url-password" not in str(wrong_driver.value)
    assert "SECRET_KEY must be at least 32 bytes" in str(short_key.value)
    assert "short-secret-value" not in str(short_key.value)
    assert SECRET not in str(short_key.value)


def test_bad_settings_stop_the_process_with_one_line_and_no_value(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """get_settings() (the app, alembic, the scripts): every refusal, on one line,
    without the values, which may be secrets."""
    monkeypatch.chdir(tmp_path)  # no .env
    monkeypatch.delenv("ENVIRONMENT", raising=False)
    for key in SIGNING_KEYS:
        monkeypatch.setenv(key.upper(), f"short-{key}")
    get_settings.cache_clear()
    try:
        with pytest.raises(SystemExit) as stopped:
            get_settings()
    finally:
        get_settings.cache_clear()
    message = str(stopped.value.code)
    assert message.startswith("invalid settings: ")
    assert "\n" not in message
    for key in SIGNING_KEYS:
        assert f"{key.upper()} must be at least 32 bytes" in message
        assert f"short-{key}" not in message
{%- if cookiecutter.database != "sqlite" %}


@pytest.mark.parametrize("variable", ["database_url", "database_replica_url"])
@pytest.mark.parametrize("environment", ["test", "production"])
def test_placeholder_password_refused_outside_development(environment: str, variable: str) -> None:
    url = f"{DRIVER}://app:{PLACEHOLDER}@127.0.0.1/{{ cookiecutter.__db_name }}"
    Settings.model_validate({variable: url, "environment": "development"})  # fine while developing
    with pytest.raises(ValidationError, match=f"{variable.upper()} uses the placeholder password"):
        Settings.model_validate({variable: url, "environment": environment, **KEYS})


def test_replica_url_must_use_this_services_driver() -> None:
    with pytest.raises(
        ValidationError, match=re.escape(f"DATABASE_REPLICA_URL must be a {DRIVER} URL")
    ):
        Settings(database_replica_url="{{ 'postgresql+psycopg://postgres@localhost/db' if cookiecutter.database == 'postgresql' else 'mysql+pymysql://root@localhost/db' }}")
{%- endif %}
