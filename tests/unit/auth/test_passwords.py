"""The argon2id hasher: verifies what it hashed, refuses the rest, notices outdated parameters."""

from __future__ import annotations

from write_api.auth.config import Argon2Parameters
from write_api.auth.passwords import PasswordHasher

CHEAP = Argon2Parameters(time_cost=1, memory_kib=1024, parallelism=1)


def test_the_production_defaults_meet_owasp() -> None:
    defaults = Argon2Parameters()
    assert (defaults.memory_kib, defaults.time_cost, defaults.parallelism) == (19 * 1024, 2, 1)
    assert defaults.meets_owasp_minimum()
    assert not CHEAP.meets_owasp_minimum()


async def test_a_hash_verifies_its_password_only() -> None:
    hasher = PasswordHasher(CHEAP)
    stored = await hasher.hash("correct horse battery staple")

    assert stored.startswith("$argon2id$v=19$m=1024,t=1,p=1$")
    assert await hasher.verify(stored, "correct horse battery staple")
    assert not await hasher.verify(stored, "correct horse battery stapler")
    assert not await hasher.verify("not a hash", "correct horse battery staple")
    assert stored != await hasher.hash("correct horse battery staple")  # salted


async def test_passwords_are_compared_after_unicode_normalization() -> None:
    hasher = PasswordHasher(CHEAP)
    stored = await hasher.hash("caf\u00e9 au lait s'il vous plait")

    assert await hasher.verify(stored, "cafe\u0301 au lait s'il vous plait")


async def test_hashes_made_with_other_parameters_need_a_rehash() -> None:
    old = await PasswordHasher(CHEAP).hash("correct horse battery staple")
    current = PasswordHasher(Argon2Parameters(time_cost=2, memory_kib=2048, parallelism=1))

    assert current.needs_rehash(old)
    assert await current.verify(old, "correct horse battery staple")
    assert not current.needs_rehash(await current.hash("correct horse battery staple"))
    assert current.needs_rehash("garbage")


async def test_the_decoy_verify_runs_and_never_matches() -> None:
    hasher = PasswordHasher(CHEAP)

    await hasher.verify_decoy("any password")
    await hasher.verify_decoy("decoy password, never an account's")
