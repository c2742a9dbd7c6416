"""Benchmark the baked PostgreSQL service against a raw-asyncpg reference.

    python benchmarks/run.py            # full run, about 5 minutes on 2 cores
    python benchmarks/run.py --smoke    # tiny sizes, under a minute (the test suite runs it)
    python -m benchmarks --help

Bakes the template (database=postgresql) into a temporary folder, creates a fresh
database, migrates it with Alembic, seeds it with COPY, starts the baked app and
benchmarks/reference_app.py under uvicorn (one process each, loopback, free ports),
checks that both answer with the same JSON, then drives them in turn from a
separate load-generator process (benchmarks/loadgen.py), alternating A/B for
several rounds. Prints a table and writes benchmarks/results/<time>.json.
See benchmarks/README.md for what each number means.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))  # run as a script: benchmarks/ is not a package then
from benchmarks.reference_app import encode_cursor  # noqa: E402 -- one cursor format

LOADGEN = HERE / "loadgen.py"
RESULTS = HERE / "results"
SLUG = "bench-svc"
SCENARIOS = ("list", "last page", "get", "create", "bulk", "export")
# Issue 9's targets (list, get, create) and issue 5's (bulk): baked / reference.
TARGETS = {"list": 0.45, "get": 0.35, "create": 0.4, "bulk": 0.5}
SECRET_KEY = "benchmark-secret-key-not-for-production"  # noqa: S105 -- signs both apps' cursors
EXPORT_MEMORY_TARGET_MB = 50.0
POST_COUNT_COLUMN = (
    "SELECT 1 FROM information_schema.columns "
    "WHERE table_name = 'users' AND column_name = 'post_count'"
)


@dataclass
class Config:
    smoke: bool = False
    rounds: int = 3
    duration: float = 8.0
    warmup: float = 2.0
    concurrency: int = 16
    users: int = 20_000
    posts_per_user: int = 5
    page: int = 50
    bulk_rows: int = 10_000
    bulk_requests: int = 3
    export_rows: int = 100_000
    database: str = "bench_svc_bench"
    admin_dsn: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    project_dir: str | None = None
    loop: str = "auto"
    http: str = "auto"
    keep_database: bool = False
    scenarios: tuple[str, ...] = SCENARIOS
    output: str | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def dsn(self) -> str:
        return self.admin_dsn.rsplit("/", 1)[0] + "/" + self.database

    @property
    def sqlalchemy_url(self) -> str:
        return self.dsn.replace("postgresql://", "postgresql+asyncpg://", 1)


SMOKE: dict[str, Any] = {
    "rounds": 1,
    "duration": 1.0,
    "warmup": 0.3,
    "concurrency": 4,
    "users": 200,
    "posts_per_user": 5,
    "bulk_rows": 500,
    "bulk_requests": 2,
    "export_rows": 2_000,
}


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- setup


def bake(into: Path) -> Path:
    """`cookiecutter --no-input` in a subprocess: the hooks' output stays out of the report."""
    answers = ["database=postgresql", "run_first_migration=no", f"project_slug={SLUG}"]
    command = [sys.executable, "-m", "cookiecutter", str(REPO), "--no-input", "-o", str(into)]
    run([*command, *answers], into, os.environ.copy())
    return into / SLUG


def project_env(cfg: Config) -> dict[str, str]:
    env = os.environ.copy()
    env.update(
        {
            "DATABASE_URL": cfg.sqlalchemy_url,
            "ENVIRONMENT": "production",
            "SECRET_KEY": SECRET_KEY,
            "DEBUG": "false",
            "DATABASE_ECHO": "false",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    env.update(cfg.env)
    return env


async def recreate_database(cfg: Config, project: Path) -> None:
    import asyncpg  # type: ignore[import-untyped]

    conn = await asyncpg.connect(cfg.admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{cfg.database}" WITH (FORCE)')
    finally:
        await conn.close()
    if (project / "scripts" / "db.py").exists():
        run([sys.executable, "-m", "scripts.db", "create"], project, project_env(cfg))
    else:  # older templates: create it here
        conn = await asyncpg.connect(cfg.admin_dsn)
        try:
            await conn.execute(f"CREATE DATABASE \"{cfg.database}\" ENCODING 'UTF8'")
        finally:
            await conn.close()


async def drop_database(cfg: Config) -> None:
    import asyncpg

    conn = await asyncpg.connect(cfg.admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{cfg.database}" WITH (FORCE)')
    finally:
        await conn.close()


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> str:
    proc = subprocess.run(  # noqa: S603 - our own interpreter and arguments
        cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc.stdout


@dataclass
class Seed:
    sample_ids: list[str]
    bulk_author: str
    posts: int
    users: int
    # (created_at, id) of the seeded users in list order: where keyset pages start.
    positions: list[tuple[datetime, uuid.UUID]] = field(default_factory=list)


async def seed(cfg: Config) -> Seed:
    """Users with posts and roles, written with COPY. Deterministic."""
    import asyncpg

    rng = random.Random(20261124)  # noqa: S311 - test data

    def new_id() -> uuid.UUID:
        return uuid.UUID(int=rng.getrandbits(128), version=4)

    base = datetime(2025, 1, 1, tzinfo=UTC)
    body = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 4).strip()
    users, posts, links = [], [], []
    roles = [(new_id(), name) for name in ("admin", "editor", "viewer")]
    user_ids = []
    positions = []
    for i in range(cfg.users):
        uid, created = new_id(), base + timedelta(seconds=i)
        user_ids.append(uid)
        positions.append((created, uid))
        users.append(
            (uid, f"user{i}@bench.example.com", f"User {i}", 1, created, created, False, None)
        )
        for k in range(cfg.posts_per_user):
            stamp = created + timedelta(milliseconds=k)
            posts.append(
                (
                    new_id(),
                    uid,
                    f"Post {k} of user {i}",
                    body,
                    (i * 7 + k) % 1000,
                    stamp,
                    stamp,
                    False,
                    None,
                )
            )
        if i % 3 == 0:
            links.append((uid, roles[0][0]))
        if i % 2 == 0:
            links.append((uid, roles[1][0]))
    # Users that no list page or sample reaches: the bulk-insert target, and an
    # archive author holding the extra posts that bring the export to its size.
    tail = base + timedelta(seconds=cfg.users + 10)
    bulk_author, archive = new_id(), new_id()
    users.append((bulk_author, "bulk@bench.example.com", "Bulk Author", 1, tail, tail, False, None))
    users.append((archive, "archive@bench.example.com", "Archive", 1, tail, tail, False, None))
    for j in range(max(0, cfg.export_rows - len(posts))):
        stamp = tail + timedelta(microseconds=j)
        posts.append(
            (new_id(), archive, f"Archived post {j}", body, j % 1000, stamp, stamp, False, None)
        )

    conn = await asyncpg.connect(cfg.dsn)
    try:
        ucols = [
            "id",
            "email",
            "full_name",
            "version",
            "created_at",
            "updated_at",
            "is_deleted",
            "deleted_at",
        ]
        if await conn.fetchval(POST_COUNT_COLUMN):  # kept by the writes since issue 21
            written: dict[uuid.UUID, int] = {}
            for post in posts:
                written[post[1]] = written.get(post[1], 0) + 1
            counted: list[tuple[Any, ...]] = [(*user, written.get(user[0], 0)) for user in users]
            users = counted  # one column more
            ucols.append("post_count")
        pcols = [
            "id",
            "author_id",
            "title",
            "body",
            "view_count",
            "created_at",
            "updated_at",
            "is_deleted",
            "deleted_at",
        ]
        await conn.copy_records_to_table("roles", records=roles, columns=["id", "name"])
        await conn.copy_records_to_table("users", records=users, columns=ucols)
        await conn.copy_records_to_table("posts", records=posts, columns=pcols)
        await conn.copy_records_to_table(
            "user_roles", records=links, columns=["user_id", "role_id"]
        )
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    sample = rng.sample(user_ids, min(1000, len(user_ids)))
    return Seed([str(u) for u in sample], str(bulk_author), len(posts), len(users), positions)


# --------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_server(
    name: str,
    app: str,
    cwd: Path,
    env: dict[str, str],
    cfg: Config,
    logs: Path,
    app_dir: Path | None = None,
) -> Server:
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    cmd += ["--loop", cfg.loop, "--http", cfg.http, "--no-access-log", "--log-level", "warning"]
    if app_dir is not None:
        cmd += ["--app-dir", str(app_dir)]
    log_path = logs / f"{name}.log"
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)  # noqa: S603
    server = Server(name, proc, port, log_path)
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n{log_path.read_text()}")
        try:
            status, _ = http("GET", server.base + "/health")
            if status == 200:
                return server
        except OSError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(
                f"{name} did not answer /health within 30 s:\n{log_path.read_text()}"
            )
        time.sleep(0.1)


def http(method: str, url: str, body: Any = None, limit: int | None = None) -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(  # noqa: S310 - http:// on loopback only
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:  # noqa: S310
            return resp.status, resp.read() if limit is None else read_lines(resp, limit)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def link(url: str) -> str | None:
    """The response's Link header."""
    with urllib.request.urlopen(url, timeout=120) as resp:  # noqa: S310 - loopback only
        value: str | None = resp.headers.get("Link")
        return value


def read_lines(resp: Any, limit: int) -> bytes:
    lines = []
    for _ in range(limit):
        line = resp.readline()
        if not line:
            break
        lines.append(line)
    return b"".join(lines)


def rss_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


# --------------------------------------------------------------------------- checks


MASKED = {"id", "email", "full_name", "created_at", "updated_at"}


def mask(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: "*" if k in MASKED else mask(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v) for v in value]
    return value


def verify_same_responses(baked: Server, ref: Server, sd: Seed, cfg: Config) -> dict[str, str]:
    """One request per endpoint to each app; the JSON must be equal."""
    verdicts: dict[str, str] = {}

    def compare(
        name: str, a: tuple[int, bytes], b: tuple[int, bytes], masked: bool = False
    ) -> None:
        if a[0] != b[0]:
            raise AssertionError(
                f"{name}: status {a[0]} (baked) != {b[0]} (reference)\n"
                f"{a[1][:500]!r}\n{b[1][:500]!r}"
            )
        if name == "export":
            ja = [json.loads(line) for line in a[1].splitlines()]
            jb = [json.loads(line) for line in b[1].splitlines()]
        else:
            ja, jb = json.loads(a[1]), json.loads(b[1])
        if masked:
            ja, jb = mask(ja), mask(jb)
        if ja != jb:
            raise AssertionError(
                f"{name}: the apps answer differently\nbaked: {a[1][:800]!r}\nref:   {b[1][:800]!r}"
            )
        verdicts[name] = (
            "identical bytes"
            if a[1] == b[1]
            else ("equal JSON (volatile fields masked)" if masked else "equal JSON")
        )

    q = f"/api/v1/users?limit={cfg.page}&offset=0"
    compare("list", http("GET", baked.base + q), http("GET", ref.base + q))
    links = {name: link(base + q) for name, base in (("baked", baked.base), ("ref", ref.base))}
    if links["baked"] != links["ref"] or links["baked"] is None:
        raise AssertionError(f"list: the Link headers differ: {links}")
    q = last_pages(sd, cfg)[-1]
    compare("last page", http("GET", baked.base + q), http("GET", ref.base + q))
    q = f"/api/v1/users/{sd.sample_ids[0]}"
    compare("get", http("GET", baked.base + q), http("GET", ref.base + q))

    def body(tag: str) -> dict[str, str]:
        return {"email": f"  Verify-{tag}@Bench.Example.com", "full_name": "  Verify  "}

    compare(
        "create",
        http("POST", baked.base + "/api/v1/users", body("a")),
        http("POST", ref.base + "/api/v1/users", body("b")),
        masked=True,
    )
    q = f"/api/v1/users/{sd.bulk_author}/posts/bulk"
    posts = {"posts": [{"title": f"t{i}", "body": "b"} for i in range(10)]}
    compare("bulk", http("POST", baked.base + q, posts), http("POST", ref.base + q, posts))
    clean_bulk(cfg, sd)
    q = "/api/v1/posts/export"
    compare(
        "export", http("GET", baked.base + q, limit=2000), http("GET", ref.base + q, limit=2000)
    )
    return verdicts


def clean_bulk(cfg: Config, sd: Seed) -> None:
    async def go() -> None:
        import asyncpg

        conn = await asyncpg.connect(cfg.dsn)
        try:
            await conn.execute("DELETE FROM posts WHERE author_id = $1", uuid.UUID(sd.bulk_author))
        finally:
            await conn.close()

    asyncio.run(go())


# --------------------------------------------------------------------------- load


def loadgen(job: dict[str, Any]) -> dict[str, Any]:
    proc = subprocess.run(  # noqa: S603
        [sys.executable, str(LOADGEN)],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed:\n{proc.stderr}")
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def last_pages(sd: Seed, cfg: Config, count: int = 20) -> list[str]:
    """Keyset pages among the last `count` of the seeded users, by their cursors."""
    starts = range(max(1, len(sd.positions) - count * cfg.page), len(sd.positions), cfg.page)
    return [
        f"/api/v1/users?limit={cfg.page}&cursor="
        + encode_cursor(SECRET_KEY, "/api/v1/users", *sd.positions[start - 1])
        for start in starts
    ]


def request_spec(
    scenario: str, sd: Seed, cfg: Config, tag: str, body_file: Path | None, method: str = ""
) -> dict[str, Any]:
    if scenario == "list":
        span = max(cfg.page, min(cfg.users, 1000))
        return {
            "kind": "get",
            "paths": [
                f"/api/v1/users?limit={cfg.page}&offset={o}"
                for o in range(0, span - cfg.page + 1, cfg.page)
            ],
        }
    if scenario == "last page":
        return {"kind": "get", "paths": last_pages(sd, cfg)}
    if scenario == "get":
        return {"kind": "get", "paths": [f"/api/v1/users/{i}" for i in sd.sample_ids]}
    if scenario == "create":
        return {
            "kind": "create_user",
            "path": "/api/v1/users",
            "prefix": f"{tag}-{uuid.uuid4().hex[:8]}",
        }
    if scenario == "bulk":
        suffix = f"?method={method}" if method else ""
        return {
            "kind": "post_file",
            "path": f"/api/v1/users/{sd.bulk_author}/posts/bulk{suffix}",
            "body_file": str(body_file),
        }
    raise ValueError(scenario)


def closed_run(server: Server, scenario: str, sd: Seed, cfg: Config, tag: str) -> dict[str, Any]:
    job = {
        "mode": "closed",
        "host": "127.0.0.1",
        "port": server.port,
        "concurrency": cfg.concurrency,
        "warmup": cfg.warmup,
        "duration": cfg.duration,
        "requests": request_spec(scenario, sd, cfg, tag, None),
    }
    return loadgen(job)


def bulk_run(server: Server, sd: Seed, cfg: Config, body_file: Path, method: str) -> dict[str, Any]:
    job = {
        "mode": "repeat",
        "host": "127.0.0.1",
        "port": server.port,
        "warmup_count": 1,
        "count": cfg.bulk_requests,
        "requests": request_spec("bulk", sd, cfg, "", body_file, method),
    }
    result = loadgen(job)
    clean_bulk(cfg, sd)
    rows = cfg.bulk_rows * result["requests"]
    result["rows_per_s"] = rows / result["elapsed_s"] if result["elapsed_s"] else 0.0
    return result


def export_run(server: Server) -> dict[str, Any]:
    pid = server.proc.pid
    cleared = True
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    except OSError:
        cleared = False
    before = rss_kb(pid, "VmRSS")
    peak = before
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            with contextlib.suppress(OSError):
                peak = max(peak, rss_kb(pid, "VmRSS"))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        result = loadgen(
            {
                "mode": "stream",
                "host": "127.0.0.1",
                "port": server.port,
                "path": "/api/v1/posts/export",
            }
        )
    finally:
        done.set()
        sampler.join()
    if cleared:
        peak = max(peak, rss_kb(pid, "VmHWM"))
    result["rss_before_mb"] = before / 1024
    result["rss_peak_mb"] = peak / 1024
    result["rss_growth_mb"] = (peak - before) / 1024
    result["peak_source"] = "VmHWM after clear_refs" if cleared else "VmRSS sampled every 20 ms"
    return result


def count_statements(
    project: Path,
    env: dict[str, str],
    ref_env: dict[str, str],
    cfg: Config,
    sd: Seed,
    logs: Path,
    body_file: Path,
) -> dict[str, Any]:
    """One request per scenario against counting copies of both apps (count_sql.py:
    the same asyncpg calls counted in each); the loop is plain asyncio there."""
    counting = replace(cfg, loop="asyncio")
    baked = start_server("baked-count", "count_sql:baked_app", project, env, counting, logs, HERE)
    try:
        ref = start_server(
            "ref-count", "count_sql:reference_app", project, ref_env, counting, logs, HERE
        )
    except BaseException:
        baked.stop()
        raise
    out: dict[str, Any] = {}
    try:
        for scenario in cfg.scenarios:
            counts: dict[str, Any] = {}
            for name, srv in (("baked", baked), ("reference", ref)):
                send_one(scenario, srv, name, cfg, sd, body_file)  # warm the statement caches
                before = json.loads(http("GET", srv.base + "/__bench__/sql")[1])
                send_one(scenario, srv, name, cfg, sd, body_file)
                after = json.loads(http("GET", srv.base + "/__bench__/sql")[1])
                delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
                counts[name] = {k: v for k, v in delta.items() if v}
            out[scenario] = counts
    finally:
        baked.stop()
        ref.stop()
    return out


def send_one(scenario: str, srv: Server, name: str, cfg: Config, sd: Seed, body_file: Path) -> None:
    """One request of the scenario (for the round-trip count)."""
    if scenario == "list":
        http("GET", srv.base + f"/api/v1/users?limit={cfg.page}&offset={cfg.page}")
    elif scenario == "last page":
        http("GET", srv.base + last_pages(sd, cfg)[-1])
    elif scenario == "get":
        http("GET", srv.base + f"/api/v1/users/{sd.sample_ids[1]}")
    elif scenario == "create":
        email = f"count-{name}-{uuid.uuid4().hex[:8]}@bench.example.com"
        http("POST", srv.base + "/api/v1/users", {"email": email, "full_name": "Count"})
    elif scenario == "bulk":
        req = urllib.request.Request(  # noqa: S310
            srv.base + f"/api/v1/users/{sd.bulk_author}/posts/bulk",
            data=body_file.read_bytes(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=120) as resp:  # noqa: S310
            resp.read()
        clean_bulk(cfg, sd)
    elif scenario == "export":
        http("GET", srv.base + "/api/v1/posts/export")


# --------------------------------------------------------------------------- report


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def summarize(raw: dict[str, Any], statements: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for scenario, runs in raw.items():
        variants = [("reference", "reference")]
        if scenario == "bulk":
            variants = [
                ("reference", "reference executemany"),
                ("reference_copy", "reference COPY"),
            ]
        metric = "rows_per_s" if scenario in ("bulk", "export") else "rps"
        baked = [r[metric] for r in runs["baked"]]
        for key, label in variants:
            ref = [r[metric] for r in runs[key]]
            row = {
                "scenario": scenario if key == "reference" else f"{scenario} (vs COPY)",
                "unit": "rows/s" if metric == "rows_per_s" else "req/s",
                "baked": median(baked),
                "reference": median(ref),
                "reference_label": label,
                "ratio": median(baked) / median(ref) if median(ref) else 0.0,
                "round_ratios": [b / r if r else 0.0 for b, r in zip(baked, ref, strict=False)],
                "target": TARGETS.get(scenario) if key == "reference" else None,
                "baked_p50_ms": median(
                    [r.get("p50_ms", r.get("elapsed_s", 0) * 1000) for r in runs["baked"]]
                ),
                "baked_p99_ms": median(
                    [r.get("p99_ms", r.get("elapsed_s", 0) * 1000) for r in runs["baked"]]
                ),
                "ref_p50_ms": median(
                    [r.get("p50_ms", r.get("elapsed_s", 0) * 1000) for r in runs[key]]
                ),
                "ref_p99_ms": median(
                    [r.get("p99_ms", r.get("elapsed_s", 0) * 1000) for r in runs[key]]
                ),
                "baked_statements": statements.get(scenario, {})
                .get("baked", {})
                .get("round_trips"),
                "ref_statements": statements.get(scenario, {})
                .get("reference", {})
                .get("round_trips")
                if key == "reference"
                else None,
            }
            if scenario == "export":
                row["baked_rss_growth_mb"] = max(r["rss_growth_mb"] for r in runs["baked"])
                row["ref_rss_growth_mb"] = max(r["rss_growth_mb"] for r in runs[key])
                row["memory_target_mb"] = EXPORT_MEMORY_TARGET_MB
                row["rows"] = runs["baked"][0]["rows"]
            rows.append(row)
    return rows


def render(rows: list[dict[str, Any]]) -> str:
    head = [
        "scenario",
        "unit",
        "baked",
        "reference",
        "ratio",
        "target",
        "baked p50/p99 ms",
        "ref p50/p99 ms",
        "round trips baked",
        "round trips ref",
    ]
    lines = []
    for r in rows:
        target = f">= {r['target']}" if r["target"] else ""
        if r["target"]:
            target += " ok" if r["ratio"] >= r["target"] else " MISS"
        lines.append(
            [
                r["scenario"],
                r["unit"],
                f"{r['baked']:,.0f}",
                f"{r['reference']:,.0f}",
                f"{r['ratio']:.2f}",
                target,
                f"{r['baked_p50_ms']:.1f} / {r['baked_p99_ms']:.1f}",
                f"{r['ref_p50_ms']:.1f} / {r['ref_p99_ms']:.1f}",
                "" if r["baked_statements"] is None else str(r["baked_statements"]),
                "" if r["ref_statements"] is None else str(r["ref_statements"]),
            ]
        )
        if "baked_rss_growth_mb" in r:
            ok = "ok" if r["baked_rss_growth_mb"] < r["memory_target_mb"] else "MISS"
            lines.append(
                [
                    "export peak RSS growth",
                    "MB",
                    f"{r['baked_rss_growth_mb']:.1f}",
                    f"{r['ref_rss_growth_mb']:.1f}",
                    "",
                    f"< {r['memory_target_mb']:.0f} {ok}",
                    "",
                    "",
                    "",
                    "",
                ]
            )
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(head)]

    def fmt(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    out = [fmt(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [fmt(line) for line in lines]
    return "\n".join(out)


# --------------------------------------------------------------------------- main


def write_bulk_body(path: Path, rows: int) -> None:
    text = "Bulk body text that is long enough to be realistic. " * 3
    posts = [{"title": f"Bulk post number {i}", "body": text} for i in range(rows)]
    path.write_text(json.dumps({"posts": posts}))


def resolved_server_stack(cfg: Config) -> dict[str, str]:
    def has(module: str) -> bool:
        try:
            __import__(module)
        except ImportError:
            return False
        return True

    loop = cfg.loop if cfg.loop != "auto" else ("uvloop" if has("uvloop") else "asyncio")
    http_impl = cfg.http if cfg.http != "auto" else ("httptools" if has("httptools") else "h11")
    return {"loop": loop, "http": http_impl}


def benchmark(cfg: Config) -> dict[str, Any]:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp_str:
        tmp = Path(tmp_str)
        if cfg.project_dir:
            project = Path(cfg.project_dir).resolve()
            log(f"using the project at {project}")
        else:
            project = bake(tmp)
            log(f"baked {project}")
        env = project_env(cfg)
        asyncio.run(recreate_database(cfg, project))
        run([sys.executable, "-m", "alembic", "upgrade", "head"], project, env)
        log(f"database {cfg.database} created and migrated")
        sd = asyncio.run(seed(cfg))
        log(f"seeded {sd.users:,} users, {sd.posts:,} posts")
        body_file = tmp / "bulk.json"
        write_bulk_body(body_file, cfg.bulk_rows)
        ref_env = env | {"DSN": cfg.dsn}
        servers: list[Server] = []
        try:
            baked = start_server("baked", "app.main:create_app", project, env, cfg, tmp)
            servers.append(baked)
            ref = start_server(
                "reference", "reference_app:create_app", project, ref_env, cfg, tmp, app_dir=HERE
            )
            servers.append(ref)
            log(
                f"servers up: baked :{baked.port} (pid {baked.proc.pid}), "
                f"reference :{ref.port} (pid {ref.proc.pid})"
            )
            verdicts = verify_same_responses(baked, ref, sd, cfg)
            log(f"same responses: {verdicts}")
            raw: dict[str, Any] = {}
            for scenario in cfg.scenarios:
                raw[scenario] = {"baked": [], "reference": []} | (
                    {"reference_copy": []} if scenario == "bulk" else {}
                )
                for rnd in range(cfg.rounds):
                    order = [("baked", baked), ("reference", ref)]
                    if rnd % 2:
                        order.reverse()
                    for name, srv in order:
                        if scenario == "bulk":
                            raw[scenario][name].append(
                                bulk_run(
                                    srv,
                                    sd,
                                    cfg,
                                    body_file,
                                    "" if name == "baked" else "executemany",
                                )
                            )
                            if name == "reference":
                                raw[scenario]["reference_copy"].append(
                                    bulk_run(srv, sd, cfg, body_file, "copy")
                                )
                        elif scenario == "export":
                            raw[scenario][name].append(export_run(srv))
                        else:
                            raw[scenario][name].append(
                                closed_run(srv, scenario, sd, cfg, f"r{rnd}{name[0]}")
                            )
                        res = raw[scenario][name][-1]
                        if res.get("errors"):
                            raise RuntimeError(
                                f"{scenario}/{name}: {res['errors']} failed requests: {res}"
                            )
                    log(
                        f"{scenario} round {rnd + 1}/{cfg.rounds}: "
                        + ", ".join(
                            f"{n}={runs[-1].get('rows_per_s', runs[-1].get('rps', 0)):,.0f}"
                            for n, runs in raw[scenario].items()
                        )
                    )
            statements = count_statements(project, env, ref_env, cfg, sd, tmp, body_file)
            log(f"round trips per request: {statements}")
        finally:
            for srv in servers:
                srv.stop()
            if not cfg.keep_database:
                asyncio.run(drop_database(cfg))
        rows = summarize(raw, statements)
        cfg_dict = asdict(cfg)
        return {
            "created": datetime.now(UTC).isoformat(),
            "config": cfg_dict,
            "machine": {
                "python": platform.python_version(),
                "platform": platform.platform(),
                "cpus": os.cpu_count(),
                "server": resolved_server_stack(cfg),
            },
            "same_responses": verdicts,
            "seed": {"users": sd.users, "posts": sd.posts},
            "table": rows,
            "statements": statements,
            "raw": raw,
            "elapsed_s": time.monotonic() - started,
        }


def parse(argv: list[str] | None) -> Config:
    p = argparse.ArgumentParser(
        prog="python benchmarks/run.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--smoke", action="store_true", help="tiny sizes, about 1 s per run")
    d = Config()
    p.add_argument("--rounds", type=int, help=f"A/B rounds per scenario (default {d.rounds})")
    p.add_argument(
        "--duration", type=float, help=f"measured seconds per run (default {d.duration})"
    )
    p.add_argument(
        "--warmup", type=float, help=f"unmeasured seconds before each run (default {d.warmup})"
    )
    p.add_argument(
        "--concurrency",
        type=int,
        help=f"connections of the load generator (default {d.concurrency})",
    )
    p.add_argument("--users", type=int, help=f"seeded users (default {d.users})")
    p.add_argument(
        "--posts-per-user", type=int, help=f"seeded posts per user (default {d.posts_per_user})"
    )
    p.add_argument(
        "--bulk-rows",
        type=int,
        help=f"rows per bulk request, at most 10000 (default {d.bulk_rows})",
    )
    p.add_argument(
        "--bulk-requests", type=int, help=f"timed bulk requests per run (default {d.bulk_requests})"
    )
    p.add_argument(
        "--export-rows",
        type=int,
        help=f"posts in the table for the export (default {d.export_rows})",
    )
    p.add_argument("--database", help=f"database to (re)create (default {d.database})")
    p.add_argument(
        "--admin-dsn",
        help=f"asyncpg DSN of the server's maintenance database (default {d.admin_dsn})",
    )
    p.add_argument(
        "--project-dir", help="benchmark this already baked project instead of baking one"
    )
    p.add_argument(
        "--loop",
        choices=["auto", "asyncio", "uvloop"],
        help="uvicorn --loop for both apps (default auto)",
    )
    p.add_argument(
        "--http",
        choices=["auto", "h11", "httptools"],
        help="uvicorn --http for both apps (default auto)",
    )
    p.add_argument("--scenarios", help=f"comma-separated subset of {','.join(SCENARIOS)}")
    p.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the baked app, e.g. DB_POOL_PRE_PING=false",
    )
    p.add_argument(
        "--keep-database", action="store_true", help="do not drop the database at the end"
    )
    p.add_argument("--output", help="JSON file to write (default benchmarks/results/<time>.json)")
    a = p.parse_args(argv)
    cfg = Config(**(SMOKE if a.smoke else {}))
    cfg.smoke = a.smoke
    for name in (
        "rounds",
        "duration",
        "warmup",
        "concurrency",
        "users",
        "posts_per_user",
        "bulk_rows",
        "bulk_requests",
        "export_rows",
        "database",
        "admin_dsn",
        "project_dir",
        "loop",
        "http",
        "output",
    ):
        value = getattr(a, name)
        if value is not None:
            setattr(cfg, name, value)
    cfg.keep_database = a.keep_database
    if a.scenarios:
        chosen = tuple(s.strip() for s in a.scenarios.split(",") if s.strip())
        unknown = set(chosen) - set(SCENARIOS)
        if unknown:
            p.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
        cfg.scenarios = chosen
    cfg.env = dict(item.split("=", 1) for item in a.env)
    if not 1 <= cfg.bulk_rows <= 10_000:
        p.error("--bulk-rows must be between 1 and 10000 (the API's limit)")
    return cfg


def main(argv: list[str] | None = None) -> int:
    cfg = parse(argv)
    result = benchmark(cfg)
    table = render(result["table"])
    stack = result["machine"]["server"]
    print(
        f"\nbaked vs raw asyncpg; medians of {cfg.rounds} interleaved round(s); "
        f"uvicorn --loop {stack['loop']} --http {stack['http']}; {cfg.concurrency} connections\n"
    )
    print(table)
    out = (
        Path(cfg.output)
        if cfg.output
        else RESULTS / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}{'-smoke' if cfg.smoke else ''}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str))
    print(f"\nwritten: {out} (took {result['elapsed_s']:.0f} s)")
    return 0


def iter_rows(path: Path) -> Iterator[dict[str, Any]]:  # used by the smoke test
    yield from json.loads(path.read_text())["table"]


if __name__ == "__main__":
    sys.exit(main())
