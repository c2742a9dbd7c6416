"""Send dead-lettered tasks back to the workers (docs/operations.md#dead-letters).

    python -m scripts.replay_dead_letters [--limit 1000]

Exit status: 0 done (the count is printed), 1 RabbitMQ not reachable.
"""

import argparse
import asyncio
import sys

import aiormq

from app.settings import get_settings
from app.tasks.dead_letters import replay_dead_letters
from app.tasks.publisher import PublishFailedError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.replay_dead_letters")
    parser.add_argument("--limit", type=int, default=1000, help="at most this many (1000)")
    arguments = parser.parse_args(argv)
    if arguments.limit < 1:
        parser.error("--limit must be 1 or more")
    try:
        replayed = asyncio.run(replay_dead_letters(get_settings(), arguments.limit))
    except (OSError, aiormq.exceptions.AMQPError, PublishFailedError) as exc:
        print(f"RabbitMQ: {exc!r}", file=sys.stderr)
        return 1
    print(f"replayed {replayed} dead-lettered tasks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
