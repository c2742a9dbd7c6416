"""Bad configuration fails at start-up, naming the variable and the expected form."""

import pytest
from pydantic import ValidationError

from app.settings import DRIVER, Settings


@pytest.mark.parametrize(
    "url",
    [
        "not a url",
        "postgresql+psycopg://user@localhost/db",
        "mysql+pymysql://root@localhost/db",
        "sqlite:///plain-driver.db",
    ],
)
def test_database_url_must_use_this_services_driver(url: str) -> None:
    with pytest.raises(ValidationError) as error:
        Settings(database_url=url)
    message = str(error.value)
    assert "DATABASE_URL" in message
    assert DRIVER in message
{%- if cookiecutter.database != "sqlite" %}


@pytest.mark.parametrize("environment", ["test", "production"])
def test_placeholder_password_refused_outside_development(environment: str) -> None:
    url = f"{DRIVER}://app:change-me@127.0.0.1/{{ cookiecutter.__db_name }}"
    Settings(database_url=url, environment="development")  # fine while developing
    with pytest.raises(ValidationError, match="placeholder password"):
        Settings(database_url=url, environment=environment)
{%- endif %}
