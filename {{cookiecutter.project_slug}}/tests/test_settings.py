"""Bad configuration fails at start-up, naming the variable and the expected form."""
{% if cookiecutter.database != "sqlite" %}
import re
{% endif %}
import pytest
from pydantic import ValidationError

from app.settings import DRIVER, PLACEHOLDER, Settings

SECRET = "a-real-secret-key"  # noqa: S105 -- a test value


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


@pytest.mark.parametrize("environment", ["test", "production"])
def test_placeholder_secret_key_refused_outside_development(environment: str) -> None:
    Settings(secret_key=PLACEHOLDER, environment="development")  # fine while developing
    with pytest.raises(ValidationError, match="SECRET_KEY is the placeholder"):
        Settings(secret_key=PLACEHOLDER, environment=environment)
    Settings(secret_key=SECRET, environment=environment)
{%- if cookiecutter.database != "sqlite" %}


@pytest.mark.parametrize("variable", ["database_url", "database_replica_url"])
@pytest.mark.parametrize("environment", ["test", "production"])
def test_placeholder_password_refused_outside_development(environment: str, variable: str) -> None:
    url = f"{DRIVER}://app:{PLACEHOLDER}@127.0.0.1/{{ cookiecutter.__db_name }}"
    Settings.model_validate({variable: url, "environment": "development"})  # fine while developing
    with pytest.raises(ValidationError, match=f"{variable.upper()} uses the placeholder password"):
        Settings.model_validate({variable: url, "environment": environment, "secret_key": SECRET})


def test_replica_url_must_use_this_services_driver() -> None:
    with pytest.raises(
        ValidationError, match=re.escape(f"DATABASE_REPLICA_URL must be a {DRIVER} URL")
    ):
        Settings(database_replica_url="{{ 'postgresql+psycopg://postgres@localhost/db' if cookiecutter.database == 'postgresql' else 'mysql+pymysql://root@localhost/db' }}")
{%- endif %}
