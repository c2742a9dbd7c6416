"""Helpers shared by the fixtures and the tests."""

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any


def run_in_thread(func: Callable[..., object], *args: Any) -> None:
    """Alembic's env.py calls asyncio.run(), which cannot run inside the test loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(func, *args).result()
