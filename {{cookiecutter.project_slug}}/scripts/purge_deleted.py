{%- set examples = cookiecutter.include_example_models == "yes" -%}
{%- set auth = cookiecutter.auth == "jwt" -%}
{%- set tasks = cookiecutter.task_queue == "taskiq" -%}
"""Physically delete users soft-deleted more than N days ago{% if examples %}, with their posts{% endif %}{% if tasks %};
then the outbox rows sent, and the ids of tasks done, more than N days ago{% endif %}.

    python -m scripts.purge_deleted --older-than-days 30 [--batch-size 500]

Runs in batches, each its own transaction (app.users.purge), printing one progress
line per batch. Safe to interrupt and to run again: Ctrl-C or SIGTERM stops it
after the batch in flight (a second one stops it at once, rolling that batch back),
and the next run carries on with what is left. It uses the job pool preset
(JOB_DB_*), not the web pools. Exit status: 0 done, 1 database error, 130
interrupted.
{%- if auth %}
After the users, it removes the refresh tokens that expired or were revoked, and
the throttle's counts that are too old to matter (app.auth.purge).
{%- endif %}
Scheduling it: docs/operations.md#background-jobs.
"""

import argparse
import asyncio
import signal
import sys
import time
from datetime import timedelta

from sqlalchemy.exc import SQLAlchemyError

{% if auth -%}
from app.auth.purge import purge_auth
{% endif -%}
from app.db.session import job_database
from app.db.types import utcnow
from app.settings import get_settings
{%- if cookiecutter.task_queue == "taskiq" %}
from app.tasks.purge import purge_outbox
{%- endif %}
from app.users.purge import Purged, count_purgeable, purge_deleted

INTERRUPTED = 130
MAX_BATCH_SIZE = 10_000


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m scripts.purge_deleted", description=__doc__)
    parser.add_argument(
        "--older-than-days",
        type=int,
        required=True,
        metavar="N",
        help="purge users deleted more than N days ago (0: every deleted user)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=500,
        metavar="B",
        help=f"users per transaction, 1 to {MAX_BATCH_SIZE} (default: 500)",
    )
    arguments = parser.parse_args(argv)
    if arguments.older_than_days < 0:
        parser.error("--older-than-days must be 0 or more")
    if not 1 <= arguments.batch_size <= MAX_BATCH_SIZE:
        parser.error(f"--batch-size must be between 1 and {MAX_BATCH_SIZE}")
    return arguments


class StopRequests:
    """The first SIGINT/SIGTERM asks to stop between batches; the second cancels the
    running task, so the batch in flight is rolled back."""

    def __init__(self) -> None:
        self.requested = False
        self._task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on_signal)

    def _on_signal(self) -> None:
        if self.requested and self._task is not None:
            self._task.cancel()
            return
        self.requested = True
        print("stopping after this batch (signal again to stop now)", file=sys.stderr, flush=True)


async def run(older_than_days: int, batch_size: int) -> int:
    cutoff = utcnow() - timedelta(days=older_than_days)
    stop = StopRequests()
    done = Purged()
    batches = 0
    started = time.monotonic()

    def progress(batch: Purged) -> None:
        nonlocal done, batches
        done, batches = done + batch, batches + 1
        share = f"{done.users / eligible:.0%}" if eligible else "-"
        print(
{%- if examples %}
            f"batch {batches}: {batch.users} users, {batch.posts} posts; "
            f"{done.users} of {eligible} users ({share}), {done.posts} posts, "
{%- else %}
            f"batch {batches}: {batch.users} users; {done.users} of {eligible} users ({share}), "
{%- endif %}
            f"{time.monotonic() - started:.1f} s",
            flush=True,
        )

    try:
{%- if auth %}
        settings = get_settings()
        async with job_database(settings) as database:
{%- else %}
        async with job_database(get_settings()) as database:
{%- endif %}
            eligible = await count_purgeable(database, cutoff)
            print(f"{eligible} users deleted before {cutoff.isoformat()} to purge", flush=True)
            await purge_deleted(
                database, cutoff, batch_size, on_batch=progress, should_stop=lambda: stop.requested
            )
{%- if auth %}
            if not stop.requested:
                auth = await purge_auth(
                    database, utcnow(), settings.auth_throttle_window_seconds, batch_size
                )
                print(
                    f"{auth.refresh_tokens} expired or revoked refresh tokens and "
                    f"{auth.throttle_rows} old throttle counts removed",
                    flush=True,
                )
{%- endif %}
{%- if tasks %}
            outbox = await purge_outbox(
                database, cutoff, batch_size, should_stop=lambda: stop.requested
            )
            print(f"outbox: {outbox.sent} sent rows, {outbox.processed} processed ids purged")
{%- endif %}
    except asyncio.CancelledError:
        stop.requested = True
    except SQLAlchemyError as exc:
        print(f"database error after {done.users} users: {exc}", file=sys.stderr)
        return 1
    if stop.requested:
        print(
{%- if examples %}
            f"interrupted: {done.users} users and {done.posts} posts purged; run again to carry on",
{%- else %}
            f"interrupted: {done.users} users purged; run again to carry on",
{%- endif %}
            file=sys.stderr,
        )
        return INTERRUPTED
{%- if examples %}
    print(f"done: {done.users} users and {done.posts} posts purged in {batches} batches")
{%- else %}
    print(f"done: {done.users} users purged in {batches} batches")
{%- endif %}
    return 0


def main(argv: list[str] | None = None) -> int:
    arguments = _arguments(argv)
    return asyncio.run(run(arguments.older_than_days, arguments.batch_size))


if __name__ == "__main__":
    sys.exit(main())
