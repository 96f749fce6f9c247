"""argon2id password hashing off the event loop, and a decoy verify so unknown emails cost as much time."""

from __future__ import annotations

import asyncio
import os

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from write_api.auth.config import Argon2Parameters
from write_api.auth.password_policy import normalize_password

_DECOY_PASSWORD = "decoy password, never an account's"  # noqa: S105 (hashed once to burn the same time)


class PasswordHasher:
    """Hash and verify in worker threads; at most `max_concurrency` at once.

    Each hash holds `memory_kib` of RAM for its duration: the cap keeps a burst of logins from taking a
    thread (and 19 MiB) each, which would starve the default executor and the machine's memory.
    """

    def __init__(
        self, parameters: Argon2Parameters | None = None, *, max_concurrency: int | None = None
    ) -> None:
        self.parameters = parameters or Argon2Parameters()
        self._hasher = argon2.PasswordHasher(
            time_cost=self.parameters.time_cost,
            memory_cost=self.parameters.memory_kib,
            parallelism=self.parameters.parallelism,
            hash_len=32,
            salt_len=16,
            type=argon2.Type.ID,
        )
        self._slots = asyncio.Semaphore(max_concurrency or os.cpu_count() or 4)
        self._decoy_hash: str | None = None

    async def hash(self, password: str) -> str:
        """The PHC string (`$argon2id$v=19$m=...`) of the NFKC-normalized password."""
        async with self._slots:
            return await asyncio.to_thread(self._hasher.hash, normalize_password(password))

    async def verify(self, stored_hash: str, password: str) -> bool:
        """True when `password` matches; False on a mismatch or an unreadable hash (never raises)."""
        async with self._slots:
            return await asyncio.to_thread(self._verify, stored_hash, normalize_password(password))

    async def verify_decoy(self, password: str) -> None:
        """Spend a real verify's time for an account that does not exist (no enumeration by timing)."""
        if self._decoy_hash is None:
            self._decoy_hash = await self.hash(_DECOY_PASSWORD)
        await self.verify(self._decoy_hash, password)

    def needs_rehash(self, stored_hash: str) -> bool:
        """True when the hash was made with other parameters than ours: rehash it at the next login."""
        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except InvalidHashError:
            return True

    def _verify(self, stored_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
