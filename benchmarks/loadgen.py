"""Load generator: runs in its own process, talks HTTP/1.1 with keep-alive on loopback.

Standard library only (uvloop is used when importable), so it runs wherever the
template's tests run. One JSON job on stdin, one JSON result on stdout.

Jobs:
  {"mode": "closed", ...}  a fixed number of connections, each sending its next
                           request as soon as the previous answer arrived, for
                           `warmup` + `duration` seconds; only the second part counts.
  {"mode": "repeat", ...}  one connection sends the same (large) request `count` times.
  {"mode": "stream", ...}  one GET whose body is streamed; counts NDJSON lines.

A request is described by `requests`: {"kind": "get", "paths": [...]} cycles through
the paths; {"kind": "create_user", "path": ..., "prefix": ...} POSTs a new user with a
unique e-mail address each time; {"kind": "post_file", "path": ..., "body_file": ...}
POSTs the file's bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any


class HTTPError(Exception):
    pass


class Connection:
    """A minimal HTTP/1.1 keep-alive client: Content-Length and chunked bodies."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(
            self.host, self.port, limit=1 << 20
        )

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()

    def build(self, method: str, path: str, body: bytes | None = None) -> bytes:
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        return head.encode() + b"\r\n" + (body or b"")

    async def request(
        self, raw: bytes, on_chunk: Callable[[bytes], None] | None = None
    ) -> tuple[int, int]:
        """Send one request; return (status, body length). Bodies are read fully."""
        if self.reader is None or self.writer is None:
            raise HTTPError("not connected")
        self.writer.write(raw)
        reader = self.reader
        status_line = await reader.readline()
        if not status_line:
            raise HTTPError("connection closed by the server")
        status = int(status_line.split(b" ", 2)[1])
        length: int | None = None
        chunked = False
        keep_alive = True
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value.strip())
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection" and b"close" in value.lower():
                keep_alive = False
        total = 0
        if chunked:
            while True:
                size = int((await reader.readline()).split(b";")[0].strip(), 16)
                if size == 0:
                    await reader.readline()  # the empty trailer
                    break
                chunk = await reader.readexactly(size + 2)
                total += size
                if on_chunk is not None:
                    on_chunk(chunk[:-2])
        elif length:
            data = await reader.readexactly(length)
            total = length
            if on_chunk is not None:
                on_chunk(data)
        if not keep_alive:
            await self.close()
            await self.open()
        return status, total


def request_source(spec: dict[str, Any], conn: Connection, worker: int) -> Iterator[bytes]:
    kind = spec["kind"]
    if kind == "get":
        raws = [conn.build("GET", path) for path in spec["paths"]]
        # Each worker starts at a different place in the list.
        start = (worker * 7919) % len(raws)
        yield from itertools.cycle(raws[start:] + raws[:start])
    elif kind == "create_user":
        for n in itertools.count():
            body = json.dumps(
                {
                    "email": f"{spec['prefix']}-{worker}-{n}@bench.example.com",
                    "full_name": f"Bench User {worker} {n}",
                }
            ).encode()
            yield conn.build("POST", spec["path"], body)
    elif kind == "post_file":
        with open(spec["body_file"], "rb") as fh:
            body = fh.read()
        raw = conn.build("POST", spec["path"], body)
        while True:
            yield raw
    else:
        raise ValueError(f"unknown request kind {kind!r}")


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    k = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[k]


def summary(
    latencies: list[float], elapsed: float, errors: int, statuses: dict[int, int]
) -> dict[str, Any]:
    latencies.sort()
    return {
        "requests": len(latencies),
        "elapsed_s": elapsed,
        "rps": len(latencies) / elapsed if elapsed > 0 else 0.0,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "mean_ms": (sum(latencies) / len(latencies) * 1000) if latencies else 0.0,
        "errors": errors,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
    }


async def closed_loop(job: dict[str, Any]) -> dict[str, Any]:
    host, port = job["host"], job["port"]
    concurrency, warmup, duration = job["concurrency"], job["warmup"], job["duration"]
    ok_status = set(job.get("ok_status", [200, 201]))
    start = time.perf_counter()
    measure_from = start + warmup
    stop_at = measure_from + duration
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0

    async def worker(index: int) -> None:
        nonlocal errors
        conn = Connection(host, port)
        await conn.open()
        try:
            for raw in request_source(job["requests"], conn, index):
                t0 = time.perf_counter()
                if t0 >= stop_at:
                    break
                status, _ = await conn.request(raw)
                t1 = time.perf_counter()
                if t0 >= measure_from:
                    latencies.append(t1 - t0)
                    statuses[status] = statuses.get(status, 0) + 1
                    if status not in ok_status:
                        errors += 1
        finally:
            await conn.close()

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    # Requests that started inside the window count; the window ends when the last one does.
    elapsed = max(time.perf_counter(), stop_at) - measure_from
    return summary(latencies, elapsed, errors, statuses)


async def repeat(job: dict[str, Any]) -> dict[str, Any]:
    conn = Connection(job["host"], job["port"])
    await conn.open()
    ok_status = set(job.get("ok_status", [200, 201]))
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0
    source = request_source(job["requests"], conn, 0)
    try:
        for _ in range(job.get("warmup_count", 0)):
            await conn.request(next(source))
        t_start = time.perf_counter()
        for _ in range(job["count"]):
            t0 = time.perf_counter()
            status, _ = await conn.request(next(source))
            latencies.append(time.perf_counter() - t0)
            statuses[status] = statuses.get(status, 0) + 1
            errors += status not in ok_status
        elapsed = time.perf_counter() - t_start
    finally:
        await conn.close()
    return summary(latencies, elapsed, errors, statuses)


async def stream(job: dict[str, Any]) -> dict[str, Any]:
    conn = Connection(job["host"], job["port"])
    await conn.open()
    lines = 0
    first_byte: float | None = None

    def on_chunk(chunk: bytes) -> None:
        nonlocal lines, first_byte
        if first_byte is None:
            first_byte = time.perf_counter()
        lines += chunk.count(b"\n")

    try:
        t0 = time.perf_counter()
        status, size = await conn.request(conn.build("GET", job["path"]), on_chunk)
        elapsed = time.perf_counter() - t0
    finally:
        await conn.close()
    return {
        "status": status,
        "bytes": size,
        "rows": lines,
        "elapsed_s": elapsed,
        "rows_per_s": lines / elapsed if elapsed > 0 else 0.0,
        "ttfb_ms": ((first_byte or t0) - t0) * 1000,
        "errors": int(status != 200),
    }


def main() -> None:
    job = json.loads(sys.stdin.read())
    runner = {"closed": closed_loop, "repeat": repeat, "stream": stream}[job["mode"]]
    try:
        import uvloop

        result = uvloop.run(runner(job))
        loop = "uvloop"
    except ImportError:
        result = asyncio.run(runner(job))
        loop = "asyncio"
    result["client_loop"] = loop
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
