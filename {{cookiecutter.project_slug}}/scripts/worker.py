"""Run a task worker and its outbox relay in one process.

    python -m scripts.worker          (or: make worker)

The worker consumes the task queue with taskiq, at most as many tasks at once as
its database pool serves (WORKER_DB_POOL_SIZE + WORKER_DB_MAX_OVERFLOW, less the
relay's connections), and acknowledges each message after its task ran. The relay
publishes the outbox (app.tasks.relay). Metrics and a liveness answer are served on
WORKER_METRICS_PORT (app.tasks.metrics). Run as many of these as the load needs:
docs/operations.md#task-queue says how to scale them.

SIGTERM or SIGINT: take no new task, let the tasks in hand finish for up to
WORKER_SHUTDOWN_SECONDS, and exit; RabbitMQ delivers whatever was not
acknowledged again, to another worker. A second signal exits at once. Exit status:
0 stopped on a signal, 1 RabbitMQ, the database or the metrics port not usable at
start-up, 2 a pool too small for the relay, 130 stopped at once.
"""

import asyncio
import logging
import signal
import sys

import aiormq
from sqlalchemy.exc import SQLAlchemyError

from app.logs import configure_logging
from app.settings import Settings, get_settings
from app.tasks.broker import worker_capacity
from app.tasks.publisher import PublishFailedError
from app.tasks.worker import run_worker

logger = logging.getLogger("scripts.worker")
STARTUP_FAILED = 1
POOL_TOO_SMALL = 2
INTERRUPTED = 130


def _stop_on_signals(stop: asyncio.Event) -> None:
    main = asyncio.current_task()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stop.is_set() and main is not None:
            logger.warning("second signal: stopping now")
            main.cancel()
            return
        logger.info("stopping: no new tasks; waiting for the tasks in hand")
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)


async def run(settings: Settings) -> int:
    configure_logging(settings)
    if worker_capacity(settings) < 1:
        logger.error(
            "WORKER_DB_POOL_SIZE + WORKER_DB_MAX_OVERFLOW leaves no connection for tasks "
            "beside the relay's: raise one of them"
        )
        return POOL_TOO_SMALL
    stop = asyncio.Event()
    _stop_on_signals(stop)
    try:
        await run_worker(settings, stop)
    except asyncio.CancelledError:
        logger.warning("worker stopped at once: RabbitMQ delivers its tasks in hand again")
        return INTERRUPTED
    except (OSError, aiormq.exceptions.AMQPError, PublishFailedError, SQLAlchemyError) as exc:
        logger.error("worker stopped: %r", exc)
        return STARTUP_FAILED
    logger.info("worker stopped")
    return 0


def main() -> int:
    return asyncio.run(run(get_settings()))


if __name__ == "__main__":
    sys.exit(main())
