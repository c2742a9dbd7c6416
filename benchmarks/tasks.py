"""Benchmark the task queue: what enqueueing costs a request, and how fast a relay publishes.

    python benchmarks/tasks.py            # about 2 minutes on 2 cores
    python benchmarks/tasks.py --smoke    # tiny sizes, about 30 s (the test suite runs it)

1. create, without and with a task: bakes database=postgresql twice, task_queue=none
   and task_queue=taskiq (the same project otherwise), each on a fresh database, serves
   each under uvicorn (one process, loopback) and drives `POST /api/v1/users` from
   benchmarks/loadgen.py (closed loop), the two alternating for several rounds. With
   the task queue a create is a transaction: the user, its outbox row and a NOTIFY; no
   worker runs, so only the request's own cost is measured.
2. relay: in the task-queue bake, N outbox rows, then one relay publishes them all to
   the machine's RabbitMQ (confirmed, mandatory, persistent) and marks them sent: rows
   per second, at two batch sizes. Beside it, as the ceiling, the same number of
   messages published with confirms by aio-pika alone (no database), in the same run.
Needs PostgreSQL on 127.0.0.1:5432 and RabbitMQ on 127.0.0.1:5672 (guest). Prints a
table and writes benchmarks/results/tasks-<time>.json. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))  # run as a script: benchmarks/ is not a package then
from benchmarks.run import (  # noqa: E402 -- one harness for both benchmarks
    RESULTS,
    SECRET_KEY,
    loadgen,
    log,
    run,
    start_server,
)
from benchmarks.run import Config as RunConfig  # noqa: E402

SLUG = "bench-tasks"
BROKER_URL = "amqp://guest:guest@127.0.0.1:5672/"
ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass
class Config:
    smoke: bool = False
    rounds: int = 3
    duration: float = 8.0
    warmup: float = 2.0
    concurrency: int = 16
    relay_rows: int = 20_000
    batch_sizes: tuple[int, ...] = (100, 500)
    database_prefix: str = "bench_tasks"
    output: str | None = None

    def url(self, task_queue: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{self.database_prefix}_{task_queue}"


def bake(into: Path, task_queue: str) -> Path:
    answers = [
        "database=postgresql",
        "run_first_migration=no",
        f"project_slug={SLUG}",
        f"task_queue={task_queue}",
    ]
    command = [sys.executable, "-m", "cookiecutter", str(REPO), "--no-input", "-o", str(into)]
    into.mkdir(parents=True)
    run([*command, *answers], into, os.environ.copy())
    return into / SLUG


def environment(cfg: Config, task_queue: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": cfg.url(task_queue),
        "ENVIRONMENT": "production",
        "SECRET_KEY": SECRET_KEY,
        "BROKER_URL": BROKER_URL,
        "LOG_REQUESTS": "true",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


async def recreate(cfg: Config, task_queue: str, project: Path) -> None:
    import asyncpg  # type: ignore[import-untyped]

    name = f"{cfg.database_prefix}_{task_queue}"
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    run([sys.executable, "-m", "alembic", "upgrade", "head"], project, environment(cfg, task_queue))


async def drop(cfg: Config) -> None:
    import asyncpg

    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        for task_queue in ("none", "taskiq"):
            name = f"{cfg.database_prefix}_{task_queue}"
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def create_load(cfg: Config, port: int, tag: str) -> dict[str, Any]:
    job = {
        "mode": "closed",
        "host": "127.0.0.1",
        "port": port,
        "concurrency": cfg.concurrency,
        "warmup": cfg.warmup,
        "duration": cfg.duration,
        "requests": {"kind": "create_user", "path": "/api/v1/users", "prefix": tag},
        "ok_status": [201],
    }
    return loadgen(job)


# Runs in the task-queue bake (its `app` package): seeds the outbox, relays it, and
# publishes the same number of messages with aio-pika alone. One JSON line out.
RELAY_SCRIPT = """
import asyncio, json, sys, time, uuid
import aio_pika
from sqlalchemy import delete, insert
from app.db.keys import new_id
from app.db.outbox import OutboxMessage, task_name
from app.db.types import utcnow
from app.settings import Settings
from app.tasks.broker import worker_database
from app.tasks.publisher import Publisher
from app.tasks.relay import Relay
from app.tasks.topology import Topology
from app.tasks.welcome_email import send_welcome_email

ROWS, BATCH = int(sys.argv[1]), int(sys.argv[2])
QUEUE = f"bench-{uuid.uuid4().hex[:8]}"


async def main():
    settings = Settings().model_copy(
        update={"task_queue_name": QUEUE, "relay_batch_size": BATCH}
    )
    topology = Topology.of(settings)
    result = {}
    async with worker_database(settings) as database:
        rows = [
            {"id": new_id(), "task": task_name(send_welcome_email),
             "payload": {"user_id": str(uuid.uuid4())}, "request_id": None,
             "created_at": utcnow()}
            for _ in range(ROWS)
        ]
        async with database.transaction() as connection:
            await connection.execute(delete(OutboxMessage))
            await connection.execute(insert(OutboxMessage), rows)
        async with Publisher(settings) as publisher:
            relay = Relay(database, publisher, settings)
            started = time.perf_counter()
            while await relay.relay_batch():
                pass
            result["relay_seconds"] = time.perf_counter() - started
    body = json.dumps({"task_id": str(uuid.uuid4()), "task_name": "x", "labels": {},
                       "args": [], "kwargs": {"user_id": str(uuid.uuid4())}}).encode()
    connection = await aio_pika.connect(settings.broker_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        baseline = f"{QUEUE}.baseline"
        await channel.declare_queue(baseline, durable=True, arguments={"x-queue-type": "quorum"})
        started = time.perf_counter()
        for first in range(0, ROWS, BATCH):
            await asyncio.gather(*(
                channel.default_exchange.publish(
                    aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                    routing_key=baseline,
                )
                for _ in range(min(BATCH, ROWS - first))
            ))
        result["baseline_seconds"] = time.perf_counter() - started
        for name in [baseline, topology.queue, topology.dead_letter_queue,
                     *(topology.retry_queue(n) for n in range(1, topology.max_attempts))]:
            await channel.queue_delete(name)
        await channel.exchange_delete(topology.exchange)
    print(json.dumps(result))


asyncio.run(main())
"""


def relay_run(cfg: Config, project: Path, batch: int) -> dict[str, float]:
    output = run(
        [sys.executable, "-c", RELAY_SCRIPT, str(cfg.relay_rows), str(batch)],
        project,
        environment(cfg, "taskiq"),
    )
    times: dict[str, float] = json.loads(output.strip().splitlines()[-1])
    return times


@dataclass
class Row:
    scenario: str
    unit: str
    value: float
    baseline_name: str
    baseline: float
    extra: str = ""

    @property
    def ratio(self) -> float:
        return self.value / self.baseline if self.baseline else 0.0


def benchmark(cfg: Config) -> dict[str, Any]:
    rows: list[Row] = []
    rounds: dict[str, list[dict[str, Any]]] = {"none": [], "taskiq": []}
    relay: dict[int, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-tasks-") as folder:
        root = Path(folder)
        projects = {}
        servers = {}
        try:
            for task_queue in ("none", "taskiq"):
                log(f"baking task_queue={task_queue}")
                projects[task_queue] = bake(root / task_queue, task_queue)
                asyncio.run(recreate(cfg, task_queue, projects[task_queue]))
                servers[task_queue] = start_server(
                    task_queue,
                    "app.main:create_app",
                    projects[task_queue],
                    environment(cfg, task_queue),
                    RunConfig(),  # uvicorn's defaults: --loop auto --http auto
                    root,
                )
            for number in range(cfg.rounds):
                order = ("none", "taskiq") if number % 2 == 0 else ("taskiq", "none")
                for task_queue in order:
                    log(f"round {number + 1}: create, task_queue={task_queue}")
                    result = create_load(cfg, servers[task_queue].port, f"r{number}{task_queue}")
                    rounds[task_queue].append(result)
        finally:
            for server in servers.values():
                server.stop()
        for batch in cfg.batch_sizes:
            log(f"relay: {cfg.relay_rows} rows, batches of {batch}")
            relay[batch] = [relay_run(cfg, projects["taskiq"], batch)]
        asyncio.run(drop(cfg))

    def median(task_queue: str, key: str) -> float:
        return float(statistics.median(r[key] for r in rounds[task_queue]))

    rows.append(
        Row(
            "create, with a task vs without",
            "req/s",
            median("taskiq", "rps"),
            "create without",
            median("none", "rps"),
            f"p50 {median('taskiq', 'p50_ms'):.1f} vs {median('none', 'p50_ms'):.1f} ms; "
            f"p99 {median('taskiq', 'p99_ms'):.1f} vs {median('none', 'p99_ms'):.1f} ms",
        )
    )
    for batch, runs in relay.items():
        (times,) = runs
        rows.append(
            Row(
                f"relay, batches of {batch}",
                "rows/s",
                cfg.relay_rows / times["relay_seconds"],
                "aio-pika alone",
                cfg.relay_rows / times["baseline_seconds"],
            )
        )
    errors = {tq: sum(r["errors"] for r in rs) for tq, rs in rounds.items()}
    return {
        "config": asdict(cfg),
        "rows": [asdict(r) | {"ratio": r.ratio} for r in rows],
        "rounds": rounds,
        "relay": {str(k): v for k, v in relay.items()},
        "errors": errors,
    }


def table(report: dict[str, Any]) -> str:
    lines = [
        "| scenario | unit | value | baseline | baseline value | ratio | notes |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in report["rows"]:
        lines.append(
            f"| {r['scenario']} | {r['unit']} | {r['value']:,.0f} | {r['baseline_name']} "
            f"| {r['baseline']:,.0f} | {r['ratio']:.2f} | {r['extra']} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, about 30 s")
    parser.add_argument("--rounds", type=int, help="create rounds per app (3)")
    parser.add_argument("--relay-rows", type=int, help="outbox rows per relay run (20000)")
    parser.add_argument("--duration", type=float, help="seconds measured per create round (8)")
    parser.add_argument("--database-prefix", help="the two databases' prefix (bench_tasks)")
    parser.add_argument("--output", help="where the JSON goes (benchmarks/results/...)")
    arguments = parser.parse_args()
    cfg = Config()
    if arguments.smoke:
        cfg = Config(
            smoke=True, rounds=1, duration=1.0, warmup=0.5, relay_rows=300, batch_sizes=(100,)
        )
    for name in ("rounds", "relay_rows", "duration", "database_prefix", "output"):
        if getattr(arguments, name) is not None:
            setattr(cfg, name, getattr(arguments, name))
    started = time.monotonic()
    report = benchmark(cfg)
    report["seconds"] = round(time.monotonic() - started, 1)
    name = time.strftime("tasks-%Y%m%dT%H%M%SZ.json", time.gmtime())
    output = Path(cfg.output) if cfg.output else RESULTS / name
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    print(table(report))
    print(f"\n{report['seconds']} s; errors: {report['errors']}; written to {output}")
    return 0 if not any(report["errors"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
