"""Password hashing: argon2id through pwdlib, with the cost from settings.

A hash costs tens of milliseconds of CPU on purpose, so it runs in a worker thread
and the event loop keeps serving meanwhile. A stored hash made with other
parameters verifies as before and is replaced at the next successful login
(`verify` returns the new one). A login for an email nobody has verifies the
password against a hash made at start-up, so that failure takes as long as a
wrong password does and the answer does not tell which emails exist.
Docs: https://frankie567.github.io/pwdlib/
"""

import asyncio

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from app.settings import Settings


class Passwords:
    def __init__(self, settings: Settings) -> None:
        hasher = Argon2Hasher(
            time_cost=settings.password_hash_time_cost,
            memory_cost=settings.password_hash_memory_kib,
            parallelism=settings.password_hash_parallelism,
        )
        self._hash = PasswordHash((hasher,))
        self._stand_in = self._hash.hash("stands in for the hash of a user who does not exist")

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hash.hash, password)

    async def verify(self, password: str, stored: str | None) -> tuple[bool, str | None]:
        """Whether `password` matches `stored`, and a new hash when `stored` was made
        with other parameters. No stored hash (an unknown email, a user without a
        password) costs the same and never matches."""
        if stored is None:
            await asyncio.to_thread(self._hash.verify, password, self._stand_in)
            return False, None
        return await asyncio.to_thread(self._hash.verify_and_update, password, stored)
