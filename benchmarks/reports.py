"""The report and list endpoints at 100,000 rows per table, before and after issue 21.

    python benchmarks/reports.py                    # against `main`, about 4 minutes
    python benchmarks/reports.py --baseline 1da4da8 --rows 100000 --rounds 3
    python benchmarks/reports.py --auth jwt --baseline 58c0213 --after e8bfc61  # issue 20

Bakes the PostgreSQL example variant (`--auth` none or jwt) twice, from a git revision
(`--baseline`, the code as it was) and from this working tree or `--after` (the code
as it is), gives each a
database of its own migrated by its own migrations, and seeds both with the same
rows by COPY: `--rows` users, posts (a fifth of them by one author, the busiest)
and role links. Both apps then serve under uvicorn, one process each, and the load
generator (benchmarks/loadgen.py) drives every scenario on one, then the other, for
`--rounds` interleaved rounds. Prints a table of medians and writes
benchmarks/results/reports-<time>.json; both databases are dropped at the end.
Needs PostgreSQL on 127.0.0.1:5432.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import random
import statistics
import subprocess
import sys
import tarfile
import tempfile
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))  # run as a script: benchmarks/ is not a package then
from benchmarks.run import (  # noqa: E402 -- one harness for both benchmarks
    POST_COUNT_COLUMN,
    RESULTS,
    SLUG,
    Config,
    Server,
    http,
    loadgen,
    log,
    project_env,
    run,
    start_server,
)

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
BUSIEST_SHARE = 0.2


@dataclass(frozen=True)
class Side:
    label: str
    project: Path
    database: str


def bake(template: Path, into: Path, auth: str) -> Path:
    answers = ["database=postgresql", "run_first_migration=no", f"project_slug={SLUG}"]
    answers.append(f"auth={auth}")
    command = [sys.executable, "-m", "cookiecutter", str(template), "--no-input", "-o", str(into)]
    into.mkdir(parents=True, exist_ok=True)
    run([*command, *answers], into, project_env(Config()))
    return into / SLUG


def template_at(revision: str, into: Path) -> Path:
    """The repository as it was at `revision` (git archive), for cookiecutter."""
    archive = subprocess.run(  # noqa: S603 -- git, our arguments
        ["git", "-C", str(REPO), "archive", "--format=tar", revision],  # noqa: S607
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


async def prepare(side: Side, rows: int) -> str:
    """A fresh database at head, seeded; returns the busiest author's id."""
    import asyncpg  # type: ignore[import-untyped]

    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{side.database}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{side.database}"')
    finally:
        await admin.close()
    env = project_env(_config(side.database))
    run([sys.executable, "-m", "alembic", "upgrade", "head"], side.project, env)
    return await seed(f"postgresql://postgres@127.0.0.1:5432/{side.database}", rows)


async def drop(database: str) -> None:
    import asyncpg

    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    finally:
        await admin.close()


async def seed(dsn: str, rows: int) -> str:
    """The same rows every time (a fixed random seed)."""
    import asyncpg

    rng = random.Random(21)  # noqa: S311 -- sample data
    start = datetime(2026, 1, 1, tzinfo=UTC)

    def new_id() -> uuid.UUID:
        return uuid.UUID(int=rng.getrandbits(128), version=4)

    user_ids = [new_id() for _ in range(rows)]
    busiest = int(rows * BUSIEST_SHARE)
    authors = [0 if i < busiest else (i * 7919) % rows for i in range(rows)]
    counts = [0] * rows
    for author in authors:
        counts[author] += 1
    role = new_id()
    conn = await asyncpg.connect(dsn)
    try:
        columns = ["id", "email", "full_name", "version", "created_at", "updated_at"]
        users = [
            (uid, f"user{i}@example.com", f"User {i}", 1, start + timedelta(seconds=i))
            for i, uid in enumerate(user_ids)
        ]
        records: list[tuple[Any, ...]] = [(*user, user[4]) for user in users]
        if await conn.fetchval(POST_COUNT_COLUMN):
            columns.append("post_count")
            records = [(*record, counts[i]) for i, record in enumerate(records)]
        await conn.copy_records_to_table("users", records=records, columns=columns)
        posts = [
            (
                new_id(),
                user_ids[author],
                f"Post {i}",
                "Sample body.",
                i % 1000,
                start + timedelta(seconds=i),
                start + timedelta(seconds=i),
            )
            for i, author in enumerate(authors)
        ]
        post_columns = [
            "id",
            "author_id",
            "title",
            "body",
            "view_count",
            "created_at",
            "updated_at",
        ]
        await conn.copy_records_to_table("posts", records=posts, columns=post_columns)
        await conn.copy_records_to_table(
            "roles", records=[(role, "member")], columns=["id", "name"]
        )
        links = [(uid, role) for uid in user_ids]
        await conn.copy_records_to_table(
            "user_roles", records=links, columns=["user_id", "role_id"]
        )
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    return str(user_ids[0])


def _config(database: str) -> Config:
    return Config(database=database)


def scenarios(busiest: str, auth: str = "none") -> dict[str, dict[str, Any]]:
    """Anonymous requests. Under auth=jwt, creating a user is for admins (since issue
    20), so the anonymous reads alone: what every request's access rule costs."""

    def get(*paths: str) -> dict[str, Any]:
        return {"kind": "get", "paths": list(paths)}

    every = {
        "posts/latest": get("/api/v1/posts/latest"),
        "posts/latest 50x20": get("/api/v1/posts/latest?authors=50&per_user=20"),
        "users/post-counts": get("/api/v1/users/post-counts?limit=20"),
        "users (page of 50)": get("/api/v1/users?limit=50"),
        "busiest author": get(f"/api/v1/users/{busiest}"),
        "posts?title=": get(f"/api/v1/posts?title={quote('Post 4242')}"),
        "create user": {"kind": "create_user", "path": "/api/v1/users", "prefix": "bench"},
    }
    return {name: spec for name, spec in every.items() if auth == "none" or spec["kind"] == "get"}


def measure(server: Server, spec: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    return loadgen(
        {
            "mode": "closed",
            "host": "127.0.0.1",
            "port": server.port,
            "concurrency": args.concurrency,
            "warmup": args.warmup,
            "duration": args.duration,
            "requests": spec
            | ({"prefix": f"{spec['prefix']}-{uuid.uuid4().hex[:8]}"} if "prefix" in spec else {}),
        }
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", default="main", help="git revision of the code as it was")
    parser.add_argument("--rows", type=int, default=100_000, help="rows per table")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds measured per run")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--after", help="git revision of the code as it is (default: this working tree)"
    )
    parser.add_argument("--auth", choices=["none", "jwt"], default="none")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-reports-") as scratch:
        root = Path(scratch)
        sides = [
            Side(
                "before",
                bake(template_at(args.baseline, root / "old"), root / "before", args.auth),
                "bench_reports_before",
            ),
            Side(
                "after",
                bake(
                    template_at(args.after, root / "new") if args.after else REPO,
                    root / "after",
                    args.auth,
                ),
                "bench_reports_after",
            ),
        ]
        busiest = {}
        for side in sides:
            log(f"{side.label}: database, migrations, {args.rows} rows per table")
            busiest[side.label] = asyncio.run(prepare(side, args.rows))
        servers = {
            side.label: start_server(
                side.label,
                "app.main:create_app",
                side.project,
                project_env(_config(side.database)),
                Config(),
                root,
            )
            for side in sides
        }
        try:
            check_every_scenario_answers(servers, busiest, args.auth)
            results: dict[str, dict[str, list[dict[str, Any]]]] = {}
            for round_ in range(args.rounds):
                order = sides if round_ % 2 == 0 else sides[::-1]
                for name in scenarios(busiest["after"], args.auth):
                    for side in order:
                        spec = scenarios(busiest[side.label], args.auth)[name]
                        log(f"round {round_ + 1}: {name} on {side.label}")
                        outcome = measure(servers[side.label], spec, args)
                        results.setdefault(name, {}).setdefault(side.label, []).append(outcome)
        finally:
            for server in servers.values():
                server.stop()
            for side in sides:
                asyncio.run(drop(side.database))
    rows = summarize(results)
    print(render(rows, args))
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"reports-{stamp}.json"
    out.write_text(json.dumps({"args": vars(args), "rows": rows, "raw": results}, indent=2))
    log(f"wrote {out}")
    return 0


def check_every_scenario_answers(
    servers: dict[str, Server], busiest: dict[str, str], auth: str
) -> None:
    for label, server in servers.items():
        for name, spec in scenarios(busiest[label], auth).items():
            if spec["kind"] == "get":
                status, _ = http("GET", server.base + spec["paths"][0])
                if status != 200:
                    raise RuntimeError(f"{name} answered {status} on {label}")


def summarize(results: dict[str, dict[str, list[dict[str, Any]]]]) -> list[dict[str, Any]]:
    rows = []
    for name, by_side in results.items():
        row: dict[str, Any] = {"scenario": name}
        for label, runs in by_side.items():
            row[f"{label} req/s"] = statistics.median(r["rps"] for r in runs)
            row[f"{label} p50 ms"] = statistics.median(r["p50_ms"] for r in runs)
            row[f"{label} p99 ms"] = statistics.median(r["p99_ms"] for r in runs)
            row[f"{label} errors"] = sum(r.get("errors", 0) for r in runs)
        row["ratio"] = row["after req/s"] / row["before req/s"] if row["before req/s"] else 0.0
        rows.append(row)
    return rows


def render(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    lines = [
        f"auth={args.auth}; {args.rows:,} rows per table; {args.concurrency} connections; "
        f"medians of {args.rounds} interleaved rounds of {args.duration:g} s",
        "",
        "| scenario | before req/s | after req/s | after / before "
        "| before p50 / p99 ms | after p50 / p99 ms |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        before = f"{r['before p50 ms']:.1f} / {r['before p99 ms']:.1f}"
        after = f"{r['after p50 ms']:.1f} / {r['after p99 ms']:.1f}"
        lines.append(
            f"| {r['scenario']} | {r['before req/s']:,.0f} | {r['after req/s']:,.0f} "
            f"| {r['ratio']:.1f}x | {before} | {after} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
