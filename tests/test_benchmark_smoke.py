"""The benchmark harnesses still work: `python benchmarks/run.py --smoke` and
`python benchmarks/tasks.py --smoke` end to end.

Bakes the PostgreSQL variant, seeds a tiny database, runs every scenario against the
baked app and the raw-asyncpg reference for about a second each, and checks the
report: every scenario present, every number positive, the two apps' responses
equal. It asserts no performance target (CI machines vary); the full run does that.

Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth): skipped without it,
except under CI=true, where it fails (the `postgres_server` fixture).
"""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT, PostgresServer

SCENARIOS = {"list", "last page", "get", "create", "bulk", "export"}
ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture(scope="module")
def report(
    postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench") / "smoke.json"
    command = [
        sys.executable,
        str(REPO_ROOT / "benchmarks" / "run.py"),
        "--smoke",
        "--database",
        "bench_svc_smoke",  # not the full run's database: both may run at once
        "--admin-dsn",
        ADMIN_DSN,
        "--output",
        str(out),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    assert "| scenario" in result.stdout, result.stdout
    data: dict[str, Any] = json.loads(out.read_text())
    return data


def test_every_scenario_is_reported(report: dict[str, Any]) -> None:
    reported = {row["scenario"] for row in report["table"]}
    assert reported >= SCENARIOS
    assert "bulk (vs COPY)" in reported


def test_numbers_are_positive(report: dict[str, Any]) -> None:
    for row in report["table"]:
        for key in ("baked", "reference", "ratio", "baked_p50_ms", "baked_p99_ms", "ref_p50_ms"):
            assert row[key] > 0, (row["scenario"], key, row[key])
        assert row["baked_statements"] is not None, row
        assert row["baked_statements"] > 0, row
    export = next(row for row in report["table"] if row["scenario"] == "export")
    assert export["rows"] > 0
    assert export["baked_rss_growth_mb"] >= 0


def test_both_apps_answer_the_same(report: dict[str, Any]) -> None:
    assert set(report["same_responses"]) == SCENARIOS
    for scenario, runs in report["raw"].items():
        for app, results in runs.items():
            assert results, (scenario, app)
            assert all(r["errors"] == 0 for r in results), (scenario, app, results)


def test_the_task_queue_benchmark_runs(
    postgres_server: PostgresServer, rabbitmq_url: str, tmp_path: Path
) -> None:
    """`python benchmarks/tasks.py --smoke`: both parts reported, each beside its
    baseline, every number positive, no request failed."""
    out = tmp_path / "tasks.json"
    command = [
        sys.executable,
        str(REPO_ROOT / "benchmarks" / "tasks.py"),
        "--smoke",
        "--database-prefix",
        "bench_tasks_smoke",
        "--output",
        str(out),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    report = json.loads(out.read_text())
    scenarios = [row["scenario"] for row in report["rows"]]
    assert scenarios == ["create, with a task vs without", "relay, batches of 100"]
    for row in report["rows"]:
        assert row["value"] > 0, row
        assert row["baseline"] > 0, row
    assert report["errors"] == {"none": 0, "taskiq": 0}
