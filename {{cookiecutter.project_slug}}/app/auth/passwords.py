"""Password hashing: argon2id through pwdlib, at a bounded cost to the process.

A hash costs CPU and, above all, memory (PASSWORD_HASH_MEMORY_KIB each) on purpose.
Hashes run on threads of their own, at most PASSWORD_HASH_CONCURRENCY at once, so
a burst of log-ins (anonymous ones included: an unknown email is hashed too) grows
the process by that many hashes, never by one per request; the event loop keeps
serving meanwhile. A request that finds no free slot within
PASSWORD_HASH_WAIT_SECONDS gets a 503 with `Retry-After`: the server is out of
capacity (a client over its own limit gets 429 from the throttle instead).

A stored hash made with other parameters verifies as before and is replaced at the
next successful log-in (`verify` returns the new one). A log-in for an email nobody
has, or for a locked account, verifies against a hash made at start-up, so that the
answer takes as long as a wrong password and tells nothing about the account.
Docs: https://frankie567.github.io/pwdlib/
      https://cheatsheetseries.owasp.org/cheatsheets/Password_Storage_Cheat_Sheet.html
"""

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from fastapi import HTTPException, status
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from app.errors import RETRY_AFTER_SECONDS
from app.settings import Settings

T = TypeVar("T")


class Passwords:
    def __init__(self, settings: Settings) -> None:
        hasher = Argon2Hasher(
            time_cost=settings.password_hash_time_cost,
            memory_cost=settings.password_hash_memory_kib,
            parallelism=settings.password_hash_parallelism,
        )
        self._hash = PasswordHash((hasher,))
        self._wait = settings.password_hash_wait_seconds
        self._slots = asyncio.Semaphore(settings.password_hash_concurrency)
        self._threads = ThreadPoolExecutor(
            max_workers=settings.password_hash_concurrency, thread_name_prefix="password-hash"
        )
        self._stand_in = self._hash.hash("stands in for the hash of a user who does not exist")

    async def hash(self, password: str) -> str:
        return await self._in_a_slot(self._hash.hash, password)

    async def verify(self, password: str, stored: str | None) -> tuple[bool, str | None]:
        """Whether `password` matches `stored`, and a new hash when `stored` was made
        with other parameters. No stored hash (an unknown email, a locked account, a
        user without a password) costs the same and never matches."""
        if stored is None:
            await self._in_a_slot(self._hash.verify, password, self._stand_in)
            return False, None
        return await self._in_a_slot(self._hash.verify_and_update, password, stored)

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)

    async def _in_a_slot(self, work: Callable[..., T], *args: str) -> T:
        try:
            async with asyncio.timeout(self._wait):
                await self._slots.acquire()
        except TimeoutError:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                "too many password checks in progress; retry later",
                headers={"Retry-After": RETRY_AFTER_SECONDS},
            ) from None
        future = asyncio.get_running_loop().run_in_executor(self._threads, work, *args)
        # The slot is freed when the hash ends, not when this request does: a client
        # that disconnects mid-hash does not make room for one more hash in memory.
        future.add_done_callback(lambda _: self._slots.release())
        return await asyncio.shield(future)
