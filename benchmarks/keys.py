"""100,000 inserts with each primary-key choice the template has had, side by side.

    python benchmarks/keys.py [--rows 100000] [--batch 1000]

For each database and key column type: a fresh table `key_bench (id <key> PRIMARY KEY,
payload VARCHAR(100))`, `rows` inserts in batches of `batch` (executemany, each batch
committed), then the time taken and the size of the table and its key index. Random
UUIDv4 keys land anywhere in the index; time-ordered UUIDv7 keys append to its end.
Needs PostgreSQL on 127.0.0.1:5432 and MariaDB or MySQL on 127.0.0.1:3306 (the
template's test servers); SQLite runs in a temporary file. Prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import uuid_utils.compat
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

DATABASE = "bench_keys"


@dataclass(frozen=True)
class Case:
    database: str
    column: str  # the key's column type, as the database spells it
    generate: Callable[[], uuid.UUID]
    bind: Callable[[uuid.UUID], object]  # the key as the driver sends it
    label: str


def uuid_str(key: uuid.UUID) -> object:
    return str(key)


def uuid_hex(key: uuid.UUID) -> object:
    return key.hex


def uuid_bytes(key: uuid.UUID) -> object:
    return key.bytes


CASES = (
    Case("postgresql", "uuid", uuid.uuid4, uuid_str, "uuid, v4 keys (before)"),
    Case("postgresql", "uuid", uuid_utils.compat.uuid7, uuid_str, "uuid, v7 keys (now)"),
    Case("mysql", "CHAR(32)", uuid.uuid4, uuid_hex, "CHAR(32), v4 (before, on MySQL)"),
    Case("mysql", "UUID", uuid.uuid4, uuid_str, "UUID, v4 (before, on MariaDB)"),
    Case("mysql", "BINARY(16)", uuid.uuid4, uuid_bytes, "BINARY(16), v4"),
    Case("mysql", "BINARY(16)", uuid_utils.compat.uuid7, uuid_bytes, "BINARY(16), v7 (now)"),
    Case("sqlite", "CHAR(32)", uuid.uuid4, uuid_hex, "CHAR(32), v4 keys (before)"),
    Case("sqlite", "CHAR(32)", uuid_utils.compat.uuid7, uuid_hex, "CHAR(32), v7 keys (now)"),
)


async def _engine(database: str, folder: Path) -> AsyncEngine:
    if database == "sqlite":
        return create_async_engine(f"sqlite+aiosqlite:///{folder / 'keys.db'}", poolclass=NullPool)
    if database == "postgresql":
        admin = create_async_engine(
            "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres",
            poolclass=NullPool,
            isolation_level="AUTOCOMMIT",
        )
        async with admin.connect() as conn:
            await conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
            await conn.exec_driver_sql(f"CREATE DATABASE {DATABASE}")
        await admin.dispose()
        return create_async_engine(
            f"postgresql+asyncpg://postgres@127.0.0.1:5432/{DATABASE}", poolclass=NullPool
        )
    admin = create_async_engine("mysql+aiomysql://root@127.0.0.1:3306/", poolclass=NullPool)
    async with admin.connect() as conn:
        await conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {DATABASE}")
        await conn.exec_driver_sql(f"CREATE DATABASE {DATABASE}")
    await admin.dispose()
    return create_async_engine(
        f"mysql+aiomysql://root@127.0.0.1:3306/{DATABASE}?charset=utf8mb4", poolclass=NullPool
    )


def _value(case: Case) -> str:
    # The key as the driver sends it (16 bytes for BINARY(16), as the template does).
    return ":id"


async def _size_mb(conn: object, database: str) -> tuple[float, float]:
    """(table, key index) sizes in MB."""
    run = conn.scalar  # type: ignore[attr-defined]
    if database == "postgresql":
        table = await run(text("SELECT pg_relation_size('key_bench')"))
        index = await run(text("SELECT pg_relation_size('key_bench_pkey')"))
    elif database == "mysql":
        await conn.exec_driver_sql("ANALYZE TABLE key_bench")  # type: ignore[attr-defined]
        table = await run(
            text("SELECT data_length FROM information_schema.tables WHERE table_name = 'key_bench'")
        )
        index = table  # InnoDB's clustered index is the table
    else:
        table = await run(text("SELECT SUM(pgsize) FROM dbstat WHERE name = 'key_bench'"))
        index = await run(
            text("SELECT SUM(pgsize) FROM dbstat WHERE name = 'sqlite_autoindex_key_bench_1'")
        )
    return (table or 0) / 2**20, (index or 0) / 2**20


async def measure(case: Case, rows: int, batch: int, folder: Path) -> dict[str, object]:
    engine = await _engine(case.database, folder)
    try:
        async with engine.begin() as conn:
            await conn.exec_driver_sql("DROP TABLE IF EXISTS key_bench")
            await conn.exec_driver_sql(
                f"CREATE TABLE key_bench (id {case.column} PRIMARY KEY, payload VARCHAR(100))"
            )
        insert = text(f"INSERT INTO key_bench (id, payload) VALUES ({_value(case)}, :payload)")  # noqa: S608
        payload = "x" * 60
        started = time.perf_counter()
        last_tenth = 0.0
        for start in range(0, rows, batch):
            params = [{"id": case.bind(case.generate()), "payload": payload} for _ in range(batch)]
            batch_started = time.perf_counter()
            async with engine.begin() as conn:
                await conn.execute(insert, params)
            if start >= rows * 9 // 10:
                last_tenth += time.perf_counter() - batch_started
        elapsed = time.perf_counter() - started
        async with engine.connect() as conn:
            table_mb, index_mb = await _size_mb(conn, case.database)
        return {
            "database": case.database,
            "key": case.label,
            "rows/s": rows / elapsed,
            "last 10% rows/s": (rows / 10) / last_tenth if last_tenth else 0.0,
            "table MB": table_mb,
            "key index MB": index_mb,
        }
    finally:
        await engine.dispose()


def render(results: list[dict[str, object]]) -> str:
    head = list(results[0])
    cells = [
        [
            f"{v:,.0f}"
            if isinstance(v, float) and v > 100
            else f"{v:.1f}"
            if isinstance(v, float)
            else str(v)
            for v in r.values()
        ]
        for r in results
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(head)]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)) + " |"]
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    lines += [
        "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
        for row in cells
    ]
    return "\n".join(lines)


async def main(rows: int, batch: int) -> None:
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for case in CASES:
            results.append(await measure(case, rows, batch, Path(folder)))
            print(f"done: {case.database} {case.label}", flush=True)
    print(render(results))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    asyncio.run(main(args.rows, args.batch))
