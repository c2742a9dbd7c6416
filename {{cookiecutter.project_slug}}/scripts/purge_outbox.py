"""Delete outbox rows sent, and ids of tasks done, more than N days ago.

    python -m scripts.purge_outbox --older-than-days 7 [--batch-size 500]

Batch by batch, each its own transaction (app.tasks.purge): safe to interrupt and to
run again. Ctrl-C or SIGTERM stops it after the batch in flight. It uses the job pool
preset (JOB_DB_*). Exit status: 0 done, 1 database error, 130 interrupted. Keep
processed ids longer than a task can stay in RabbitMQ (docs/operations.md#task-queue).
"""

import argparse
import asyncio
import signal
import sys
from datetime import timedelta

from sqlalchemy.exc import SQLAlchemyError

from app.db.session import job_database
from app.db.types import utcnow
from app.settings import get_settings
from app.tasks.purge import purge_outbox

INTERRUPTED = 130
MAX_BATCH_SIZE = 10_000


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m scripts.purge_outbox", description=__doc__)
    parser.add_argument("--older-than-days", type=int, required=True, metavar="N")
    parser.add_argument("--batch-size", type=int, default=500, metavar="B")
    arguments = parser.parse_args(argv)
    if arguments.older_than_days < 0:
        parser.error("--older-than-days must be 0 or more")
    if not 1 <= arguments.batch_size <= MAX_BATCH_SIZE:
        parser.error(f"--batch-size must be between 1 and {MAX_BATCH_SIZE}")
    return arguments


async def run(older_than_days: int, batch_size: int) -> int:
    cutoff = utcnow() - timedelta(days=older_than_days)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    try:
        async with job_database(get_settings()) as database:
            purged = await purge_outbox(database, cutoff, batch_size, should_stop=stopping.is_set)
    except SQLAlchemyError as exc:
        print(f"database error: {exc}", file=sys.stderr)
        return 1
    print(f"outbox: {purged.sent} sent rows, {purged.processed} processed ids purged")
    return INTERRUPTED if stopping.is_set() else 0


def main(argv: list[str] | None = None) -> int:
    arguments = _arguments(argv)
    return asyncio.run(run(arguments.older_than_days, arguments.batch_size))


if __name__ == "__main__":
    sys.exit(main())
