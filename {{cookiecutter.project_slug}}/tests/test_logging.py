"""Structured logs: a JSON line per request, the request id on every record made while
serving it, slow statements and SQL echo on demand."""

import logging
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.db.engine import create_engines
from app.db.session import ReadConnection
from app.main import create_app
from app.settings import Settings
from tests.helpers import log_entries, serve


def _app_lines(captured: str) -> list[dict[str, Any]]:
    """The JSON log entries written by the app and SQLAlchemy (not the test client)."""
    return [e for e in log_entries(captured) if e["logger"].startswith(("app", "sqlalchemy."))]


def app_that_logs(settings: Settings) -> FastAPI:
    app = create_app(settings)

    @app.get("/_probe/logs")
    async def logs(connection: ReadConnection) -> dict[str, bool]:
        logging.getLogger("app.probe").warning("deep inside the request")
        await connection.execute(text("SELECT 1"))
        return {"ok": True}

    return app


async def test_each_request_logs_one_json_line(
    test_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    async with serve(create_app(test_settings)) as client:
        await client.get("/health")
    requests = [e for e in _app_lines(capsys.readouterr().err) if e["logger"] == "app.request"]
    assert len(requests) == 1
    assert requests[0]["path"] == "/health"
    assert requests[0]["status"] == 200
    assert requests[0]["duration_ms"] >= 0


async def test_every_record_made_while_serving_carries_the_request_id(
    test_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not only the access line: the app's own records and SQLAlchemy's too."""
    noisy = test_settings.model_copy(update={"db_slow_query_ms": 0.0001})
    async with serve(app_that_logs(noisy)) as client:
        await client.get("/_probe/logs", headers={"X-Request-ID": "trace-7"})
        await client.get("/_probe/logs", headers={"X-Request-ID": "trace-8"})
    entries = _app_lines(capsys.readouterr().err)
    by_logger: dict[str, list[str | None]] = {}
    for entry in entries:
        by_logger.setdefault(entry["logger"], []).append(entry.get("request_id"))
    assert by_logger["app.probe"] == ["trace-7", "trace-8"]
    assert by_logger["app.request"] == ["trace-7", "trace-8"]
    slow_probe_queries = [e.get("request_id") for e in entries if e.get("statement") == "SELECT 1"]
    assert set(slow_probe_queries) == {"trace-7", "trace-8"}


async def test_slow_statements_and_echo_are_logged_when_enabled(
    test_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    noisy = test_settings.model_copy(
        update={"db_slow_query_ms": 0.0001, "database_echo": True, "log_requests": False}
    )
    async with serve(create_app(noisy)) as client:
        await client.get("/health")
    entries = _app_lines(capsys.readouterr().err)
    slow = [e for e in entries if e["logger"] == "app.db.slow_query"]
    assert any(e["statement"] == "SELECT 1" for e in slow)
    assert any(e["logger"].startswith("sqlalchemy.engine") for e in entries)
    assert not any(e["logger"] == "app.request" for e in entries)


async def test_quiet_without_request_log(
    test_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    quiet = test_settings.model_copy(update={"log_requests": False})
    async with serve(create_app(quiet)) as client:
        await client.get("/health")
    assert _app_lines(capsys.readouterr().err) == []


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("edge-42", True),
        ("a" * 64, True),
        ("a" * 65, False),  # too long
        ("bad id", False),  # a space
        ("tab\there", False),  # a control character
        ("ünïcode", False),  # not printable ASCII
    ],
)
async def test_a_client_request_id_is_kept_only_when_short_and_printable(
    test_settings: Settings, capsys: pytest.CaptureFixture[str], sent: str, kept: bool
) -> None:
    async with serve(create_app(test_settings)) as client:
        response = await client.get("/health", headers={b"X-Request-ID": sent.encode()})
    echoed = response.headers["x-request-id"]
    [logged] = [e["request_id"] for e in _app_lines(capsys.readouterr().err)]
    assert logged == echoed
    if kept:
        assert echoed == sent
    else:
        assert echoed != sent
        assert len(echoed) == 32  # a fresh id


async def test_a_database_error_shows_none_of_the_values_it_was_sent(
    test_settings: Settings,
) -> None:
    """A failed statement's error (what a 500 logs with its traceback) names the SQL,
    never its parameters: they can be personal data. DATABASE_ECHO shows them."""
    personal = "someone@example.com"
    for echo, shown in ((False, False), (True, True)):
        engines = create_engines(test_settings.model_copy(update={"database_echo": echo}))
        try:
            with pytest.raises(DBAPIError) as raised:
                async with engines.writer.connect() as connection:
                    await connection.execute(
                        text("SELECT * FROM no_such_table WHERE email = :email"),
                        {"email": personal},
                    )
        finally:
            await engines.dispose()
        assert "no_such_table" in str(raised.value)
        assert (personal in str(raised.value)) is shown, str(raised.value)


async def test_debug_logs_show_no_values_sent_to_the_database(
    test_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """LOG_LEVEL=DEBUG shows more of the app and its libraries, never the values of a
    statement (personal data): only DATABASE_ECHO does."""
    marker = "someone@example.com"
    debug = test_settings.model_copy(update={"log_level": "DEBUG", "log_requests": False})
    app = create_app(debug)

    @app.get("/_probe/value")
    async def value(connection: ReadConnection) -> dict[str, str]:
        return {"value": str(await connection.scalar(text("SELECT :v"), {"v": marker}))}

    async with serve(app) as client:
        assert (await client.get("/_probe/value")).json() == {"value": marker}
    assert marker not in capsys.readouterr().err
