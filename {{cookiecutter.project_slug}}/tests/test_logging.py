"""Structured logs: a JSON line per request, slow statements and SQL echo on demand."""

import json
from typing import Any

import pytest

from app.main import create_app
from app.settings import Settings
from tests.helpers import serve


def _log_lines(captured: str) -> list[dict[str, Any]]:
    """The JSON log entries written by the app and SQLAlchemy (not the test client)."""
    entries = [json.loads(line) for line in captured.splitlines() if line.startswith("{")]
    return [e for e in entries if e["logger"].startswith(("app.", "sqlalchemy."))]


async def test_each_request_logs_one_json_line(
    test_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    async with serve(create_app(test_settings)) as client:
        await client.get("/health")
    requests = [e for e in _log_lines(capsys.readouterr().err) if e["logger"] == "app.request"]
    assert len(requests) == 1
    assert requests[0]["path"] == "/health"
    assert requests[0]["status"] == 200
    assert requests[0]["duration_ms"] >= 0


async def test_slow_statements_and_echo_are_logged_when_enabled(
    test_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    noisy = test_settings.model_copy(
        update={"db_slow_query_ms": 0.0001, "database_echo": True, "log_requests": False}
    )
    async with serve(create_app(noisy)) as client:
        await client.get("/health")
    entries = _log_lines(capsys.readouterr().err)
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
    assert _log_lines(capsys.readouterr().err) == []


async def test_request_id_is_kept_or_made_and_sent_back(
    test_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    async with serve(create_app(test_settings)) as client:
        given = await client.get("/health", headers={"X-Request-ID": "edge-42"})
        made = await client.get("/health")
        junk = await client.get("/health", headers={"X-Request-ID": "bad id\\with spaces"})
    assert given.headers["x-request-id"] == "edge-42"
    assert len(made.headers["x-request-id"]) == 32
    assert junk.headers["x-request-id"] != "bad id\\with spaces"
    logged = [e["request_id"] for e in _log_lines(capsys.readouterr().err)]
    assert logged[:2] == ["edge-42", made.headers["x-request-id"]]
