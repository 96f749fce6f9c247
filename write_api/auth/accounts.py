"""Accounts: the credentials a person logs in with, kept in Postgres beside (not in) the event log.

An account is infrastructure, like a charger's password hash: it records no domain fact, is never replayed.
What a person *is* in the domain (a Driver, an operator's Company) lives in the event store; a driver's
account points at its Driver aggregate by `driver_id`, an operator's at its Company by `company_id`.

Emails are stored lower-cased by this module (every read and write goes through `normalize_email`), and are
unique across all roles.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from csms.domain import Company, Driver, InvalidValue
from csms.domain.driver import DISPLAY_NAME_MAX_LENGTH, require_email
from csms.domain.validation import require_text
from csms.eventstore import AggregateNotFoundError, Repository
from csms.identity.roles import Role
from csms.web.problems import FieldError
from write_api.auth.errors import DuplicateEmail, InvalidInput, UnknownCompany
from write_api.auth.password_policy import password_problem
from write_api.auth.passwords import PasswordHasher

_log = logging.getLogger(__name__)

_COLUMNS = "id, email, role, company_id, driver_id, disabled, created_at"


def normalize_email(email: str) -> str:
    """The form an email is stored and looked up in: stripped and lower-cased."""
    return email.strip().lower()


@dataclass(frozen=True, slots=True)
class Account:
    id: UUID
    email: str
    role: Role
    company_id: UUID | None  # operators only
    driver_id: UUID | None  # drivers only: their Driver aggregate
    disabled: bool
    created_at: datetime


class Accounts:
    """Create accounts and check passwords against them."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        hasher: PasswordHasher,
        repository: Repository,
        clock: Callable[[], datetime],
        *,
        new_id: Callable[[], UUID] = uuid.uuid4,
    ) -> None:
        self._pool = pool
        self._hasher = hasher
        self._repository = repository
        self._clock = clock
        self._new_id = new_id

    async def get(self, account_id: UUID) -> Account | None:
        row = await self._pool.fetchrow(f"SELECT {_COLUMNS} FROM accounts WHERE id = $1", account_id)
        return None if row is None else _account(row)

    async def find_by_email(self, email: str) -> Account | None:
        row = await self._pool.fetchrow(
            f"SELECT {_COLUMNS} FROM accounts WHERE email = $1", normalize_email(email)
        )
        return None if row is None else _account(row)

    async def register_driver(self, email: str, password: str, display_name: str) -> Account:
        """A driver's self-registration: a new Driver aggregate, then the account pointing at it.

        The email is checked first so a duplicate normally creates nothing. Two registrations racing with the
        same new email both pass that check; the unique index lets one account in, and the loser's Driver
        aggregate stays behind with no account: unreachable, so harmless. (Holding the account row's
        transaction open across the event-store append would close that race, but could starve the pool the
        appender shares.)
        """
        email = normalize_email(email)
        errors = _email_errors(email)
        try:
            display_name = require_text(display_name, "displayName", max_length=DISPLAY_NAME_MAX_LENGTH)
        except InvalidValue as error:
            errors.append(FieldError("displayName", _without_name(str(error), "displayName")))
        errors += _password_errors(password, email)
        if errors:
            raise InvalidInput(errors)
        await self._ensure_email_free(email)
        password_hash = await self._hasher.hash(password)
        driver = Driver.register(self._new_id(), email, display_name, self._clock())
        await self._repository.save(driver)
        return await self._insert(email, password_hash, Role.DRIVER, driver_id=driver.id)

    async def create_operator(self, email: str, password: str, company_id: UUID) -> Account:
        """An account that acts for one company, which must exist. For admins (the write API's route)."""
        email = normalize_email(email)
        errors = _email_errors(email) + _password_errors(password, email)
        if errors:
            raise InvalidInput(errors)
        try:
            await self._repository.get(company_id, Company)
        except AggregateNotFoundError:
            raise UnknownCompany(f"no company with id {company_id}") from None
        await self._ensure_email_free(email)
        return await self._insert(
            email, await self._hasher.hash(password), Role.OPERATOR, company_id=company_id
        )

    async def create_admin(self, email: str, password: str) -> Account:
        """A platform administrator (`csms admin create-admin`)."""
        email = normalize_email(email)
        errors = _email_errors(email) + _password_errors(password, email)
        if errors:
            raise InvalidInput(errors)
        await self._ensure_email_free(email)
        return await self._insert(email, await self._hasher.hash(password), Role.ADMIN)

    async def authenticate(self, email: str, password: str) -> Account | None:
        """The account when the password is right and the account enabled; None otherwise.

        An unknown email still costs one argon2 verify (against a decoy hash), so response times do not tell
        which emails have accounts. A hash made with older parameters is replaced on a successful login.
        """
        row = await self._pool.fetchrow(
            f"SELECT {_COLUMNS}, password_hash FROM accounts WHERE email = $1", normalize_email(email)
        )
        if row is None:
            await self._hasher.verify_decoy(password)
            return None
        stored_hash: str = row["password_hash"]
        if not await self._hasher.verify(stored_hash, password):
            return None
        account = _account(row)
        if account.disabled:
            return None
        if self._hasher.needs_rehash(stored_hash):
            await self._rehash(account.id, stored_hash, password)
        return account

    async def disable(self, account_id: UUID) -> bool:
        """Stop the account from logging in or refreshing; True if it existed. Issued access tokens expire."""
        result = await self._pool.execute("UPDATE accounts SET disabled = true WHERE id = $1", account_id)
        return bool(result != "UPDATE 0")

    async def _rehash(self, account_id: UUID, old_hash: str, password: str) -> None:
        new_hash = await self._hasher.hash(password)
        # Compare-and-set: a password change that landed meanwhile wins over this upgrade.
        await self._pool.execute(
            "UPDATE accounts SET password_hash = $3 WHERE id = $1 AND password_hash = $2",
            account_id,
            old_hash,
            new_hash,
        )
        _log.info("password hash upgraded", extra={"account_id": str(account_id)})

    async def _ensure_email_free(self, email: str) -> None:
        if await self._pool.fetchval("SELECT 1 FROM accounts WHERE email = $1", email) is not None:
            raise DuplicateEmail(email)

    async def _insert(
        self,
        email: str,
        password_hash: str,
        role: Role,
        *,
        company_id: UUID | None = None,
        driver_id: UUID | None = None,
    ) -> Account:
        try:
            row = await self._pool.fetchrow(
                f"""
                INSERT INTO accounts (id, email, password_hash, role, company_id, driver_id, created_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7)
                RETURNING {_COLUMNS}
                """,
                self._new_id(),
                email,
                password_hash,
                role.value,
                company_id,
                driver_id,
                self._clock(),
            )
        except asyncpg.UniqueViolationError as error:
            if error.constraint_name == "accounts_email_key":
                raise DuplicateEmail(email) from None
            raise
        assert row is not None
        return _account(row)


def _account(row: asyncpg.Record | dict[str, Any]) -> Account:
    return Account(
        id=row["id"],
        email=row["email"],
        role=Role(row["role"]),
        company_id=row["company_id"],
        driver_id=row["driver_id"],
        disabled=row["disabled"],
        created_at=row["created_at"],
    )


def _email_errors(email: str) -> list[FieldError]:
    try:
        require_email(email)
    except InvalidValue as error:
        return [FieldError("email", _without_name(str(error), "email"))]
    return []


def _password_errors(password: str, email: str) -> list[FieldError]:
    if not isinstance(password, str):
        return [FieldError("password", "must be a string")]
    reason = password_problem(password, email=email)
    return [] if reason is None else [FieldError("password", reason)]


def _without_name(message: str, name: str) -> str:
    """Domain messages start with the value's name ("email must ..."); the field already says it."""
    return message.removeprefix(name + " ")
